"""Optimiser comparison: studies grouped by task (model × dataset) and strategy, repetitions
being different seeds.

Per task: summary statistics of each strategy's best objective with a bootstrap CI of the
median, a normalised score (0 = best known, 1 = the baseline strategy's median, as Bayesmark
scores), epochs and wall time to a target value, Kruskal–Wallis and pairwise Mann–Whitney U
with Holm's correction and rank-biserial effect sizes, seed-paired Friedman and Wilcoxon
tests, anytime performance (best so far at fractions of the epoch budget) rebuilt from the
trials' own records. Across tasks: average ranks, Friedman and Nemenyi's critical difference.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from tunelab.objective import Direction, Objective
from tunelab.schema import ConfigError

FRACTIONS = (0.10, 0.25, 0.50, 1.00)
BOOTSTRAP_RESAMPLES = 2000


@dataclass
class AcrossTasks:
    ranks: pd.DataFrame  # tasks x strategies: rank of each strategy's median (1 = best)
    average_ranks: pd.Series  # strategy -> mean rank over tasks
    friedman: dict[str, float] | None  # three or more strategies
    nemenyi: pd.DataFrame | None  # strategy x strategy p-values
    critical_difference: float | None  # Nemenyi CD at alpha 0.05


@dataclass
class OptimiserComparison:
    summary: pd.DataFrame  # per task and strategy: best (median + CI, IQR, mean, sd), costs
    kruskal: pd.DataFrame  # per task: H and p across strategies
    pairwise: pd.DataFrame  # per task: Mann–Whitney U, raw and Holm-adjusted p, rank-biserial r
    friedman: pd.DataFrame  # per task, strategies sharing seeds: chi2, p, seeds
    paired: pd.DataFrame  # per task, shared seeds: Wilcoxon signed-rank, Holm-adjusted
    anytime: pd.DataFrame  # per task: median best-so-far per strategy at budget fractions
    curves: dict[str, dict[str, pd.DataFrame]]  # task -> strategy -> epochs x studies
    time_curves: dict[str, dict[str, pd.DataFrame]]  # task -> strategy -> seconds x studies
    across_tasks: AcrossTasks | None  # two or more tasks


def with_best_of_trials(
    studies: pd.DataFrame, trials: pd.DataFrame, response: str, direction: Direction
) -> pd.DataFrame:
    """`studies` with `metrics.<response>` filled in from their trials, each study's best
    value, when the study runs do not log that metric themselves (e.g. a GAN study chosen on
    FID, compared on the trials' final_inception_score)."""
    column = f"metrics.{response}"
    if column in studies or column not in trials:
        return studies
    per_study = trials.groupby("tags.tunelab.study_id")[column]
    best = Objective(response, direction).best_value(per_study)
    return studies.assign(**{column: studies["tags.tunelab.study_id"].map(best)})


def study_table(studies: pd.DataFrame, response: str) -> pd.DataFrame:
    """One row per study: task, strategy, seed, best objective, wall time, trials, epochs."""
    column = f"metrics.{response}"
    if column not in studies:
        raise ConfigError(f"--response: no study run has the metric {response!r}")
    table = pd.DataFrame(
        {
            "study_id": studies["tags.tunelab.study_id"],
            "task": studies.get("tags.tunelab.model", "?")
            + "/"
            + studies.get("tags.tunelab.dataset", "?"),
            "strategy": studies["tags.tunelab.strategy"],
            "seed": studies.get("tags.tunelab.seed"),
            "best": studies[column],
            "wall_time_s": studies.get("metrics.wall_time_s"),
            "trials": studies.get("metrics.trials"),
            "cumulative_epochs": studies.get("metrics.cumulative_epochs"),
            "start_time": studies["start_time"],
        }
    )
    unfinished = table[table["best"].isna()]
    if len(unfinished):
        raise ConfigError(f"--response: study {unfinished['study_id'].iloc[0]} has no {response}")
    return table


def compare(
    table: pd.DataFrame,
    trials: pd.DataFrame,
    response: str,
    direction: Direction,
    baseline: str = "random",
    target: float | None = None,
) -> OptimiserComparison:
    """All of the comparison; `trials` (one row per trial run) feeds the anytime curves and
    the epochs/time to `target`, and may be empty."""
    table = table.assign(normalised=normalised_scores(table, baseline, direction))
    parts: dict[str, list[pd.DataFrame]] = {
        name: [] for name in ("summary", "kruskal", "pairwise", "friedman", "paired", "anytime")
    }
    curves: dict[str, dict[str, pd.DataFrame]] = {}
    time_curves: dict[str, dict[str, pd.DataFrame]] = {}
    for task, studies in table.groupby("task"):
        task_trials = (
            trials[trials["tags.tunelab.study_id"].isin(studies["study_id"])]
            if len(trials)
            else trials
        )
        curves[task] = best_so_far_curves(studies, task_trials, response, direction)
        time_curves[task] = best_so_far_curves(
            studies, task_trials, response, direction, budget="seconds"
        )
        costs = to_target(studies, task_trials, response, direction, target)
        by_seed = seed_paired(studies)
        for name, frame in (
            ("summary", summary(studies, costs)),
            ("kruskal", kruskal(studies)),
            ("pairwise", pairwise(studies)),
            ("friedman", friedman(by_seed)),
            ("paired", paired_tests(by_seed)),
            ("anytime", anytime(curves[task])),
        ):
            parts[name].append(
                frame.assign(task=task).set_index("task", append=True)
                if name in ("summary", "anytime")
                else frame.assign(task=task)
            )
    frames = {name: _concat(found) for name, found in parts.items()}
    for name in ("summary", "anytime"):
        frames[name] = frames[name].reorder_levels(["task", "strategy"])
    return OptimiserComparison(
        **frames,
        curves=curves,
        time_curves=time_curves,
        across_tasks=across_tasks(table, direction),
    )


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frame = pd.concat(frames)
    if "task" in frame.columns:  # the task first, for reading
        frame = frame[["task", *[c for c in frame.columns if c != "task"]]].reset_index(drop=True)
    return frame


def summary(studies: pd.DataFrame, costs: pd.DataFrame) -> pd.DataFrame:
    """Per strategy: best objective (median with a 95 % bootstrap CI, IQR, mean, sd), the
    normalised score, wall time, trials, epochs, and cost to the target value."""
    q = studies.groupby("strategy")["best"]
    ci = q.apply(lambda values: pd.Series(bootstrap_median_ci(values.to_numpy()))).unstack()
    by_strategy = studies.assign(**costs).groupby("strategy")
    frame = pd.DataFrame(
        {
            "studies": q.size(),
            "median": q.median(),
            "median_ci_low": ci[0],
            "median_ci_high": ci[1],
            "iqr": q.quantile(0.75) - q.quantile(0.25),
            "mean": q.mean(),
            "sd": q.std(),
            "median_normalised": by_strategy["normalised"].median(),
            "median_wall_time_s": by_strategy["wall_time_s"].median(),
            "median_trials": by_strategy["trials"].median(),
            "median_epochs": by_strategy["cumulative_epochs"].median(),
        }
    )
    if len(costs.columns):
        frame["reached_target"] = by_strategy["epochs_to_target"].count()
        frame["median_epochs_to_target"] = by_strategy["epochs_to_target"].median()
        frame["median_time_to_target_s"] = by_strategy["time_to_target_s"].median()
    frame.index.name = "strategy"
    return frame


def bootstrap_median_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the median (seeded; NaN for fewer than two values)."""
    if len(values) < 2:
        return np.nan, np.nan
    if np.ptp(values) == 0:
        return float(values[0]), float(values[0])
    result = stats.bootstrap(
        (values,),
        np.median,
        confidence_level=confidence,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        random_state=0,
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def normalised_scores(table: pd.DataFrame, baseline: str, direction: Direction) -> pd.Series:
    """Per task: 0 = the best value any study found, 1 = the median of the baseline strategy's
    studies (NaN where the task has no baseline studies or they found the best value)."""
    scores = pd.Series(np.nan, index=table.index)
    for _, studies in table.groupby("task"):
        best_known = Objective("best", direction).best_value(studies["best"])
        reference = studies.loc[studies["strategy"] == baseline, "best"].median()
        span = best_known - reference
        if pd.notna(reference) and span != 0:
            scores[studies.index] = (best_known - studies["best"]) / span
    return scores


def to_target(
    studies: pd.DataFrame,
    trials: pd.DataFrame,
    response: str,
    direction: Direction,
    target: float | None,
) -> pd.DataFrame:
    """Per study: cumulative epochs and wall time since the study started until a trial first
    reached `target` (NaN if none did). No columns without a target or trials."""
    if target is None or trials.empty:
        return pd.DataFrame(index=studies.index)
    objective = Objective(response, direction)
    rows = {}
    for index, study in studies.iterrows():
        runs = _trial_sequence(trials, study["study_id"], study["start_time"])
        hits = runs[objective.reached(runs[f"metrics.{response}"], target)]
        first = hits.iloc[0] if len(hits) else None
        rows[index] = {
            "epochs_to_target": np.nan if first is None else float(first["epochs_spent"]),
            "time_to_target_s": np.nan if first is None else float(first["seconds_spent"]),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def _trial_sequence(trials: pd.DataFrame, study_id: str, started: float) -> pd.DataFrame:
    """A study's trial runs in trial order, with the budget spent when each ended: cumulative
    epochs (Hyperband's partial trainings and pruned trials count) and seconds since the study
    started."""
    runs = trials[trials["tags.tunelab.study_id"] == study_id]
    runs = runs.assign(index=runs["tags.tunelab.trial_index"].astype(int)).sort_values("index")
    return runs.assign(
        epochs_spent=runs["metrics.epochs_trained"].fillna(0).cumsum(),
        seconds_spent=((runs["end_time"] - started) / 1000).cummax(),
    )


def kruskal(studies: pd.DataFrame) -> pd.DataFrame:
    groups = [g["best"].to_numpy() for _, g in studies.groupby("strategy")]
    if len(groups) < 2 or np.ptp(studies["best"]) == 0:
        return pd.DataFrame(columns=["strategies", "H", "p"])
    result = stats.kruskal(*groups)
    return pd.DataFrame(
        [{"strategies": len(groups), "H": float(result.statistic), "p": float(result.pvalue)}]
    )


def seed_paired(studies: pd.DataFrame) -> pd.DataFrame | None:
    """Best objective as seeds x strategies, over the seeds every strategy ran (None if < 2)."""
    if studies["seed"].isna().any():
        return None
    wide = studies.pivot_table(index="seed", columns="strategy", values="best", aggfunc="mean")
    wide = wide.dropna()
    return wide if len(wide) >= 2 and wide.shape[1] >= 2 else None


def friedman(by_seed: pd.DataFrame | None) -> pd.DataFrame:
    if by_seed is None or by_seed.shape[1] < 3:
        return pd.DataFrame(columns=["strategies", "seeds", "chi2", "p"])
    result = stats.friedmanchisquare(*(by_seed[c] for c in by_seed.columns))
    return pd.DataFrame(
        [
            {
                "strategies": by_seed.shape[1],
                "seeds": len(by_seed),
                "chi2": float(result.statistic),
                "p": float(result.pvalue),
            }
        ]
    )


def paired_tests(by_seed: pd.DataFrame | None) -> pd.DataFrame:
    """Wilcoxon signed-rank for every pair of strategies on shared seeds, Holm-adjusted."""
    columns = ["a", "b", "seeds", "W", "p", "p_holm"]
    if by_seed is None:
        return pd.DataFrame(columns=columns)
    rows = []
    for a, b in itertools.combinations(sorted(by_seed.columns), 2):
        differences = by_seed[a] - by_seed[b]
        if (differences == 0).all():  # identical results: nothing to rank
            rows.append({"a": a, "b": b, "seeds": len(by_seed), "W": np.nan, "p": 1.0})
            continue
        result = stats.wilcoxon(by_seed[a], by_seed[b])
        rows.append(
            {
                "a": a,
                "b": b,
                "seeds": len(by_seed),
                "W": float(result.statistic),
                "p": float(result.pvalue),
            }
        )
    frame = pd.DataFrame(rows)
    frame["p_holm"] = multipletests(frame["p"], method="holm")[1]
    return frame


def pairwise(studies: pd.DataFrame) -> pd.DataFrame:
    """Two-sided Mann–Whitney U for every pair, Holm-adjusted; r = 2U/(n1 n2) − 1 (> 0: the
    first strategy tends to score higher)."""
    groups = {name: g["best"].to_numpy() for name, g in studies.groupby("strategy")}
    rows = []
    for a, b in itertools.combinations(sorted(groups), 2):
        result = stats.mannwhitneyu(groups[a], groups[b], alternative="two-sided")
        r = 2 * result.statistic / (len(groups[a]) * len(groups[b])) - 1
        rows.append(
            {
                "a": a,
                "b": b,
                "U": float(result.statistic),
                "p": float(result.pvalue),
                "rank_biserial_r": float(r),
            }
        )
    frame = pd.DataFrame(rows, columns=["a", "b", "U", "p", "rank_biserial_r"])
    frame["p_holm"] = multipletests(frame["p"], method="holm")[1] if len(frame) else []
    return frame


def best_so_far_curves(
    studies: pd.DataFrame,
    trials: pd.DataFrame,
    response: str,
    direction: Direction,
    budget: str = "epochs",
) -> dict[str, pd.DataFrame]:
    """Best objective so far against the budget spent, one column per study, on a grid shared
    by every strategy: cumulative epochs, or with `budget="seconds"` wall time since the study
    started (at each trial's end)."""
    if trials.empty:
        return {}
    if budget == "epochs":
        grid = np.arange(1, int(studies["cumulative_epochs"].max()) + 1)
    else:
        longest = (trials["end_time"].max() - studies["start_time"].min()) / 1000
        grid = np.linspace(0, longest, 201)[1:]
    accumulate = Objective(response, direction).running_best
    curves: dict[str, pd.DataFrame] = {}
    for strategy, group in studies.groupby("strategy"):
        columns = {}
        for study_id, started in zip(group["study_id"], group["start_time"], strict=True):
            runs = _trial_sequence(trials, study_id, started)
            spent = runs[f"{budget}_spent"].to_numpy()
            best = accumulate(runs[f"metrics.{response}"].to_numpy(dtype=float))
            position = np.searchsorted(spent, grid, side="right") - 1
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
    frame = pd.DataFrame.from_dict(
        rows, orient="index", columns=[f"{int(f * 100)}%" for f in FRACTIONS]
    )
    frame.index.name = "strategy"
    return frame


def across_tasks(
    table: pd.DataFrame, direction: Direction, alpha: float = 0.05
) -> AcrossTasks | None:
    """Average ranks of the strategies over tasks (each task ranks the strategies' medians,
    1 = best), Friedman across tasks and Nemenyi's post-hoc test with its critical difference
    (Demšar 2006). Only strategies that ran on every task take part; None for one task."""
    medians = table.pivot_table(
        index="task", columns="strategy", values="best", aggfunc="median"
    ).dropna(axis=1)
    if len(medians) < 2 or medians.shape[1] < 2:
        return None
    ranks = medians.rank(axis=1, ascending=Objective("best", direction).sign < 0)
    k, n = medians.shape[1], len(medians)
    result = None
    if k >= 3:
        import scikit_posthocs

        test = stats.friedmanchisquare(*(medians[c] for c in medians.columns))
        result = {
            "strategies": k,
            "tasks": n,
            "chi2": float(test.statistic),
            "p": float(test.pvalue),
        }
        nemenyi = scikit_posthocs.posthoc_nemenyi_friedman(medians.to_numpy())
        nemenyi.index = nemenyi.columns = medians.columns
        q_alpha = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
        cd = float(q_alpha * np.sqrt(k * (k + 1) / (6 * n)))
    else:
        nemenyi, cd = None, None
    return AcrossTasks(
        ranks=ranks,
        average_ranks=ranks.mean().sort_values(),
        friedman=result,
        nemenyi=nemenyi,
        critical_difference=cd,
    )
