"""A strategy that only tests use: it shows a new strategy is one class plus `_target_`."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.strategies import Outcome, Proposal, Strategy


@dataclass
class PruneSettings:
    trials: int = 2
    prune_at_epoch: int = 1  # every trial is stopped after this epoch


class PruneEveryTrial(Strategy):
    """Proposes the fixed hyperparameters `trials` times and prunes each one early."""

    Settings = PruneSettings

    def __init__(self, settings: PruneSettings, context) -> None:
        super().__init__(settings, context)
        self.told: list[Outcome] = []

    def ask(self) -> Proposal | None:
        if len(self.told) >= self.settings.trials:
            return None
        return Proposal(trial_id=str(len(self.told)), values={})

    def report(self, proposal: Proposal, epoch: int, value: float) -> bool:
        return epoch >= self.settings.prune_at_epoch

    def tell(self, proposal: Proposal, outcome: Outcome) -> None:
        self.told.append(outcome)
