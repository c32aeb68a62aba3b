"""Optimiser comparison: studies grouped by strategy, repetitions being different seeds.

Summary statistics of each strategy's best objective, Kruskal–Wallis across strategies,
pairwise Mann–Whitney U with Holm's correction and rank-biserial effect sizes, anytime
performance (best so far at fractions of the epoch budget) from the trials' own records.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from tunelab.schema import ConfigError

FRACTIONS = (0.10, 0.25, 0.50, 1.00)


@dataclass
class OptimiserComparison:
    summary: pd.DataFrame  # per strategy: n, median, IQR, mean, sd, wall time, trials, epochs
    kruskal: dict[str, float] | None  # H and p across strategies (two or more)
    pairwise: pd.DataFrame  # Mann–Whitney U, raw and Holm-adjusted p, rank-biserial r
    friedman: dict[str, float] | None  # three or more strategies sharing seeds
    paired: pd.DataFrame  # strategies sharing seeds: Wilcoxon signed-rank, Holm-adjusted
    anytime: pd.DataFrame  # median best-so-far per strategy at fractions of the epoch budget
    curves: dict[str, pd.DataFrame]  # per strategy: epochs grid x studies, best so far


def study_table(studies: pd.DataFrame, response: str) -> pd.DataFrame:
    """One row per study: strategy, seed, best objective, wall time, trials, epochs."""
    column = f"metrics.{response}"
    if column not in studies:
        raise ConfigError(f"--response: no study run has the metric {response!r}")
    table = pd.DataFrame({
        "study_id": studies["tags.tunelab.study_id"], "strategy": studies["tags.tunelab.strategy"],
        "seed": studies.get("tags.tunelab.seed"), "best": studies[column],
        "wall_time_s": studies.get("metrics.wall_time_s"), "trials": studies.get("metrics.trials"),
        "cumulative_epochs": studies.get("metrics.cumulative_epochs"),
    })  # fmt: skip
    unfinished = table[table["best"].isna()]
    if len(unfinished):
        raise ConfigError(f"--response: study {unfinished['study_id'].iloc[0]} has no {response}")
    return table


def compare(
    table: pd.DataFrame, trials: pd.DataFrame, response: str, direction: str
) -> OptimiserComparison:
    groups = {name: g["best"].to_numpy() for name, g in table.groupby("strategy")}
    q = table.groupby("strategy")["best"]
    summary = pd.DataFrame({
        "studies": q.size(), "median": q.median(), "iqr": q.quantile(0.75) - q.quantile(0.25),
        "mean": q.mean(), "sd": q.std(),
        "median_wall_time_s": table.groupby("strategy")["wall_time_s"].median(),
        "median_trials": table.groupby("strategy")["trials"].median(),
        "median_epochs": table.groupby("strategy")["cumulative_epochs"].median(),
    })  # fmt: skip
    kruskal = None
    if len(groups) >= 2:
        result = stats.kruskal(*groups.values())
        kruskal = {"H": float(result.statistic), "p": float(result.pvalue)}
    curves = best_so_far_curves(table, trials, response, direction)
    by_seed = seed_paired(table)
    friedman = None
    if by_seed is not None and by_seed.shape[1] >= 3:
        result = stats.friedmanchisquare(*(by_seed[c] for c in by_seed.columns))
        friedman = {"chi2": float(result.statistic), "p": float(result.pvalue),
                    "seeds": len(by_seed)}  # fmt: skip
    return OptimiserComparison(
        summary=summary, kruskal=kruskal, pairwise=pairwise(groups), friedman=friedman,
        paired=paired_tests(by_seed), anytime=anytime(curves), curves=curves,
    )


def seed_paired(table: pd.DataFrame) -> pd.DataFrame | None:
    """Best objective as seeds x strategies, over the seeds every strategy ran (None if < 2)."""
    if table["seed"].isna().any():
        return None
    wide = table.pivot_table(index="seed", columns="strategy", values="best", aggfunc="mean")
    wide = wide.dropna()
    return wide if len(wide) >= 2 and wide.shape[1] >= 2 else None


def paired_tests(by_seed: pd.DataFrame | None) -> pd.DataFrame:
    """Wilcoxon signed-rank for every pair of strategies on shared seeds, Holm-adjusted."""
    columns = ["a", "b", "seeds", "W", "p"]
    if by_seed is None:
        return pd.DataFrame(columns=columns)
    rows = []
    for a, b in itertools.combinations(sorted(by_seed.columns), 2):
        differences = by_seed[a] - by_seed[b]
        if (differences == 0).all():  # identical results: nothing to rank
            rows.append({"a": a, "b": b, "seeds": len(by_seed), "W": np.nan, "p": 1.0})
            continue
        result = stats.wilcoxon(by_seed[a], by_seed[b])
        rows.append({"a": a, "b": b, "seeds": len(by_seed), "W": float(result.statistic),
                     "p": float(result.pvalue)})  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    frame["p_holm"] = multipletests(frame["p"], method="holm")[1]
    return frame


def pairwise(groups: dict[str, np.ndarray]) -> pd.DataFrame:
    """Two-sided Mann–Whitney U for every pair, Holm-adjusted; r = 2U/(n1 n2) − 1 (> 0: the
    first strategy tends to score higher)."""
    rows = []
    for a, b in itertools.combinations(sorted(groups), 2):
        result = stats.mannwhitneyu(groups[a], groups[b], alternative="two-sided")
        r = 2 * result.statistic / (len(groups[a]) * len(groups[b])) - 1
        rows.append({"a": a, "b": b, "U": float(result.statistic), "p": float(result.pvalue),
                     "rank_biserial_r": float(r)})  # fmt: skip
    frame = pd.DataFrame(rows, columns=["a", "b", "U", "p", "rank_biserial_r"])
    if len(frame):
        frame["p_holm"] = multipletests(frame["p"], method="holm")[1]
    return frame


def best_so_far_curves(
    table: pd.DataFrame, trials: pd.DataFrame, response: str, direction: str
) -> dict[str, pd.DataFrame]:
    """Best objective so far against cumulative epochs (Hyperband's partial trainings and
    pruned trials count), one column per study, on a shared grid of epochs."""
    if trials.empty:
        return {}
    budget = int(table["cumulative_epochs"].max())
    grid = np.arange(1, budget + 1)
    accumulate = np.fmax.accumulate if direction == "max" else np.fmin.accumulate
    curves: dict[str, pd.DataFrame] = {}
    for strategy, studies in table.groupby("strategy"):
        columns = {}
        for study_id in studies["study_id"]:
            runs = trials[trials["tags.tunelab.study_id"] == study_id].copy()
            runs["index"] = runs["tags.tunelab.trial_index"].astype(int)
            runs = runs.sort_values("index")
            epochs = runs["metrics.epochs_trained"].fillna(0).cumsum().to_numpy()
            best = accumulate(runs[f"metrics.{response}"].to_numpy(dtype=float))
            position = np.searchsorted(epochs, grid, side="right") - 1
            columns[study_id] = np.where(position >= 0, best[np.maximum(position, 0)], np.nan)
        curves[strategy] = pd.DataFrame(columns, index=grid)
    return curves


def anytime(curves: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Median best-so-far per strategy at 10/25/50/100 % of the largest epoch budget."""
    rows = {}
    for strategy, curve in curves.items():
        budget = curve.index.max()
        rows[strategy] = {
            f"{int(f * 100)}%": float(curve.loc[max(1, int(round(f * budget)))].median())
            for f in FRACTIONS
        }
    return pd.DataFrame.from_dict(rows, orient="index")
