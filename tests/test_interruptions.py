"""Interrupted studies (signals, kill -9 in the journal window, the tracking server going away)
resume with exactly the configured trials: the strategy, the journal and MLflow agree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import start_mlflow_server, tunelab_cli
from mlflow.tracking import MlflowClient

from tunelab import faults
from tunelab.config import TrackingSettings
from tunelab.study import study_folder

pytestmark = pytest.mark.slow

SMOKE = ["dataset=digits", "budget=smoke", "quiet=true"]


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for this module's kill tests, apart from the session's (which slows as the
    suite fills it, while these time their signals by the journal)."""
    process, uri = start_mlflow_server(tmp_path_factory.mktemp("interruptions_server"))
    yield uri
    stop(process)


def children(client: MlflowClient, parent: str) -> list:
    run = client.get_run(parent)
    return client.search_runs(
        [run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'", max_results=1000
    )


def journal(folder: Path) -> list[dict]:
    lines = (folder / "trials.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line]


def study_run_id(folder: Path) -> str:
    return json.loads((folder / "study.json").read_text())["run_id"]


def _start_cli(args: list[str], cwd: Path, uri: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tunelab", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
    )


def _wait_for_trials(journal_file: Path, n: int, process: subprocess.Popen) -> None:
    deadline = time.time() + 180
    while time.time() < deadline:
        if journal_file.exists() and len(journal_file.read_text().splitlines()) >= n:
            return
        if process.poll() is not None:
            raise AssertionError(f"study ended early:\n{process.stdout.read()}")
        time.sleep(0.2)
    raise AssertionError("the study made no progress")


def strategy_finished_trials(folder: Path, strategy: str) -> list[str]:
    """The trial ids the strategy's own records hold as finished."""
    if strategy == "tpe":
        import optuna

        study = optuna.load_study(study_name=folder.name, storage=f"sqlite:///{folder}/optuna.db")
        return [str(t.number) for t in study.trials if t.state.is_finished()]
    trials = [json.loads(f.read_text()) for f in folder.glob("keras_tuner/trial_*/trial.json")]
    return [t["trial_id"] for t in trials if t["status"] in ("COMPLETED", "FAILED")]


def assert_agree(client: MlflowClient, folder: Path, strategy: str, trials: int) -> list[dict]:
    """Exactly `trials` trials, each with one FINISHED run, and the strategy, the journal and
    MLflow holding the same trial ids."""
    records = journal(folder)
    ids = [r["trial_id"] for r in records]
    assert len(ids) == len(set(ids)) == trials
    study = client.get_run(study_run_id(folder))
    assert study.info.status == "FINISHED"
    assert study.data.metrics["trials"] == trials
    runs = children(client, study.info.run_id)  # deleted (interrupted) runs are not listed
    assert all(r.info.status == "FINISHED" for r in runs)
    assert {r.info.run_id for r in runs} == {r["run_id"] for r in records}
    assert sorted(r.data.tags["tunelab.trial_id"] for r in runs) == sorted(ids)
    assert len({r.data.tags["tunelab.trial_key"] for r in runs}) == trials
    assert sorted(strategy_finished_trials(folder, strategy)) == sorted(ids)
    return records


RESUMABLE = [
    "dataset=digits",
    "budget=smoke",
    "strategy=random",
    "strategy.max_trials=5",
    "model.training.epochs=2",
    "quiet=true",
    "study_name=resumable",
]


@pytest.mark.parametrize("kill", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_interrupted_study_resumes_without_duplicate_trials(kill, module_server, tmp_path):
    client = MlflowClient(module_server)
    args = [*RESUMABLE, f"workdir={tmp_path}", f"tracking.experiment=resume-{kill.name}"]
    folder = study_folder(
        tmp_path, "resumable", TrackingSettings(uri=module_server, experiment=f"resume-{kill.name}")
    )
    process = _start_cli(args, tmp_path, module_server)
    _wait_for_trials(folder / "trials.jsonl", 2, process)
    process.send_signal(kill)
    output = process.communicate(timeout=60)[0]
    study = client.get_run(study_run_id(folder))
    if kill == signal.SIGTERM:
        assert process.returncode == 130, output
        assert study.info.status == "KILLED"
        assert all(r.info.status != "RUNNING" for r in children(client, study.info.run_id))
    else:
        assert study.info.status == "RUNNING"  # nobody could mark it after kill -9

    if kill == signal.SIGKILL:  # the refusal does not depend on how the study stopped
        changed = tunelab_cli(
            [*args, "resume=true", "model.training.epochs=3"],
            tmp_path,
            env={"MLFLOW_TRACKING_URI": module_server},
        )
        assert changed.returncode == 2
        assert "model.training.epochs: 2 -> 3" in changed.stderr

    resumed = tunelab_cli(
        [*args, "resume=true"], tmp_path, env={"MLFLOW_TRACKING_URI": module_server}
    )
    assert resumed.returncode == 0, resumed.stderr
    assert_agree(client, folder, "random", 5)


WINDOW = {
    "random": ["strategy=random", "strategy.max_trials=4"],
    "tpe": ["strategy=tpe", "strategy.max_trials=4", "strategy.pruner=none"],
}


@pytest.mark.parametrize("strategy", list(WINDOW))
def test_a_kill_between_the_journal_and_the_strategy_loses_no_trial(
    strategy, module_server, tmp_path
):
    """kill -9 right after the second trial's journal line, before the strategy records it:
    on resume the strategy proposes that trial again and is told its journaled outcome."""
    client = MlflowClient(module_server)
    env = {"MLFLOW_TRACKING_URI": module_server}
    args = [
        *SMOKE,
        *WINDOW[strategy],
        "model.training.epochs=2",
        "study_name=window",
        f"workdir={tmp_path}",
        f"tracking.experiment=window-{strategy}",
    ]
    folder = study_folder(
        tmp_path, "window", TrackingSettings(uri=module_server, experiment=f"window-{strategy}")
    )
    killed = tunelab_cli(args, tmp_path, env={**env, faults.KILL: "journaled:2"}, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    second = journal(folder)[1]
    assert client.get_run(second["run_id"]).info.status == "FINISHED"
    assert second["trial_id"] not in strategy_finished_trials(folder, strategy)

    resumed = tunelab_cli([*args, "resume=true"], tmp_path, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    records = assert_agree(client, folder, strategy, 4)
    assert records[1] == second  # told from the journal, not trained again


OUTAGE = [
    *SMOKE,
    "strategy=random",
    "strategy.max_trials=8",
    "model.training.epochs=2",
    "study_name=outage",
]


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=30)


def test_the_tracking_server_going_away_stops_the_study_or_is_waited_out(tmp_path):
    """The issue's two outages, on one study. The server stops after two trials and stays
    away for longer than `tracking.retry_seconds`: the study stops with one line. Resumed with
    a longer retry window, an outage of about 2 s mid-trial is waited out, and the study ends
    with exactly its trials, each logged completely and none left RUNNING."""
    server_folder = tmp_path / "server"
    server, uri = start_mlflow_server(server_folder)
    folder = study_folder(tmp_path, "outage", TrackingSettings(uri=uri))
    port = int(uri.rsplit(":", 1)[1])
    args = [*OUTAGE, f"workdir={tmp_path}"]
    study = _start_cli([*args, "tracking.retry_seconds=2"], tmp_path, uri)
    try:
        _wait_for_trials(folder / "trials.jsonl", 2, study)
        stop(server)
        output = study.communicate(timeout=120)[0]
    finally:
        study.kill()
    assert study.returncode == 1, output
    errors = [line for line in output.splitlines() if line.startswith("tunelab: error:")]
    assert len(errors) == 1, output
    saved = len(journal(folder))
    assert 2 <= saved <= 5  # trials are left for the second outage
    assert f"the tracking server {uri} stopped answering (" in errors[0]
    assert f"{saved} trials are saved" in errors[0] and "resume=true" in errors[0]
    for noise in ("Traceback", "Retrying", "logging trial artifacts failed", "Error executing"):
        assert noise not in output

    server, _ = start_mlflow_server(server_folder, port=port)
    resumed = _start_cli([*args, "tracking.retry_seconds=30", "resume=true"], tmp_path, uri)
    try:
        _wait_for_trials(folder / "trials.jsonl", saved + 1, resumed)
        stop(server)
        time.sleep(2)
        server, _ = start_mlflow_server(server_folder, port=port)
        output = resumed.communicate(timeout=300)[0]
        assert resumed.returncode == 0, output
        client = MlflowClient(uri)
        for record in assert_agree(client, folder, "random", 8):
            run = client.get_run(record["run_id"])
            assert {"test_accuracy", "best_val_accuracy", "param_count"} <= set(run.data.metrics)
            history = client.get_metric_history(record["run_id"], "val_accuracy")
            assert sorted({m.step for m in history}) == [0, 1]
        experiment = client.get_experiment_by_name("tunelab")
        assert not client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
    finally:
        resumed.kill()
        stop(server)


SIGTERM_IN_FIT = '''
import os, signal, time
from pathlib import Path

import keras
import keras_tuner


class InterruptedInFit(keras_tuner.HyperModel):
    """Its second trial gets a SIGTERM inside `fit`, in code that {mode}s the interrupt, as
    TensorFlow's or MLflow's own code can."""

    def build(self, hp):
        model = keras.Sequential([keras.layers.Flatten(),
                                  keras.layers.Dense(hp.Int("units", 4, 16), activation="relu"),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def fit(self, hp, model, *args, **kwargs):
        calls = Path("fit_calls")
        calls.write_text(calls.read_text() + "x" if calls.exists() else "x")
        if calls.read_text() == "xx":
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            except KeyboardInterrupt as interrupt:
                if "{mode}" == "convert":
                    raise RuntimeError("an interrupted library call") from interrupt
        return model.fit(*args, **kwargs)
'''


@pytest.mark.parametrize("mode", ["swallow", "convert"])
def test_a_sigterm_a_library_swallows_or_converts_still_stops_the_study(
    mode, module_server, tmp_path
):
    """SIGTERM lands wherever Python runs; library code there may swallow the interrupt or
    turn it into another error. The study stops KILLED all the same, with no FAILED trial."""
    (tmp_path / "interrupted.py").write_text(SIGTERM_IN_FIT.replace("{mode}", mode))
    args = [
        *SMOKE,
        "model=hypermodel",
        "model.build=interrupted:InterruptedInFit",
        "strategy=random",
        "strategy.max_trials=4",
        "model.training.epochs=2",
        "study_name=sigterm",
        f"workdir={tmp_path}",
        f"tracking.experiment=sigterm-{mode}",
    ]
    done = tunelab_cli(args, tmp_path, env={"MLFLOW_TRACKING_URI": module_server}, timeout=300)
    assert done.returncode == 130, done.stderr[-2000:]
    client = MlflowClient(module_server)
    folder = study_folder(
        tmp_path, "sigterm", TrackingSettings(uri=module_server, experiment=f"sigterm-{mode}")
    )
    study = client.get_run(study_run_id(folder))
    assert study.info.status == "KILLED"
    statuses = [r.info.status for r in children(client, study.info.run_id)]
    assert statuses == ["KILLED", "FINISHED"]  # newest first: the second trial, killed
