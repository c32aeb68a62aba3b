"""Chains of studies: stages run in order, a later stage tunes the factors an ANOVA ranked."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import load_config
from mlflow.tracking import MlflowClient

from tunelab.stages import run_stages

CHAIN = (
    "stages=[{name: screening, overrides: ['strategy=fractional_factorial'], analyse: true,"
    " claimed: 0.9},"
    " {name: factorial, overrides: ['strategy=full_factorial'], analyse: true, order: 2,"
    " responses: [test_accuracy]},"
    " {name: rsm, overrides: ['strategy=rsm'], factors_from: factorial, top: 2},"
    " {name: gp, overrides: ['strategy=gp_ei', 'strategy.max_trials=4',"
    " 'strategy.n_initial=2'], factors_from: factorial, top: 2},"
    " {name: picked, overrides: ['strategy=random', 'strategy.max_trials=2'],"
    " factors_from: factorial, tune: [dropout]}]"
)


@pytest.mark.slow
def test_a_chain_tunes_the_factors_its_anova_ranked_first(tracking_uri, tmp_path):
    overrides = [
        f"workdir={tmp_path}",
        "quiet=true",
        "dataset=digits",
        "budget=smoke",
        "study_name=chain",
        "tracking.experiment=chain",
        "tracking.log_model=false",
        "model.tune=[lr,depth,dropout]",
        "model.space.lr.low=1e-5",
        "model.space.lr.high=1e-1",
        CHAIN,
    ]
    said: list[str] = []
    summaries = run_stages(load_config(overrides), overrides, report=said.append)
    assert [len(s.trials) for s in summaries] == [4, 8, 4 + 4 + 3, 2 + 2, 2]
    client = MlflowClient(tracking_uri)
    experiment_id = client.get_experiment_by_name("chain").experiment_id
    factorials = [
        run
        for run in client.search_runs([experiment_id], "tags.`tunelab.kind` = 'comparison'")
        if run.data.params["analysis"] == "factorial"
    ]
    analyses = {
        run.data.params["filter"].split("'")[-2]: run
        for run in factorials
        if run.data.params["response"] == "best_val_accuracy"
    }
    assert set(analyses) == {summaries[0].study_id, summaries[1].study_id}
    (accuracy,) = [run for run in factorials if run.data.params["response"] == "test_accuracy"]
    assert accuracy.data.params["filter"].endswith(f"'{summaries[1].study_id}'")  # the factorial's
    factorial = analyses[summaries[1].study_id]
    assert factorial.data.params["runs"] == "8" and factorial.data.params["order"] == "2"
    path = client.download_artifacts(factorial.info.run_id, "factorial/anova.csv", str(tmp_path))
    anova = pd.read_csv(path, index_col=0)
    main_effects = anova.loc[["coded.lr", "coded.depth", "coded.dropout"], "PR(>F)"]
    top_two = [name.removeprefix("coded.") for name in main_effects.sort_values().index[:2]]
    rsm_trial = client.get_run(summaries[2].trials[0].run_id)
    assert {k for k in rsm_trial.data.params if k.startswith("coded.")} == {
        f"coded.{name}" for name in top_two
    }
    for summary in summaries[2:4]:
        assert set(summary.best_values) == set(top_two)
    (held,) = {"lr", "depth", "dropout"} - set(top_two)  # at the factorial's best trial's value
    best = summaries[1].best_values
    for summary in summaries[2:4]:
        trial = client.get_run(summary.trials[0].run_id)
        assert float(trial.data.params[held]) == pytest.approx(best[held])
    assert set(summaries[4].best_values) == {"dropout"}  # its own `tune`, the rest held
    picked = client.get_run(summaries[4].trials[0].run_id)
    assert [float(picked.data.params[k]) for k in ("lr", "depth")] == pytest.approx(
        [best["lr"], best["depth"]]
    )
    lines = [
        f"stage {s}: tuning {', '.join(top_two)}, the most significant factors of "
        f"stage factorial; holding its best trial's {held}={best[held]}"
        for s in ("rsm", "gp")
    ]
    lines.append(
        "stage picked: tuning dropout; holding stage factorial's best trial's "
        f"lr={best['lr']}, depth={best['depth']}"
    )
    assert said == lines
    comparisons = client.search_runs([experiment_id], "tags.`tunelab.kind` = 'comparison'")
    (table_run,) = [run for run in comparisons if run.data.params["analysis"] == "stages"]
    table = pd.read_csv(
        client.download_artifacts(table_run.info.run_id, "stages/table.csv", str(tmp_path)),
        index_col=0,
    )
    assert list(table.index) == ["screening", "factorial", "rsm", "gp", "picked"]
    assert list(table["trials"]) == [4, 8, 11, 4, 2]
    assert list(table["best_val_accuracy"]) == pytest.approx([s.best_score for s in summaries])
    assert table.loc["screening", "claimed"] == 0.9 and table["claimed"].isna().sum() == 4
    runs_before = len(client.search_runs([experiment_id], max_results=1000))
    said.clear()
    again = run_stages(
        load_config([*overrides, "resume=true"]), [*overrides, "resume=true"], report=said.append
    )
    assert [s.run_id for s in again] == [s.run_id for s in summaries]  # nothing ran again
    assert len(client.search_runs([experiment_id], max_results=1000)) == runs_before
    assert said[0].startswith("stage screening: finished before")
    assert [line for line in said if "tuning" in line] == lines
