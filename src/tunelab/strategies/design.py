"""Coded factor levels for designed experiments, read from the model's search space.

Each tuned parameter is a factor with coded levels −1 (low), +1 (high) and 0 (centre):
float/int ranges use their bounds (the centre is the midpoint, geometric on a log scale),
a two-value choice or a bool uses its two values (and has no centre).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tunelab.schema import ConfigError
from tunelab.space import Param, SearchSpace
from tunelab.strategies.plan import PlannedTrial


@dataclass(frozen=True)
class Factor:
    name: str
    low: Any
    high: Any
    centre: Any | None  # None: the factor has no middle level (a choice or a bool)

    def natural(self, code: float) -> Any:
        if code == 0:
            if self.centre is None:
                raise ConfigError(
                    f"model.space.{self.name}: a two-value factor has no centre "
                    "point; set strategy.center_points=0"
                )
            return self.centre
        return self.low if code < 0 else self.high


def factors(space: SearchSpace) -> list[Factor]:
    if not space.params:
        raise ConfigError("model.tune: a designed experiment needs at least one factor")
    return [_factor(name, p) for name, p in space.params.items()]


def natural(param: Param, code: float) -> Any:
    """Coded −1..+1 (beyond for axial points) to a range's scale, log-linear if `log`."""
    lo, hi = (math.log(v) if param.log else v for v in param.bounds)
    value = (lo + hi) / 2 + code * (hi - lo) / 2
    value = math.exp(value) if param.log else value
    return int(round(value)) if param.type == "int" else value


def _factor(name: str, p: Param) -> Factor:
    if p.type in ("float", "int"):  # the bounds exactly; the centre as rsm maps code 0
        low, high = (int(v) if p.type == "int" else v for v in p.bounds)
        return Factor(name, low, high, natural(p, 0))
    values = p.choices
    if len(values) != 2:
        raise ConfigError(
            f"model.space.{name}: a two-level factor needs exactly two values, got {values}; "
            "narrow the choice or use strategy=full_factorial strategy.levels=all"
        )
    return Factor(name, values[0], values[1], None)


def planned_trials(
    coded: np.ndarray, factor_list: list[Factor], replicates: int, center_points: int
) -> list[PlannedTrial]:
    """Rows of a coded design (replicated, plus centre points) as trials with natural values."""
    rows = np.vstack([coded] * replicates + [np.zeros((center_points, len(factor_list)))])
    trials = []
    for row in rows:
        values = {f.name: f.natural(code) for f, code in zip(factor_list, row, strict=True)}
        coded_params = {
            f"coded.{f.name}": int(code) for f, code in zip(factor_list, row, strict=True)
        }
        trials.append(PlannedTrial(values, coded_params))
    return trials


def design_csv(trials: list[PlannedTrial]) -> str:
    """The design in standard order: coded and natural values of every run."""
    names = list(trials[0].values)
    header = ["standard_order", *(f"coded.{n}" for n in names), *names]
    lines = [",".join(header)]
    for i, t in enumerate(trials):
        cells = [i, *(t.params[f"coded.{n}"] for n in names), *(t.values[n] for n in names)]
        lines.append(",".join(map(str, cells)))
    return "\n".join(lines) + "\n"
