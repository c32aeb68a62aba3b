"""A reference study's claims, checked against what our studies logged.

A claim reads `Results` (the study runs and finished trials of one reproduction, as frames read
back from MLflow) and returns a `Verdict`: reproduced, not reproduced, or not testable (a part
that did not run, a metric that is missing), always with the numbers it compared.

With several seeds, a claim is checked on the means over the seeds for its numbers, and on each
seed alone for its status: it is reproduced only if it holds in every seed. One seed's 91.0
against 89.8 % is within seed noise; a claim that also holds in every other seed is not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

Status = Literal["reproduced", "not reproduced", "not testable"]
REPRODUCED: Status = "reproduced"
NOT_REPRODUCED: Status = "not reproduced"
NOT_TESTABLE: Status = "not testable"

PRESET, STAGE, STUDY = "tags.tunelab.preset", "tags.tunelab.stage", "tags.tunelab.study_id"
SEED = "tags.tunelab.seed"


class Untestable(Exception):
    """What a claim needs is not there; the message says what."""


@dataclass(frozen=True)
class Verdict:
    status: Status
    numbers: str  # what was compared, e.g. "256: 91.0 % > 1: 89.8 % > full: 69.6 %"

    @classmethod
    def of(cls, holds: bool, numbers: str) -> Verdict:
        return cls(REPRODUCED if holds else NOT_REPRODUCED, numbers)


@dataclass(frozen=True)
class Claim:
    id: str  # stable: `--check` matches claims across reproductions by it
    text: str  # the reference's claim, in its words
    check: Callable[[Results], Verdict]

    def verdict(self, results: Results) -> Verdict:
        try:
            on_means = self.check(results)
        except Untestable as missing:
            return Verdict(NOT_TESTABLE, str(missing))
        seeds = results.seeds
        if len(seeds) < 2:
            return on_means
        held = [s for s in seeds if self._holds(results.of_seed(s))]
        return Verdict.of(
            len(held) == len(seeds),
            f"{on_means.numbers} (means over seeds "
            f"{', '.join(seeds)}); holds in {len(held)} "
            f"of {len(seeds)} seeds",
        )

    def _holds(self, results: Results) -> bool:
        try:
            return self.check(results).status == REPRODUCED
        except Untestable:
            return False


class Results:
    """The study runs and finished trial runs of one reproduction, by preset (and stage).

    `pooled` presets repeat over seeds of their own (a sweep): they are never split by seed.
    """

    def __init__(
        self,
        studies: pd.DataFrame,
        trials: pd.DataFrame,
        missing: dict[str, str] | None = None,
        pooled: frozenset[str] = frozenset(),
    ) -> None:
        self.studies = studies
        self.missing = missing or {}  # preset -> why it has no runs (skipped, failed)
        self.pooled = pooled
        self.trial_runs = trials  # as read, before the join below
        self.trials = trials
        if len(trials) and len(studies):
            context = [c for c in (PRESET, STAGE, "tags.tunelab.strategy") if c in studies]
            joined = studies[[STUDY, *context]].rename(columns={c: f"study.{c}" for c in context})
            self.trials = trials.merge(joined, on=STUDY, how="inner")

    @property
    def seeds(self) -> list[str]:
        """The seeds the reproduction ran its own presets with (not the pooled ones')."""
        if self.studies.empty or SEED not in self.studies:
            return []
        own = self.studies[~self.studies[PRESET].isin(self.pooled)]
        return sorted(set(own[SEED].dropna()), key=int)

    def of_seed(self, seed: str) -> Results:
        """The studies of one seed (and every pooled preset's), with their trials."""
        keep = (self.studies[SEED] == seed) | self.studies[PRESET].isin(self.pooled)
        studies = self.studies[keep]
        trials = self.trial_runs
        if len(trials):
            trials = trials[trials[STUDY].isin(studies[STUDY])]
        return Results(studies, trials, self.missing, self.pooled)

    def studies_of(self, preset: str, stage: str | None = None) -> pd.DataFrame:
        found = _select(self.studies, preset, stage, "")
        if found.empty:
            why = self.missing.get(preset, "did not run")
            raise Untestable(f"{_name(preset, stage)} {why}")
        return found

    def trials_of(self, preset: str, stage: str | None = None) -> pd.DataFrame:
        self.studies_of(preset, stage)
        found = _select(self.trials, preset, stage, "study.")
        if found.empty:
            raise Untestable(f"{_name(preset, stage)} has no finished trial")
        return found

    def trial_metric(self, preset: str, metric: str, stage: str | None = None) -> pd.Series:
        trials = self.trials_of(preset, stage)
        column = f"metrics.{metric}"
        if column not in trials or trials[column].isna().all():
            raise Untestable(f"{_name(preset, stage)}: no trial logged {metric}")
        return trials[column]

    def by(self, preset: str, param: str, metric: str) -> dict[Any, float]:
        """`metric` of the trials per value of `param`, averaged over seeds."""
        values = self.trial_metric(preset, metric)
        trials = self.trials_of(preset)
        column = f"params.{param}"
        if column not in trials:
            raise Untestable(f"{preset}: no trial has the param {param}")
        return values.groupby(trials[column]).mean().to_dict()

    def study_metric(self, preset: str, metric: str, stage: str | None = None) -> float:
        """A study run's metric (e.g. best_trial_test_accuracy), averaged over seeds."""
        studies = self.studies_of(preset, stage)
        column = f"metrics.{metric}"
        if column not in studies or studies[column].isna().all():
            raise Untestable(f"{_name(preset, stage)}: the study logged no {metric}")
        return float(studies[column].mean())


def _select(frame: pd.DataFrame, preset: str, stage: str | None, prefix: str) -> pd.DataFrame:
    if frame.empty or f"{prefix}{PRESET}" not in frame:
        return frame.iloc[0:0]
    chosen = frame[frame[f"{prefix}{PRESET}"] == preset]
    if stage is not None:
        column = f"{prefix}{STAGE}"
        chosen = chosen[chosen[column] == stage] if column in chosen else chosen.iloc[0:0]
    return chosen


def _name(preset: str, stage: str | None) -> str:
    return f"{preset} (stage {stage})" if stage else preset


def percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def ordered(values: dict[str, float], show: Callable[[float], str] = percent) -> Verdict:
    """Reproduced when the values fall strictly in the order given (first the largest)."""
    numbers = list(values.values())
    holds = all(a > b for a, b in zip(numbers, numbers[1:], strict=False))
    return Verdict.of(holds, ", ".join(f"{k}: {show(v)}" for k, v in values.items()))


def pick(table: dict[Any, float], key: Any, preset: str) -> float:
    """One value of a `Results.by` table, by the param's value."""
    for found, value in table.items():
        if str(found) == str(key):
            return value
    raise Untestable(f"{preset}: no trial with the value {key}")


def check_all(claims: Iterable[Claim], results: Results) -> list[tuple[Claim, Verdict]]:
    return [(claim, claim.verdict(results)) for claim in claims]


def regressions(before: dict[str, str], now: dict[str, str]) -> list[str]:
    """Claims reproduced in an earlier reproduction that are not reproduced now."""
    return sorted(
        c
        for c, status in before.items()
        if status == REPRODUCED and now.get(c, NOT_TESTABLE) != REPRODUCED
    )


def median(values: Iterable[float]) -> float:
    return float(np.median(list(values)))
