"""The comparison module: runs logged to a real server, read back, analysed like statsmodels."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from mlflow.tracking import MlflowClient
from scipy import stats

from tunelab.analysis import factorial
from tunelab.compare.cli import main
from tunelab.schema import ConfigError
from tunelab.tracking.runs import log_comparison, runs_frame

# Montgomery, D. C., Design and Analysis of Experiments (Wiley), Example 6.2: filtration rate of
# a chemical product, an unreplicated 2^4 in standard order (A = temperature, B = pressure,
# C = formaldehyde concentration, D = stirring rate), with its published effect estimates.
FILTRATION = [45, 71, 48, 65, 68, 60, 80, 65, 43, 100, 45, 104, 75, 86, 70, 96]
PUBLISHED_EFFECTS = {
    "A": 21.625,
    "B": 3.125,
    "C": 9.875,
    "D": 14.625,
    "A:B": 0.125,
    "A:C": -18.125,
    "A:D": 16.625,
    "B:C": 2.375,
    "B:D": -0.375,
    "C:D": -1.125,
    "A:B:C": 1.875,
    "A:B:D": 4.125,
    "A:C:D": -1.625,
    "B:C:D": -2.625,
    "A:B:C:D": 1.375,
}


def log_runs(client: MlflowClient, experiment: str, rows: list[dict], metric: str) -> None:
    experiment_id = client.create_experiment(experiment)
    for row in rows:
        run = client.create_run(experiment_id, tags={"tunelab.kind": "trial"})
        for key, value in row.items():
            if key == metric:
                client.log_metric(run.info.run_id, key, value)
            else:
                client.log_param(run.info.run_id, key, value)
        client.set_terminated(run.info.run_id)


def montgomery_rows() -> list[dict]:
    levels = itertools.product([-1, 1], repeat=4)  # D slowest, A fastest: standard order
    return [
        {"A": a, "B": b, "C": c, "D": d, "rate": y}
        for (d, c, b, a), y in zip(levels, FILTRATION, strict=True)
    ]


@pytest.mark.slow
def test_textbook_2k_example_gives_the_published_effects_through_a_server(
    postgres_mlflow_server, tmp_path
):
    """Through the PostgreSQL-backed server (SQLite-backed ones serve every other study test)."""
    mlflow_server = postgres_mlflow_server
    client = MlflowClient(mlflow_server)
    log_runs(client, "montgomery-6.2", montgomery_rows(), "rate")
    code = main(
        [
            "factorial",
            "--tracking-uri",
            mlflow_server,
            "--experiment",
            "montgomery-6.2",
            "--factors",
            "A,B,C,D",
            "--response",
            "rate",
            "--order",
            "4",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--export-csv",
            str(tmp_path / "runs.csv"),
        ]
    )
    assert code == 0
    exported = pd.read_csv(tmp_path / "runs.csv")
    assert len(exported) == 16 and sorted(exported["metrics.rate"]) == sorted(FILTRATION)
    experiment = client.get_experiment_by_name("montgomery-6.2")
    comparison = client.search_runs(
        [experiment.experiment_id], "tags.`tunelab.kind` = 'comparison'"
    )[0]
    path = client.download_artifacts(comparison.info.run_id, "factorial", str(tmp_path))
    effects = pd.read_csv(f"{path}/effects.csv", index_col=0)["effect"]
    assert effects.to_dict() == pytest.approx(PUBLISHED_EFFECTS)
    assert float(comparison.data.params["lenth.pse"]) == pytest.approx(2.625)  # 1.5 x 1.75
    assert {
        "anova.md",
        "effects.md",
        "one_way.csv",
        "half_normal.png",
        "main_effects.png",
        "interactions.png",
    } <= {f.path.split("/")[-1] for f in client.list_artifacts(comparison.info.run_id, "factorial")}


def test_anova_matches_statsmodels_and_scipy_called_directly():
    rng = np.random.default_rng(0)
    rows = []
    for _rep, (a, b, c) in itertools.product(range(3), itertools.product([-1, 1], repeat=3)):
        y = 10 + 2 * a - 1.5 * b + 0.8 * a * b + rng.normal(0, 0.5)  # c has no effect
        rows.append({"lr": [0.001, 0.01][a > 0], "batch": [32, 128][b > 0], "c": c, "y": y})
    data = pd.DataFrame(rows)
    for typ in (1, 2, 3):
        ours = factorial.analyse(data, ["lr", "batch", "c"], "y", order=2, typ=typ).anova
        wrap = "C({}, Sum)" if typ == 3 else "C({})"
        formula = "y ~ " + " + ".join(factorial.terms(["lr", "batch", "c"], 2, wrap))
        direct = sm.stats.anova_lm(smf.ols(formula, data).fit(), typ=typ)
        np.testing.assert_allclose(ours["sum_sq"].to_numpy(), direct["sum_sq"].to_numpy())
        np.testing.assert_allclose(ours["F"].to_numpy(), direct["F"].to_numpy(), equal_nan=True)
    result = factorial.analyse(data, ["lr", "batch", "c"], "y", order=2)
    assert result.effects.loc["lr", "effect"] == pytest.approx(4, abs=0.5)  # 2 x coefficient 2
    assert result.effects.loc["batch", "effect"] == pytest.approx(-3, abs=0.5)
    assert result.effects.loc["lr:batch", "effect"] == pytest.approx(1.6, abs=0.5)
    assert result.anova.loc["c", "PR(>F)"] > 0.05 > result.anova.loc["lr", "PR(>F)"]
    f, p = stats.f_oneway(*(g["y"] for _, g in data.groupby("lr")))
    assert result.one_way.loc["lr", "F"] == pytest.approx(f)
    assert result.one_way.loc["lr", "p"] == pytest.approx(p)
    assert result.lenth is None  # replicated: a real residual, no need for Lenth


@pytest.mark.parametrize("bend", [0.0, 3.0])
def test_centre_points_make_the_codes_numeric_and_test_curvature(bend):
    """A 2^3 design with 4 centre points: categorical factors of three levels would leave the
    main effects rank-deficient (NaN), as `python -m tunelab.compare factorial` gave before."""
    rng = np.random.default_rng(1)
    points = [*itertools.product([-1, 1], repeat=3), *[(0, 0, 0)] * 4]
    rows = [
        {
            "lr": a,
            "batch": b,
            "c": c,
            "y": 10
            + 2 * a
            - 1.5 * b
            + 0.8 * a * b
            + bend * (a == b == c == 0)
            + rng.normal(0, 0.3),
        }
        for a, b, c in points
    ]
    data = pd.DataFrame(rows)
    result = factorial.analyse(data, ["lr", "batch", "c"], "y", order=2)
    numeric = data.assign(curvature=[float(a == b == c == 0) for a, b, c in points])
    direct = sm.stats.anova_lm(
        smf.ols("y ~ lr + batch + c + lr:batch + lr:c + batch:c + curvature", numeric).fit(), typ=2
    )
    np.testing.assert_allclose(result.anova["sum_sq"].to_numpy(), direct["sum_sq"].to_numpy())
    assert list(result.anova["df"]) == [1, 1, 1, 1, 1, 1, 1, 4]
    assert result.anova.loc["lr", "PR(>F)"] < 0.01 and result.anova.loc["c", "PR(>F)"] > 0.05
    assert (result.anova.loc["curvature", "PR(>F)"] < 0.01) == (bend > 0)
    assert result.effects.loc["lr", "effect"] == pytest.approx(4, abs=0.5)  # corners only
    assert result.effects.loc["lr:batch", "effect"] == pytest.approx(1.6, abs=0.5)


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A local SQLite tracking store: runs_frame reads any tracking URI, and the quick tests
    need no server."""
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


def test_clear_errors(sqlite_store):
    client = MlflowClient(sqlite_store)
    log_runs(
        client,
        "errors",
        [{"lr": 0.1, "units": 64, "acc": 0.5}, {"lr": 0.1, "units": 128, "acc": 0.6}],
        "acc",
    )
    with pytest.raises(ConfigError, match="--filter: no runs in experiment 'errors' with filter"):
        runs_frame(sqlite_store, "errors", "params.lr = '7'")
    with pytest.raises(ConfigError, match="--experiment: no experiment named 'nope'"):
        runs_frame(sqlite_store, "nope")
    frame = runs_frame(sqlite_store, "errors")
    assert frame["params.lr"].dtype == float and frame["params.units"].dtype == np.int64
    with pytest.raises(ConfigError, match=r"--factors: lr has one level only \(0.1\)"):
        factorial.tidy(frame, ["lr", "units"], "acc")
    with pytest.raises(ConfigError, match="'width' is neither a param, a metric nor a tag"):
        factorial.tidy(frame, ["width"], "acc")
    frame.loc[0, "metrics.acc"] = np.nan
    with pytest.raises(ConfigError, match="acc is missing or not numeric in run"):
        factorial.tidy(frame, ["units"], "acc")


@pytest.mark.slow
def test_two_strategy_three_seed_shootout_end_to_end(tracking_uri, tmp_path):
    from conftest import run_study

    experiment = "shootout"
    for strategy, seed in itertools.product(("random", "tpe"), (1, 2, 3)):
        overrides = [
            "dataset=digits",
            "budget=smoke",
            f"strategy={strategy}",
            f"seed={seed}",
            f"tracking.experiment={experiment}",
        ]
        run_study(overrides, tmp_path / f"{strategy}{seed}")
    assert (
        main(
            [
                "optimisers",
                "--tracking-uri",
                tracking_uri,
                "--experiment",
                experiment,
                "--target",
                "0.5",
            ]
        )
        == 0
    )
    client = MlflowClient(tracking_uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    studies = runs_frame(tracking_uri, experiment, "tags.`tunelab.kind` = 'study'")
    best = {
        s: g["metrics.best_val_accuracy"].to_numpy()
        for s, g in studies.groupby("tags.tunelab.strategy")
    }
    comparison = client.search_runs([experiment_id], "tags.`tunelab.kind` = 'comparison'")[0]
    assert float(comparison.data.params["kruskal.p"]) == pytest.approx(
        stats.kruskal(best["random"], best["tpe"]).pvalue
    )
    folder = client.download_artifacts(comparison.info.run_id, "optimisers", str(tmp_path))
    summary = pd.read_csv(f"{folder}/summary.csv", index_col=[0, 1]).loc["mlp/digits"]
    assert summary["studies"].to_dict() == {"random": 3, "tpe": 3}
    assert summary["reached_target"].to_dict() == {s: (v >= 0.5).sum() for s, v in best.items()}
    assert (summary["median_epochs_to_target"] <= summary["median_epochs"]).all()
    assert summary.loc["random", "median_normalised"] == pytest.approx(1.0)
    assert summary.loc["tpe", "median"] == pytest.approx(np.median(best["tpe"]))
    pairs = pd.read_csv(f"{folder}/pairwise.csv", index_col=0)
    u = stats.mannwhitneyu(best["random"], best["tpe"], alternative="two-sided")
    assert pairs.loc[0, "U"] == u.statistic and pairs.loc[0, "p"] == pytest.approx(u.pvalue)
    anytime = pd.read_csv(f"{folder}/anytime.csv", index_col=[0, 1]).loc["mlp/digits"]
    for strategy, values in best.items():  # rebuilt from the trials, it ends at the study's best
        assert anytime.loc[strategy, "100%"] == pytest.approx(np.median(values))
    assert {
        "best_per_study_mlp-digits.png",
        "best_so_far_mlp-digits.png",
        "best_so_far_time_mlp-digits.png",
        "summary.md",
    } <= {
        f.path.split("/")[-1] for f in client.list_artifacts(comparison.info.run_id, "optimisers")
    }


def test_runs_are_cached_as_parquet_until_refreshed(sqlite_store, tmp_path):
    client = MlflowClient(sqlite_store)
    rows = [{"units": 64, "units_2": "None", "acc": 0.5}, {"units": 128, "units_2": 7, "acc": 0.6}]
    log_runs(client, "cached", rows, "acc")
    first = runs_frame(sqlite_store, "cached", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("runs-*.parquet"))) == 1
    experiment_id = client.get_experiment_by_name("cached").experiment_id
    client.create_run(experiment_id)  # a new run: the cache does not know it yet
    again = runs_frame(sqlite_store, "cached", cache_dir=tmp_path)
    assert len(again) == len(first) == 2
    assert sorted(again["params.units"]) == [64, 128]
    fresh = runs_frame(sqlite_store, "cached", cache_dir=tmp_path, refresh=True)
    assert len(fresh) == 3


def test_seed_paired_tests_match_scipy():
    from tunelab.analysis import optimisers

    rng = np.random.default_rng(1)
    rows = []
    for seed in range(1, 7):
        base = rng.normal(0.9, 0.02)  # a seed effect shared by every strategy
        for strategy, shift in (("hyperband", 0.02), ("random", 0.0), ("tpe", 0.01)):
            rows.append(
                {
                    "study_id": f"{strategy}-{seed}",
                    "strategy": strategy,
                    "seed": str(seed),
                    "task": "mlp/digits",
                    "start_time": 0,
                    "best": base + shift + rng.normal(0, 0.002),
                    "wall_time_s": 1.0,
                    "trials": 3,
                    "cumulative_epochs": 6,
                }
            )
    table = pd.DataFrame(rows)
    result = optimisers.compare(table, pd.DataFrame(), "best_val_accuracy", "max")
    wide = table.pivot(index="seed", columns="strategy", values="best")
    expected = stats.friedmanchisquare(wide["hyperband"], wide["random"], wide["tpe"])
    friedman = result.friedman.iloc[0]
    assert friedman["p"] == pytest.approx(expected.pvalue) and friedman["seeds"] == 6
    first = result.paired.iloc[0]
    assert (first["a"], first["b"]) == ("hyperband", "random")
    assert first["p"] == pytest.approx(stats.wilcoxon(wide["hyperband"], wide["random"]).pvalue)
    assert (result.paired["p_holm"] >= result.paired["p"]).all()


def study_rows(task: str, best: dict[str, list[float]]) -> list[dict]:
    return [
        {
            "study_id": f"{task}-{strategy}-{seed}",
            "task": task,
            "strategy": strategy,
            "seed": str(seed),
            "best": value,
            "wall_time_s": 10.0,
            "trials": 4,
            "cumulative_epochs": 8,
            "start_time": 0,
        }
        for strategy, values in best.items()
        for seed, value in enumerate(values)
    ]


def test_normalised_score_and_bootstrap_ci_of_the_median():
    from tunelab.analysis import optimisers

    table = pd.DataFrame(
        study_rows("mlp/mnist", {"random": [0.80, 0.84, 0.90], "tpe": [0.92, 0.94, 1.00]})
    )
    result = optimisers.compare(table, pd.DataFrame(), "acc", "max")
    summary = result.summary.loc["mlp/mnist"]
    # best known 1.00, random's median 0.84: tpe's median 0.94 scores (1 - 0.94) / 0.16
    assert summary.loc["random", "median_normalised"] == pytest.approx(1.0)
    assert summary.loc["tpe", "median_normalised"] == pytest.approx(0.06 / 0.16)
    low, high = summary.loc["tpe", ["median_ci_low", "median_ci_high"]]
    expected = stats.bootstrap(
        ([0.92, 0.94, 1.00],), np.median, n_resamples=2000, method="percentile", random_state=0
    ).confidence_interval
    assert (low, high) == pytest.approx((expected.low, expected.high))
    assert 0.92 <= low <= 0.94 <= high <= 1.00
    maximised = optimisers.normalised_scores(table, "random", "max")
    minimised = optimisers.normalised_scores(table.assign(best=-table["best"]), "random", "min")
    assert minimised.to_numpy() == pytest.approx(maximised.to_numpy())
    assert optimisers.normalised_scores(table, "grid", "max").isna().all()  # no baseline ran


def test_epochs_and_time_to_a_target_value():
    from tunelab.analysis import optimisers

    table = pd.DataFrame(study_rows("mlp/mnist", {"random": [0.0], "tpe": [0.0]}))
    table["start_time"] = 1_000
    trials = pd.DataFrame(
        [
            {
                "tags.tunelab.study_id": study,
                "tags.tunelab.trial_index": str(i),
                "metrics.acc": acc,
                "metrics.epochs_trained": 3,
                "end_time": 1_000 + 2_000 * (i + 1),
            }
            for study, accs in (
                ("mlp/mnist-random-0", [0.5, 0.7, 0.95]),
                ("mlp/mnist-tpe-0", [0.91, 0.6, 0.99]),
            )
            for i, acc in enumerate(accs)
        ]
    )
    table["best"] = [0.95, 0.99]
    costs = optimisers.to_target(table, trials.iloc[::-1], "acc", "max", target=0.9)
    assert costs["epochs_to_target"].tolist() == [9.0, 3.0]  # trial order, not row order
    assert costs["time_to_target_s"].tolist() == [6.0, 2.0]
    never = optimisers.to_target(table, trials, "acc", "max", target=0.999)
    assert never["epochs_to_target"].isna().all()
    summary = optimisers.compare(table, trials, "acc", "max", target=0.9).summary
    assert summary["median_epochs_to_target"].tolist() == [9.0, 3.0]
    by_time = optimisers.best_so_far_curves(table, trials, "acc", "max", budget="seconds")
    tpe = by_time["tpe"]["mlp/mnist-tpe-0"]  # trials end 2, 4 and 6 s after the start
    assert tpe.index.max() == pytest.approx(6.0)
    assert tpe.loc[:1.9].isna().all() and (tpe.loc[2.0:5.9] == 0.91).all()
    assert tpe.iloc[-1] == 0.99
    assert summary["reached_target"].tolist() == [1, 1]


def test_average_ranks_friedman_and_nemenyi_across_tasks():
    import scikit_posthocs

    from tunelab.analysis import optimisers

    rng = np.random.default_rng(3)
    rows = []
    for task in range(6):  # tpe best, then random, then grid, on every task but one
        skill = (
            {"tpe": 0.9, "random": 0.8, "grid": 0.7}
            if task
            else {"tpe": 0.8, "random": 0.9, "grid": 0.7}
        )
        rows += study_rows(
            f"task{task}", {s: list(v + rng.normal(0, 0.001, 3)) for s, v in skill.items()}
        )
    across = optimisers.across_tasks(pd.DataFrame(rows), "max")
    assert across.average_ranks.to_dict() == pytest.approx(
        {"tpe": 7 / 6, "random": 11 / 6, "grid": 3.0}
    )
    medians = pd.DataFrame(rows).pivot_table(
        index="task", columns="strategy", values="best", aggfunc="median"
    )
    expected = stats.friedmanchisquare(*(medians[c] for c in medians.columns))
    assert across.friedman["p"] == pytest.approx(expected.pvalue)
    nemenyi = scikit_posthocs.posthoc_nemenyi_friedman(medians.to_numpy())
    assert across.nemenyi.to_numpy() == pytest.approx(nemenyi.to_numpy())
    # Demšar (2006), Table 5(a): q_0.05 = 2.343 for three classifiers
    assert across.critical_difference == pytest.approx(2.343 * np.sqrt(3 * 4 / (6 * 6)), abs=1e-3)
    one_task = optimisers.across_tasks(pd.DataFrame(rows[:9]), "max")
    assert one_task is None


@pytest.mark.slow
def test_optimisers_cli_ranks_strategies_across_tasks(mlflow_server, tmp_path):
    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment("tasks")
    rng = np.random.default_rng(5)
    for task, strategy, seed in itertools.product(range(4), ("grid", "random", "tpe"), (1, 2)):
        tags = {
            "tunelab.kind": "study",
            "tunelab.study_id": f"{task}{strategy}{seed}",
            "tunelab.strategy": strategy,
            "tunelab.model": "mlp",
            "tunelab.dataset": f"data{task}",
            "tunelab.seed": str(seed),
            "tunelab.objective": "val_accuracy (max)",
        }
        run_id = client.create_run(experiment_id, tags=tags).info.run_id
        best = {"grid": 0.7, "random": 0.8, "tpe": 0.9}[strategy] + rng.normal(0, 0.01)
        for key, value in {
            "best_val_accuracy": best,
            "wall_time_s": 9.0,
            "trials": 4,
            "cumulative_epochs": 8,
        }.items():
            client.log_metric(run_id, key, value)
        client.set_terminated(run_id)
    assert (
        main(
            [
                "optimisers",
                "--tracking-uri",
                mlflow_server,
                "--experiment",
                "tasks",
                "--cache-dir",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    comparison = client.search_runs([experiment_id], "tags.`tunelab.kind` = 'comparison'")[0]
    assert comparison.data.params["tasks"] == "4"
    assert float(comparison.data.params["tasks.friedman.chi2"]) == pytest.approx(8.0)  # 3 ranks
    folder = client.download_artifacts(comparison.info.run_id, "optimisers", str(tmp_path))
    ranks = pd.read_csv(f"{folder}/average_ranks.csv", index_col=0)["average_rank"]
    assert ranks.to_dict() == {"tpe": 1.0, "random": 2.0, "grid": 3.0}
    summary = pd.read_csv(f"{folder}/summary.csv", index_col=[0, 1])
    assert len(summary) == 12 and summary.index.levels[0].tolist() == [
        f"mlp/data{t}" for t in range(4)
    ]
    assert "critical_difference.png" in {
        f.path.split("/")[-1] for f in client.list_artifacts(comparison.info.run_id, "optimisers")
    }


@pytest.mark.slow
def test_a_comparison_run_takes_more_params_than_one_mlflow_request_holds(mlflow_server):
    client = MlflowClient(mlflow_server)
    client.create_experiment("many-params")
    params = {f"lenth.effect_{i}": i for i in range(150)} | {"formula": "y ~ " + "a + " * 2000}
    run_id = log_comparison(mlflow_server, "many-params", "c", params, {}, {})
    logged = client.get_run(run_id).data.params
    assert len(logged) == 151 and logged["lenth.effect_149"] == "149"
    assert len(logged["formula"]) == 6000  # cut to MLflow's limit, not refused
