"""Exhaustive grid over a discrete space; a one-factor grid is a single-factor study."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from tunelab.seeding import derive
from tunelab.strategies.base import Outcome, Proposal, Strategy, StrategyContext


@dataclass
class GridSettings:
    shuffle: bool = False  # run the points in a seeded random order instead of the standard one


class Grid(Strategy):
    """Every combination of the space's choices, e.g. a batch-size study::

        python -m tunelab strategy=grid model.tune=[batch_size] \\
            'model.space.batch_size.values=[32,256,0]'
    """

    Settings = GridSettings

    def __init__(self, settings: GridSettings, context: StrategyContext) -> None:
        super().__init__(settings, context)
        self.points = context.space.grid()
        self.order = list(range(len(self.points)))
        if settings.shuffle:
            np.random.default_rng(derive(context.seed, "grid")).shuffle(self.order)
        self.state_file = context.workdir / "grid_done.json"
        resumed = context.resume and self.state_file.exists()
        self.done: set[int] = set(json.loads(self.state_file.read_text())) if resumed else set()

    def ask(self) -> Proposal | None:
        width = len(str(len(self.points)))
        for index in self.order:
            if index not in self.done:
                return Proposal(trial_id=f"{index:0{width}d}", values=self.points[index])
        return None

    def tell(self, proposal: Proposal, outcome: Outcome) -> None:
        self.done.add(int(proposal.trial_id))
        self.state_file.write_text(json.dumps(sorted(self.done)))

    @property
    def expected_trials(self) -> int:
        return len(self.points)
