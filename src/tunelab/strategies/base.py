"""The one interface every search strategy implements: ask → (report per epoch) → tell.

The runner loops `while (proposal := strategy.ask()) is not None`, trains the proposal, feeds
each epoch's objective to `report` (a True answer stops the trial as PRUNED) and hands the
outcome to `tell`. It never asks which strategy it holds. Strategies persist whatever they need
to resume under `context.workdir`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from tunelab.config import Objective
from tunelab.space import SearchSpace


@dataclass
class StrategyContext:
    """What a strategy may know about its study."""

    space: SearchSpace
    objective: Objective
    seed: int
    workdir: Path  # private to this study; exists
    resume: bool
    epochs: int  # the model's configured training epochs


@dataclass
class Proposal:
    """One trial to run: tuned values and, for multi-fidelity strategies, its epoch window."""

    trial_id: str
    values: dict[str, Any]
    epochs: int | None = None  # train until this epoch; None = the model's epochs
    initial_epoch: int = 0
    warm_start_from: str | None = None  # trial id whose final weights this trial continues
    tags: dict[str, str] = field(default_factory=dict)  # strategy internals (bracket, round)
    handle: Any = field(default=None, repr=False)  # the strategy's own trial object


@dataclass
class Outcome:
    """How a trial ended. `score` is the best objective over its epochs (None if none ran)."""

    status: Literal["FINISHED", "FAILED", "PRUNED"]
    score: float | None
    epochs_trained: int = 0
    message: str = ""


class Strategy(ABC):
    """Base of all strategies. Subclasses set `Settings` (a dataclass) and implement ask/tell."""

    Settings: ClassVar[type]
    keeps_checkpoints: ClassVar[bool] = False  # True: proposals may warm-start from a trial

    def __init__(self, settings: Any, context: StrategyContext) -> None:
        self.settings = settings
        self.context = context

    @abstractmethod
    def ask(self) -> Proposal | None:
        """The next trial to run, or None when the study is complete."""

    def report(self, proposal: Proposal, epoch: int, value: float) -> bool:
        """The objective after `epoch`; return True to stop (prune) the trial now."""
        return False

    @abstractmethod
    def tell(self, proposal: Proposal, outcome: Outcome) -> None:
        """Record how the trial ended."""

    @property
    def expected_trials(self) -> int | None:
        """Total trials of the whole study when known in advance (for the progress bar)."""
        return None
