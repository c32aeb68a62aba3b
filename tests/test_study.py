"""End to end: smoke studies against a real `mlflow server`, read back with MlflowClient."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import PROJECT, run_study, tunelab_cli
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

SMOKE = ["dataset=digits", "budget=smoke"]
TRIAL_ARTIFACTS = {
    "plots/confusion_matrix.png",
    "plots/learning_curves.png",
    "plots/weights.png",
    "tables/confusion_matrix.csv",
    "reports/classification_report.json",
}


def artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def children(client: MlflowClient, parent: str) -> list:
    run = client.get_run(parent)
    return client.search_runs(
        [run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'", max_results=1000
    )


STRATEGIES = {
    "hyperband": [],
    "random": [],
    "keras_bayesian": [],
    "tpe": ["strategy.pruner=median"],
    "grid": ["model.tune=[units,activation]", "model.space.units.values=[16,32]"],
}


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_smoke_study_per_strategy_nests_trials_under_the_study(strategy, tracking_uri, tmp_path):
    summary = run_study([*SMOKE, f"strategy={strategy}", *STRATEGIES[strategy]], tmp_path)
    assert gc.get_freeze_count() == 0  # the collector has every object back
    client = MlflowClient(tracking_uri)
    study = client.get_run(summary.run_id)
    assert study.info.status == "FINISHED"
    assert study.data.tags["tunelab.kind"] == "study"
    assert study.data.tags["tunelab.strategy"] == strategy
    assert {"tunelab.git_commit", "tunelab.version", "tunelab.seed"} <= set(study.data.tags)
    assert study.data.metrics["trials"] == len(summary.trials) > 0
    assert study.data.metrics["best_val_accuracy"] == pytest.approx(summary.best_score)
    assert {"best_so_far.csv", "plots/best_so_far.png", "config/resolved.yaml"} <= artifact_paths(
        client, summary.run_id
    )
    runs = children(client, summary.run_id)
    assert len(runs) == len(summary.trials)
    assert len({r.data.tags["tunelab.trial_id"] for r in runs}) == len(runs)
    best_child = max(r.data.metrics["best_val_accuracy"] for r in runs)
    assert best_child == pytest.approx(summary.best_score)
    epochs = 0
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.tags["tunelab.trial_status"] in ("COMPLETE", "PRUNED")
        assert {"lr", "units", "batch_size", "epochs"} <= set(run.data.params)
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        start = int(run.data.params["initial_epoch"])
        assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(
            range(start, start + int(run.data.metrics["epochs_trained"]))
        )
        assert {"test_accuracy", "test_macro_f1", "weights/layer_0/std.after"} <= set(
            run.data.metrics
        )
        epochs += int(run.data.metrics["epochs_trained"])
    assert study.data.metrics["cumulative_epochs"] == epochs
    assert TRIAL_ARTIFACTS <= artifact_paths(client, runs[0].info.run_id)
    if strategy == "hyperband":
        assert all("tuner.bracket" in r.data.tags for r in runs)
        assert any(int(r.data.params["initial_epoch"]) > 0 for r in runs)  # continued trials


def test_registry_champion_moves_only_when_beaten(tracking_uri, tmp_path):
    fixed = [
        *SMOKE,
        "strategy=grid",
        "model.tune=[]",
        "tracking.register=true",
        "tracking.model_name=champion-test",
    ]
    weak = ["model.hparams.lr=1e-6", "model.training.epochs=1"]
    strong = ["model.hparams.lr=0.01", "model.training.epochs=6"]
    first = run_study([*fixed, *weak, "study_name=weak"], tmp_path / "a")
    second = run_study([*fixed, *strong, "study_name=strong"], tmp_path / "b")
    third = run_study([*fixed, *weak, "study_name=weak2"], tmp_path / "c")
    assert second.best_score > first.best_score
    assert [s.registered["champion"] for s in (first, second, third)] == [True, True, False]
    client = MlflowClient(tracking_uri)
    champion = client.get_model_version_by_alias("champion-test", "champion")
    assert int(champion.version) == second.registered["version"]
    assert float(champion.tags["score"]) == pytest.approx(second.best_score)
    from tunelab.data import load_dataset
    from tunelab.data.digits import Digits, DigitsSettings

    data = load_dataset(Digits, DigitsSettings(), seed=0)
    model = mlflow.pyfunc.load_model("models:/champion-test@champion")
    probabilities = np.asarray(model.predict(data.x_test[:8]))
    assert probabilities.shape == (8, 10)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)


def test_same_seed_reproduces_the_study(tracking_uri, tmp_path):
    args = [*SMOKE, "strategy=random", "seed=7"]
    a = run_study([*args, "study_name=repro-a"], tmp_path / "a")
    b = run_study([*args, "study_name=repro-b"], tmp_path / "b")
    assert [t.values for t in a.trials] == [t.values for t in b.trials]
    assert [t.score for t in a.trials] == [t.score for t in b.trials]
    client = MlflowClient(tracking_uri)
    for ta, tb in zip(a.trials, b.trials, strict=True):
        la = [m.value for m in client.get_metric_history(ta.run_id, "val_loss")]
        lb = [m.value for m in client.get_metric_history(tb.run_id, "val_loss")]
        assert la == lb and len(la) == 2


def test_failing_trials_are_failed_with_reason_and_the_study_goes_on(tracking_uri, tmp_path):
    summary = run_study(
        [
            *SMOKE,
            "strategy=grid",
            "model.tune=[units,lr]",
            "model.space.units.values=[0,16]",
            "~model.space.lr",
            "+model.space.lr={type: choice, values: [1e12, 0.01]}",
            "model.hparams.optimizer=sgd",
        ],
        tmp_path,
    )
    client = MlflowClient(tracking_uri)
    by_values = {(t.values["units"], t.values["lr"]): t for t in summary.trials}
    assert by_values[(16, 0.01)].status == "COMPLETE"
    zero_units = client.get_run(by_values[(0, 0.01)].run_id)
    assert zero_units.info.status == "FAILED"
    assert "units" in zero_units.data.tags["tunelab.failure_reason"]
    exploded = client.get_run(by_values[(16, 1e12)].run_id)
    assert exploded.info.status == "FAILED"
    assert "not finite" in exploded.data.tags["tunelab.failure_reason"]
    study = client.get_run(summary.run_id)
    assert study.info.status == "FINISHED"
    assert study.data.metrics["trials_failed"] == 3
    assert study.data.metrics["trials_completed"] == 1


def test_mlflow_run_entry_point(mlflow_server, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "run",
            str(PROJECT),
            "--env-manager",
            "local",
            "--experiment-name",
            "mlproject",
            "-P",
            "strategy=random",
            "-P",
            "dataset=digits",
            "-P",
            f"overrides=budget=smoke quiet=true workdir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            **os.environ,
            "MLFLOW_TRACKING_URI": mlflow_server,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
    )
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("mlproject")
    studies = client.search_runs([experiment.experiment_id], "tags.`tunelab.kind` = 'study'")
    assert len(studies) == 1  # the project run itself is the study run
    study = studies[0]
    assert study.info.status == "FINISHED"
    assert study.data.params["strategy"] == "random"  # logged by `mlflow run`
    assert len(children(client, study.info.run_id)) == 2


def test_bad_initialiser_preset_stays_stuck_near_chance(tracking_uri, tmp_path):
    summary = run_study(["experiment=mnist_mlp/bad_init", "budget=smoke"], tmp_path)
    assert len(summary.trials) == 1
    trial = MlflowClient(tracking_uri).get_run(summary.trials[0].run_id)
    assert trial.data.params["initializer"] == "random_normal_mean10"
    assert trial.data.metrics["test_accuracy"] < 0.25  # 10 classes: chance is 0.10
    assert trial.data.metrics["weights/layer_0/mean.before"] == pytest.approx(10, abs=0.1)


def test_pruned_trials_are_tagged_pruned_not_left_as_finished_lookalikes(tracking_uri, tmp_path):
    summary = run_study(
        [
            *SMOKE,
            "strategy=grid",
            "~strategy.randomize",
            "~strategy.points",
            "~strategy.max_points",
            "strategy.storage=unused",
            "~strategy.storage",  # Hydra cannot delete a null key
            "strategy.name=prune",
            "strategy._target_=strategies_for_tests.PruneEveryTrial",
            "model.training.epochs=4",
        ],
        tmp_path,
    )
    client = MlflowClient(tracking_uri)
    assert [t.status for t in summary.trials] == ["PRUNED", "PRUNED"]
    for trial in summary.trials:
        run = client.get_run(trial.run_id)
        assert run.data.tags["tunelab.trial_status"] == "PRUNED"
        assert run.data.tags["tunelab.stop_reason"] == "pruned"
        assert run.data.metrics["epochs_trained"] == 2  # epochs 0 and 1, then stopped
    assert client.get_run(summary.run_id).data.metrics["trials_pruned"] == 2


def test_shootout_preset_sweeps_then_compares_each_job_its_own_study(mlflow_server, tmp_path):
    out = tunelab_cli(
        [
            "-m",
            "experiment=optimiser_shootout",
            "strategy=random,grid",
            "seed=1",
            "dataset=digits",
            "budget=smoke",
            "quiet=true",
            "model.tune=[units]",
            "model.space.units.values=[16]",
            f"workdir={tmp_path}",
            "tracking.experiment=multirun",
        ],
        tmp_path,
        env={"MLFLOW_TRACKING_URI": mlflow_server},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("multirun")
    studies = client.search_runs([experiment.experiment_id], "tags.`tunelab.kind` = 'study'")
    assert sorted(s.data.tags["tunelab.strategy"] for s in studies) == ["grid", "random"]
    assert all(s.info.status == "FINISHED" for s in studies)
    comparison = client.search_runs(
        [experiment.experiment_id], "tags.`tunelab.kind` = 'comparison'"
    )
    assert len(comparison) == 1 and comparison[0].data.params["strategies"] == "grid,random"


def test_augmented_cnn_study_logs_a_loadable_model(tracking_uri, tmp_path):
    summary = run_study(
        [
            *SMOKE,
            "model=cnn",
            "strategy=grid",
            "model.tune=[]",
            "model.hparams.augment=true",
            "dataset.augmentation.shear=0.2",
            "dataset.augmentation.flip=true",
        ],
        tmp_path,
    )
    assert summary.trials[0].status == "COMPLETE"
    client = MlflowClient(tracking_uri)
    assert client.get_run(summary.run_id).info.status == "FINISHED"
    model_id = client.search_logged_models(
        [client.get_run(summary.run_id).info.experiment_id],
        filter_string=f"source_run_id = '{summary.run_id}'",
    )[0].model_id
    model = mlflow.pyfunc.load_model(f"models:/{model_id}")
    assert np.asarray(model.predict(np.zeros((2, 8, 8, 1), np.float32))).shape == (2, 10)


def test_study_and_registry_through_a_postgresql_backed_server(
    postgres_mlflow_server, monkeypatch, tmp_path
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", postgres_mlflow_server)
    mlflow.set_tracking_uri(postgres_mlflow_server)
    summary = run_study(
        [
            *SMOKE,
            "strategy=random",
            "strategy.max_trials=2",
            "tracking.register=true",
            "tracking.model_name=on-postgres",
        ],
        tmp_path,
    )
    client = MlflowClient(postgres_mlflow_server)
    trials = children(client, summary.run_id)
    assert len(trials) == 2 and all(t.info.status == "FINISHED" for t in trials)
    assert all(len(client.get_metric_history(t.info.run_id, "val_loss")) >= 1 for t in trials)
    champion = client.get_model_version_by_alias("on-postgres", "champion")
    assert int(champion.version) == summary.registered["version"] == 1
    model = mlflow.pyfunc.load_model("models:/on-postgres@champion")
    assert np.asarray(model.predict(np.zeros((2, 8, 8, 1), np.float32))).shape == (2, 10)


# What a CNN classification trial and its study logged before model families had tasks (read
# from a smoke study at commit ec8f095, plus test_top_class_share since); the task seam must not
# change a single name.
CLASSIFIER_TRIAL_METRICS = {
    "accuracy",
    "best_epoch",
    "best_val_accuracy",
    "epoch_time",
    "epochs_trained",
    "loss",
    "lr",
    "macro_f1",
    "param_count",
    "test_accuracy",
    "test_macro_f1",
    "val_accuracy",
    "val_loss",
    "val_macro_f1",
    "test_top_class_share",
    *(f"test_f1.{d}" for d in range(10)),
}
CLASSIFIER_STUDY_METRICS = {
    "best_trial_test_accuracy",
    "best_trial_test_macro_f1",
    "best_val_accuracy",
    "cumulative_epochs",
    "trials",
    "trials_completed",
    "trials_failed",
    "trials_pruned",
    "wall_time_s",
}
CLASSIFIER_TRIAL_TAGS = {
    "mlflow.parentRunId",
    "mlflow.runName",
    "tunelab.budget",
    "tunelab.dataset",
    "tunelab.git_commit",
    "tunelab.kind",
    "tunelab.model",
    "tunelab.objective",
    "tunelab.process",
    "tunelab.record",
    "tunelab.repetition",
    "tunelab.seed",
    "tunelab.stop_reason",
    "tunelab.strategy",
    "tunelab.study_id",
    "tunelab.study_name",
    "tunelab.trial_id",
    "tunelab.trial_index",
    "tunelab.trial_key",
    "tunelab.trial_status",
    "tunelab.tuned",
    "tunelab.version",
}


def test_a_classification_study_logs_the_names_it_logged_before_the_task_seam(
    tracking_uri, tmp_path
):
    summary = run_study([*SMOKE, "model=cnn", "strategy=random", "strategy.max_trials=1"], tmp_path)
    client = MlflowClient(tracking_uri)
    (trial,) = children(client, summary.run_id)
    metrics = set(trial.data.metrics)
    assert {m for m in metrics if not m.startswith("weights/")} == CLASSIFIER_TRIAL_METRICS
    layers = {m.split("/")[1] for m in metrics if m.startswith("weights/")}
    assert layers == {f"layer_{i}" for i in range(len(layers))} and len(layers) > 3  # by position
    assert set(trial.data.tags) == CLASSIFIER_TRIAL_TAGS
    assert artifact_paths(client, trial.info.run_id) == TRIAL_ARTIFACTS
    study = client.get_run(summary.run_id)
    assert set(study.data.metrics) == CLASSIFIER_STUDY_METRICS
    assert artifact_paths(client, summary.run_id) == {  # and the searched space since 36
        "best_so_far.csv",
        "config/resolved.yaml",
        "config/space.yaml",
        "plots/best_so_far.png",
    }
    assert study.data.params["objective.name"] == "val_accuracy"
    assert study.data.params["objective.direction"] == "max"
    sizes = {k: study.data.params[f"data.n_{k}"] for k in ("train", "val", "test")}
    assert sizes == {"train": "300", "val": "100", "test": "100"}  # digits at budget=smoke
    assert sum(map(int, study.data.params["data.train_per_class"].split(","))) == 300


def test_a_study_whose_first_trials_all_fail_alike_stops_with_one_line(mlflow_server, tmp_path):
    out = tunelab_cli(
        [
            *SMOKE,
            "strategy=random",
            "strategy.max_trials=6",
            "model.tune=[lr]",
            "model.hparams.units=0",
            "quiet=true",
            f"workdir={tmp_path}",
            "tracking.experiment=all-fail",
        ],
        tmp_path,
        env={"MLFLOW_TRACKING_URI": mlflow_server},
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "tunelab: error: the first 3 trials all failed with the same error, "
        "so the study stops: ValueError: Received an invalid value for `units`"
    )
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("all-fail")
    runs = client.search_runs([experiment.experiment_id])
    trials = [r for r in runs if r.data.tags["tunelab.kind"] == "trial"]
    assert len(trials) == 3 and all(r.info.status == "FAILED" for r in trials)
    assert all("units" in r.data.tags["tunelab.failure_reason"] for r in trials)
    (study,) = [r for r in runs if r.data.tags["tunelab.kind"] == "study"]
    assert study.info.status == "FAILED"
