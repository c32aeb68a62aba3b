"""Exhaustive grid over a discrete space; a one-factor grid is a single-factor study."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.strategies.base import FixedPlan, PlannedTrial


@dataclass
class GridSettings:
    randomize: bool = False  # run the points in a seeded random order instead of the standard one


class Grid(FixedPlan):
    """Every combination of the space's choices, e.g. a batch-size study::

        python -m tunelab strategy=grid model.tune=[batch_size] \\
            'model.space.batch_size.values=[32,256,0]'
    """

    Settings = GridSettings

    def plan(self) -> list[PlannedTrial]:
        return [PlannedTrial(values) for values in self.context.space.grid()]
