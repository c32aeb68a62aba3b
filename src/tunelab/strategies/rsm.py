"""Response-surface designs (pyDOE3): central composite or Box–Behnken over continuous factors,
then a full quadratic model fitted to the results (see `tunelab.analysis.rsm`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from tunelab.schema import ConfigError
from tunelab.space import Param
from tunelab.strategies.base import Outcome, StudyDesign
from tunelab.strategies.design import natural
from tunelab.strategies.plan import FixedPlan, PlannedTrial


@dataclass
class RSMSettings:
    design: Literal["ccd", "bbd"] = "ccd"  # central composite or Box–Behnken
    face: Literal["ccf", "ccc", "cci"] = "ccf"  # ccd: face-centred, circumscribed, inscribed
    alpha: Literal["orthogonal", "rotatable"] = "rotatable"  # ccd's axial distance (ccc, cci)
    center_points: int = 3
    randomize: bool = True
    # null: the study folder's SQLite file; a postgresql:// URL: workers on any machine
    storage: str | None = None


class RSM(FixedPlan):
    """Response surface over two or more continuous factors, e.g.::

    python -m tunelab strategy=rsm model.tune=[lr,dropout] strategy.design=ccd
    """

    Settings = RSMSettings

    def plan(self) -> list[PlannedTrial]:
        import pyDOE3

        self.context.space.require_ranges("a response surface")
        params = self.context.space.params
        k, s = len(params), self.settings
        least = 2 if s.design == "ccd" else 3
        if k < least:
            raise ConfigError(f"model.tune: {s.design} needs at least {least} factors, got {k}")
        if s.design == "ccd":
            alpha = "r" if s.alpha == "rotatable" else "o"
            coded = pyDOE3.ccdesign(k, center=(0, s.center_points), alpha=alpha, face=s.face)
        else:
            coded = pyDOE3.bbdesign(k, center=s.center_points)
        return [
            PlannedTrial(
                {n: natural(p, c) for (n, p), c in zip(params.items(), row, strict=True)},
                {f"coded.{n}": round(float(c), 4) for n, c in zip(params, row, strict=True)},
            )
            for row in coded
        ]

    def summary(self, told: Mapping[str, Outcome]) -> StudyDesign:
        from tunelab import plots
        from tunelab.analysis.rsm import fit_quadratic

        names = self.context.space.names
        scores = {int(trial): o.score for trial, o in told.items() if o.score is not None}
        done = sorted(scores)
        if len(done) <= len(names) * (len(names) + 3) // 2:  # fewer runs than coefficients
            return StudyDesign(params={"rsm.fit": "too few finished runs"})
        coded = pd.DataFrame(
            [[self.points[i].params[f"coded.{n}"] for n in names] for i in done], columns=names
        )
        params = self.context.space.params
        natural_frame = pd.DataFrame(
            [[_natural_axis(params[n], self.points[i].values[n]) for n in names] for i in done],
            columns=names,
        )
        fit = fit_quadratic(coded, natural_frame, np.array([scores[i] for i in done]))
        summary = {"rsm.r2": fit.r2, "rsm.adj_r2": fit.adj_r2, "rsm.nature": fit.nature}
        summary.update({f"rsm.stationary.coded.{n}": v for n, v in fit.stationary_point.items()})
        summary.update(
            {
                f"rsm.stationary.{n}": natural(params[n], v)
                for n, v in fit.stationary_point.items()
                if math.isfinite(v)
            }
        )
        if fit.lack_of_fit:
            summary.update({f"rsm.lack_of_fit.{k}": v for k, v in fit.lack_of_fit.items()})
        texts = {
            "rsm/coefficients_coded.csv": fit.coefficients.to_csv(),
            "rsm/coefficients_natural.csv": fit.natural_coefficients.to_frame("estimate").to_csv(),
        }
        figures = {
            f"rsm/{a}_{b}.png": plots.response_surface(fit.model, names, a, b)
            for i, a in enumerate(names)
            for b in names[i + 1 :]
        }
        return StudyDesign(params=summary, texts=texts, figures=figures)


def _natural_axis(param: Param, value: float) -> float:
    """The axis the natural-unit model is fitted on: log10 for log-scale parameters."""
    return math.log10(value) if param.log else float(value)
