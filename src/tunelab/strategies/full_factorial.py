"""Full factorial designs (pyDOE3): every combination of the factors' levels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from tunelab.schema import ConfigError
from tunelab.strategies.base import StudyDesign
from tunelab.strategies.design import design_csv, factors, planned_trials
from tunelab.strategies.plan import FixedPlan, PlannedTrial


@dataclass
class FullFactorialSettings:
    levels: Literal["two", "all"] = "two"  # two: −1/+1 per factor; all: every discrete value
    replicates: int = 1
    center_points: int = 0  # runs at the centre of every factor (two-level designs)
    randomize: bool = True  # seeded random run order; the standard order is logged too
    # null: the study folder's SQLite file; a postgresql:// URL: workers on any machine
    storage: str | None = None

    def check(self, path: str) -> None:
        if self.replicates < 1 or self.center_points < 0:
            raise ConfigError(f"{path}: replicates must be >= 1 and center_points >= 0")


class FullFactorial(FixedPlan):
    """2^k (or general multi-level) full factorial over the tuned parameters, e.g.::

        python -m tunelab strategy=full_factorial model.tune=[lr,batch_size,dropout] \\
            strategy.replicates=2 strategy.center_points=3
    """

    Settings = FullFactorialSettings

    def plan(self) -> list[PlannedTrial]:
        import pyDOE3

        s = self.settings
        if s.levels == "two":
            factor_list = factors(self.context.space)
            coded = pyDOE3.ff2n(len(factor_list))
            return planned_trials(coded, factor_list, s.replicates, s.center_points)
        if s.center_points:
            raise ConfigError("strategy.center_points: only two-level designs have centre points")
        params = self.context.space.params
        choices = {name: p.choices for name, p in params.items()}  # raises for continuous ones
        codes = pyDOE3.fullfact([len(c) for c in choices.values()]).astype(int)
        rows = np.vstack([codes] * s.replicates)
        return [
            PlannedTrial(
                {n: choices[n][i] for n, i in zip(choices, row, strict=True)},
                {f"coded.{n}": int(i) for n, i in zip(choices, row, strict=True)},
            )
            for row in rows
        ]

    def describe(self) -> StudyDesign:
        return StudyDesign(
            params={"design.runs": len(self.points), "design.levels": self.settings.levels},
            texts={"design/design.csv": design_csv(self.points)},
        )
