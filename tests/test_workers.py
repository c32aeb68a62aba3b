"""`workers=N`: local processes share one study through its Optuna storage, against a real
`mlflow server`; exactly the configured trials, none twice, all under one study run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_config, tunelab_cli

from tunelab.schema import ConfigError


@pytest.mark.parametrize(("strategy", "instead"), [
    ("hyperband", "strategy=tpe strategy.pruner=hyperband (Optuna's Hyperband pruner)"),
    ("bayesian", "strategy=gp (Optuna's Gaussian process)"),
    ("grid", "strategy=tpe"),
])  # fmt: skip
def test_a_strategy_that_runs_in_one_process_refuses_workers_naming_what_does(strategy, instead):
    with pytest.raises(ConfigError, match=(
        rf"^workers: strategy={strategy} runs in one process; with workers=2 use "
        rf"{instead.replace('(', '[(]').replace(')', '[)]')}$")):  # fmt: skip
        load_config([f"strategy={strategy}", "workers=2"])


def test_workers_must_be_positive():
    with pytest.raises(ConfigError, match="^workers: must be at least 1, got 0$"):
        load_config(["workers=0"])


@pytest.mark.slow
def test_two_workers_run_exactly_the_configured_trials_of_one_study(tracking_uri, tmp_path):
    import optuna
    from mlflow.tracking import MlflowClient

    out = tunelab_cli(["strategy=tpe", "strategy.n_trials=6", "strategy.pruner=none",
                       "workers=2", "dataset=digits", "budget=smoke", "quiet=true",
                       "tracking.experiment=workers"], cwd=tmp_path, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("workers").experiment_id
    (study,) = client.search_runs([experiment], "tags.`tunelab.kind` = 'study'")
    trials = client.search_runs([experiment], "tags.`tunelab.kind` = 'trial'")
    assert study.info.status == "FINISHED" and study.data.metrics["trials"] == 6
    assert sorted(int(t.data.tags["tunelab.trial_id"]) for t in trials) == list(range(6))
    assert {t.info.status for t in trials} == {"FINISHED"}
    assert {t.data.tags["mlflow.parentRunId"] for t in trials} == {study.info.run_id}
    assert {t.data.tags["tunelab.worker"] for t in trials} == {"0", "1"}  # both ran trials

    folder = tmp_path / ".tunelab" / "mlp-digits-tpe-seed0"
    optuna_study = optuna.load_study(study_name=folder.name,
                                     storage=f"sqlite:///{folder / 'optuna.db'}")  # fmt: skip
    assert [t.state.name for t in optuna_study.trials] == ["COMPLETE"] * 6
    journal = [json.loads(line) for line in (folder / "trials.jsonl").read_text().splitlines()]
    assert sorted(r["trial_id"] for r in journal) == [str(i) for i in range(6)]
    best = max(journal, key=lambda r: r["score"])
    assert study.data.tags["tunelab.best_trial_id"] == best["trial_id"]
    assert sorted(p.name for p in (folder / "best").iterdir()) == [
        f"{best['trial_id']}.headline.json", f"{best['trial_id']}.weights.npz"
    ]  # fmt: skip
    best_so_far = client.download_artifacts(study.info.run_id, "best_so_far.csv", str(tmp_path))
    rows = Path(best_so_far).read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(6))  # numbered across workers
