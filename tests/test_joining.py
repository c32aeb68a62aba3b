"""Workers on any machine: a study's process and workers that share nothing with it but the
study's Optuna storage (PostgreSQL) and its tracking server, each in its own folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import postgres_database

from tunelab import joining

pytestmark = pytest.mark.slow

STUDY = ["strategy=tpe", "strategy.pruner=none", "dataset=digits", "budget=smoke", "quiet=true",
         "study_name=joined"]  # fmt: skip


def wait_for_identity(storage: str, name: str, process: subprocess.Popen) -> dict:
    import optuna

    deadline = time.time() + 180
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the study ended early:\n{process.stderr.read()}")
        if name in optuna.get_all_study_names(storage):
            identity = optuna.load_study(study_name=name, storage=storage).user_attrs
            if joining.IDENTITY in identity:
                return identity[joining.IDENTITY]
        time.sleep(0.5)
    raise AssertionError("the study never published its identity")


def worker(storage: str, uri: str, folder, name: str = "joined") -> subprocess.Popen:
    """`tunelab worker` in a folder of its own, without the study's environment."""
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "TUNELAB_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "tunelab", "worker", "--study", name, "--storage", storage,
         "--tracking-uri", uri], cwd=folder, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_two_workers_join_from_their_own_folders_with_the_storage_and_tracking_uri_alone(
    postgres, postgres_mlflow_server, tmp_path
):
    import optuna
    from mlflow.tracking import MlflowClient

    storage = postgres_database(postgres, "joined")
    (tmp_path / "creator").mkdir()
    creator = subprocess.Popen(
        [sys.executable, "-m", "tunelab", *STUDY, "strategy.n_trials=12",
         "model.training.epochs=8", f"strategy.storage='{storage}'", "tracking.experiment=joined"],
        cwd=tmp_path / "creator", env={**os.environ, "MLFLOW_TRACKING_URI": postgres_mlflow_server},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    identity = wait_for_identity(storage, "joined", creator)
    workers = [worker(storage, postgres_mlflow_server, tmp_path / f"w{i}") for i in (1, 2)]
    for process in [creator, *workers]:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]

    client = MlflowClient(postgres_mlflow_server)
    study = client.get_run(identity["run_id"])
    assert study.info.status == "FINISHED" and study.data.metrics["trials"] == 12
    trials = client.search_runs([study.info.experiment_id], "tags.`tunelab.kind` = 'trial'")
    assert len(trials) == 12 and {t.info.status for t in trials} == {"FINISHED"}
    assert {t.data.tags["mlflow.parentRunId"] for t in trials} == {study.info.run_id}
    labels = {t.data.tags["tunelab.worker"] for t in trials}
    assert len(labels) == 3 and "0" in labels, labels  # the creator and both workers ran trials
    states = [t.state.name for t in optuna.load_study(study_name="joined", storage=storage).trials]
    assert states == ["COMPLETE"] * 12
    best = study.data.tags["tunelab.best_trial_run_id"]
    assert best in {t.info.run_id for t in trials}
    models = client.search_logged_models(
        [study.info.experiment_id], filter_string=f"source_run_id = '{study.info.run_id}'"
    )
    assert len(models) == 1  # the best model, logged once, by the process that closed the study
