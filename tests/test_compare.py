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

from tunelab.compare import factorial
from tunelab.compare.__main__ import main
from tunelab.schema import ConfigError
from tunelab.tracking.runs import runs_frame

# Montgomery, D. C., Design and Analysis of Experiments (Wiley), Example 6.2: filtration rate of
# a chemical product, an unreplicated 2^4 in standard order (A = temperature, B = pressure,
# C = formaldehyde concentration, D = stirring rate), with its published effect estimates.
FILTRATION = [45, 71, 48, 65, 68, 60, 80, 65, 43, 100, 45, 104, 75, 86, 70, 96]
PUBLISHED_EFFECTS = {
    "A": 21.625, "B": 3.125, "C": 9.875, "D": 14.625, "A:B": 0.125, "A:C": -18.125,
    "A:D": 16.625, "B:C": 2.375, "B:D": -0.375, "C:D": -1.125, "A:B:C": 1.875, "A:B:D": 4.125,
    "A:C:D": -1.625, "B:C:D": -2.625, "A:B:C:D": 1.375,
}  # fmt: skip


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
    return [{"A": a, "B": b, "C": c, "D": d, "rate": y}
            for (d, c, b, a), y in zip(levels, FILTRATION, strict=True)]  # fmt: skip


def test_textbook_2k_example_gives_the_published_effects_through_a_server(mlflow_server, tmp_path):
    client = MlflowClient(mlflow_server)
    log_runs(client, "montgomery-6.2", montgomery_rows(), "rate")
    code = main(["factorial", "--tracking-uri", mlflow_server, "--experiment", "montgomery-6.2",
                 "--factors", "A,B,C,D", "--response", "rate", "--order", "4",
                 "--cache-dir", str(tmp_path / "cache"),
                 "--export-csv", str(tmp_path / "runs.csv")])  # fmt: skip
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
    assert {"anova.md", "effects.md", "one_way.csv", "half_normal.png", "main_effects.png"} <= {
        f.path.split("/")[-1] for f in client.list_artifacts(comparison.info.run_id, "factorial")
    }


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


def test_clear_errors(mlflow_server):
    client = MlflowClient(mlflow_server)
    log_runs(client, "errors", [{"lr": 0.1, "units": 64, "acc": 0.5},
                                {"lr": 0.1, "units": 128, "acc": 0.6}], "acc")  # fmt: skip
    with pytest.raises(ConfigError, match="--filter: no runs in experiment 'errors' with filter"):
        runs_frame(mlflow_server, "errors", "params.lr = '7'")
    with pytest.raises(ConfigError, match="--experiment: no experiment named 'nope'"):
        runs_frame(mlflow_server, "nope")
    frame = runs_frame(mlflow_server, "errors")
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
        overrides = ["dataset=digits", "budget=smoke", f"strategy={strategy}", f"seed={seed}",
                     f"tracking.experiment={experiment}"]  # fmt: skip
        run_study(overrides, tmp_path / f"{strategy}{seed}")
    assert main(["optimisers", "--tracking-uri", tracking_uri, "--experiment", experiment]) == 0
    client = MlflowClient(tracking_uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    studies = runs_frame(tracking_uri, experiment, "tags.`tunelab.kind` = 'study'")
    best = {s: g["metrics.best_val_accuracy"].to_numpy()
            for s, g in studies.groupby("tags.tunelab.strategy")}  # fmt: skip
    comparison = client.search_runs([experiment_id], "tags.`tunelab.kind` = 'comparison'")[0]
    assert float(comparison.data.params["kruskal.p"]) == pytest.approx(
        stats.kruskal(best["random"], best["tpe"]).pvalue
    )
    folder = client.download_artifacts(comparison.info.run_id, "optimisers", str(tmp_path))
    summary = pd.read_csv(f"{folder}/summary.csv", index_col=0)
    assert summary["studies"].to_dict() == {"random": 3, "tpe": 3}
    assert summary.loc["tpe", "median"] == pytest.approx(np.median(best["tpe"]))
    pairs = pd.read_csv(f"{folder}/pairwise.csv", index_col=0)
    u = stats.mannwhitneyu(best["random"], best["tpe"], alternative="two-sided")
    assert pairs.loc[0, "U"] == u.statistic and pairs.loc[0, "p"] == pytest.approx(u.pvalue)
    anytime = pd.read_csv(f"{folder}/anytime.csv", index_col=0)
    for strategy, values in best.items():  # rebuilt from the trials, it ends at the study's best
        assert anytime.loc[strategy, "100%"] == pytest.approx(np.median(values))
    assert {"best_per_study.png", "best_so_far.png", "summary.md"} <= {
        f.path.split("/")[-1] for f in client.list_artifacts(comparison.info.run_id, "optimisers")
    }


def test_runs_are_cached_as_parquet_until_refreshed(mlflow_server, tmp_path):
    client = MlflowClient(mlflow_server)
    rows = [{"units": 64, "units_2": "None", "acc": 0.5}, {"units": 128, "units_2": 7, "acc": 0.6}]
    log_runs(client, "cached", rows, "acc")
    first = runs_frame(mlflow_server, "cached", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("runs-*.parquet"))) == 1
    experiment_id = client.get_experiment_by_name("cached").experiment_id
    client.create_run(experiment_id)  # a new run: the cache does not know it yet
    again = runs_frame(mlflow_server, "cached", cache_dir=tmp_path)
    assert len(again) == len(first) == 2
    assert sorted(again["params.units"]) == [64, 128]
    fresh = runs_frame(mlflow_server, "cached", cache_dir=tmp_path, refresh=True)
    assert len(fresh) == 3


def test_seed_paired_tests_match_scipy():
    from tunelab.compare import optimisers

    rng = np.random.default_rng(1)
    rows = []
    for seed in range(1, 7):
        base = rng.normal(0.9, 0.02)  # a seed effect shared by every strategy
        for strategy, shift in (("hyperband", 0.02), ("random", 0.0), ("tpe", 0.01)):
            rows.append({"study_id": f"{strategy}-{seed}", "strategy": strategy, "seed": str(seed),
                         "best": base + shift + rng.normal(0, 0.002), "wall_time_s": 1.0,
                         "trials": 3, "cumulative_epochs": 6})  # fmt: skip
    table = pd.DataFrame(rows)
    result = optimisers.compare(table, pd.DataFrame(), "best_val_accuracy", "max")
    wide = table.pivot(index="seed", columns="strategy", values="best")
    expected = stats.friedmanchisquare(wide["hyperband"], wide["random"], wide["tpe"])
    assert result.friedman["p"] == pytest.approx(expected.pvalue) and result.friedman["seeds"] == 6
    first = result.paired.iloc[0]
    assert (first["a"], first["b"]) == ("hyperband", "random")
    assert first["p"] == pytest.approx(stats.wilcoxon(wide["hyperband"], wide["random"]).pvalue)
    assert (result.paired["p_holm"] >= result.paired["p"]).all()
