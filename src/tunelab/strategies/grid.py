"""Exhaustive grid over the declared space; a one-factor grid is a single-factor study."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.schema import ConfigError
from tunelab.strategies.plan import FixedPlan, PlannedTrial


@dataclass
class GridSettings:
    randomize: bool = False  # run the points in a seeded random order instead of the standard one
    points: int = 3  # values per float or log-scaled int range (log-spaced where log)
    max_points: int = 1000  # a larger grid is refused, naming its size
    # null: the study folder's SQLite file; a postgresql:// URL: workers on any machine
    storage: str | None = None

    def check(self, path: str) -> None:
        if self.points < 2:
            raise ConfigError(f"{path}.points: must be at least 2, got {self.points}")


class Grid(FixedPlan):
    """Every combination of the space's values (choices, linear ints at their step, and
    `points` values spread over each float or log int range), e.g. a batch-size study::

        python -m tunelab strategy=grid model.tune=[batch_size] \\
            'model.space.batch_size.values=[32,256,0]'
    """

    Settings = GridSettings
    conditional = True  # a conditional parameter's values only where its condition holds

    def plan(self) -> list[PlannedTrial]:
        s = self.settings
        return [PlannedTrial(values) for values in self.context.space.grid(s.points, s.max_points)]
