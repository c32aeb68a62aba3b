"""`workers=N`: local processes share one study through its Optuna storage, against a real
`mlflow server`; exactly the configured trials, none twice, all under one study run."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest
from conftest import load_config, tunelab_cli
from mlflow.entities import ViewType

from tunelab.config import TrackingSettings
from tunelab.schema import ConfigError
from tunelab.study import study_folder


@pytest.mark.parametrize(
    ("strategy", "instead"),
    [
        ("hyperband", "strategy=tpe strategy.pruner=hyperband (Optuna's Hyperband pruner)"),
        ("keras_bayesian", "strategy=optuna_gp (Optuna's Gaussian process)"),
        ("gp_ei", "strategy=optuna_gp (Optuna's Gaussian process)"),
    ],
)
def test_a_strategy_that_runs_in_one_process_refuses_workers_naming_what_does(strategy, instead):
    with pytest.raises(
        ConfigError,
        match=(
            rf"^workers: strategy={strategy} runs in one process; with workers=2 use "
            rf"{instead.replace('(', '[(]').replace(')', '[)]')}$"
        ),
    ):
        load_config([f"strategy={strategy}", "workers=2"])


def test_workers_cannot_be_negative():
    with pytest.raises(ConfigError, match="^workers: must be at least 0, got -1$"):
        load_config(["workers=-1"])


def fake_nvidia_smi(folder: Path, count: int) -> dict[str, str]:
    """An environment whose `nvidia-smi -L` lists `count` GPUs (a script: this machine has
    none), and no $CUDA_VISIBLE_DEVICES."""
    import os

    folder.mkdir()
    script = folder / "nvidia-smi"
    lines = "".join(f"echo 'GPU {i}: Fake GPU (UUID: GPU-{i})'\n" for i in range(count))
    script.write_text(f"#!/bin/sh\n{lines}")
    script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    return {**env, "PATH": f"{folder}:{os.environ['PATH']}"}


def test_workers_get_one_gpu_each_round_robin_from_the_device_list(tmp_path, monkeypatch):
    from tunelab.local_workers import GPU, gpu_environment, gpus

    for key, value in fake_nvidia_smi(tmp_path / "bin", 3).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert gpus() == ["0", "1", "2"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # the user's choice wins
    assert gpus() == ["2", "3"]
    assert [gpu_environment(i, ["2", "3"])["CUDA_VISIBLE_DEVICES"] for i in range(5)] == list(
        "23232"
    )
    assert gpu_environment(1, ["2", "3"]) == {
        "CUDA_VISIBLE_DEVICES": "3",
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
        GPU: "3",
    }
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert gpus() == [] and gpu_environment(1, []) == {}  # no GPU: nothing is set


@pytest.mark.slow
def test_two_workers_run_exactly_the_configured_trials_of_one_study(tracking_uri, tmp_path):
    """On a machine whose (faked) device list has two GPUs, each worker's trials are tagged
    with its own; TensorFlow's CPU wheel ignores the device it is given."""
    import optuna
    from mlflow.tracking import MlflowClient

    # 8 epochs a trial, so that the coordinator's six trials outlast worker 1's start-up
    # (TensorFlow's import) and worker 1 takes some; this is a margin in time, not a guarantee
    out = tunelab_cli(
        [
            "strategy=tpe",
            "strategy.max_trials=6",
            "strategy.pruner=none",
            "model.training.epochs=8",
            "workers=2",
            "dataset=digits",
            "budget=smoke",
            "quiet=true",
            "tracking.experiment=workers",
        ],
        cwd=tmp_path,
        timeout=600,
        env=fake_nvidia_smi(tmp_path / "bin", 2),
    )
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
    assert all(t.data.tags["tunelab.gpu"] == t.data.tags["tunelab.worker"] for t in trials)

    folder = study_folder(
        tmp_path / ".tunelab",
        "mlp-digits-tpe-seed0",
        TrackingSettings(uri=tracking_uri, experiment="workers"),
    )
    optuna_study = optuna.load_study(
        study_name=folder.name, storage=f"sqlite:///{folder / 'optuna.db'}"
    )
    assert [t.state.name for t in optuna_study.trials] == ["COMPLETE"] * 6
    assert list((folder / "worker-1").glob(f"*/{folder.name}/trials.jsonl"))  # its own folder
    records = [json.loads(t.data.tags["tunelab.record"]) for t in trials]  # every worker's
    scores = {r["trial_id"]: r["score"] for r in records}
    assert scores[study.data.tags["tunelab.best_trial_id"]] == max(scores.values())
    best_so_far = client.download_artifacts(study.info.run_id, "best_so_far.csv", str(tmp_path))
    rows = [r.split(",") for r in Path(best_so_far).read_text().splitlines()[1:]]
    assert [int(r[0]) for r in rows] == list(range(6))  # numbered across workers
    assert sorted(r[1] for r in rows) == [str(i) for i in range(6)]


@pytest.mark.slow  # the worker imports TensorFlow before it waits for `go`
def test_a_worker_that_cannot_join_fails_the_study_with_its_log(tmp_path):
    from tunelab.local_workers import Crew
    from tunelab.schema import StudyFailed

    crew = Crew(tmp_path, 2, f"sqlite:///{tmp_path / 'optuna.db'}")  # no study there
    crew.go()
    with pytest.raises(StudyFailed, match=r"^worker 1 of 2 failed \(exit 1\): .*no study"):
        crew.wait()


def test_a_worker_joining_without_a_number_is_labelled_by_its_host_and_pid(tmp_path, monkeypatch):
    import os
    import socket

    from tunelab import interrupts, local_workers, workers

    monkeypatch.setenv(local_workers.WORKER, "unset below, restored after the test")
    monkeypatch.delenv(local_workers.WORKER)
    monkeypatch.setattr(interrupts.signal, "signal", lambda *args: None)  # pytest's SIGTERM kept
    nowhere = f"sqlite:///{tmp_path / 'none.db'}"
    assert workers.main(["--study", "x", "--storage", nowhere]) == 1  # no study: labelled already
    assert local_workers.label() == f"{socket.gethostname()}:{os.getpid()}"


@pytest.mark.slow
def test_a_coordinator_that_fails_before_its_workers_join_stops_them(tracking_uri, tmp_path):
    """Its workers start first and wait for its `go`; a study that cannot start (the data
    is missing) stops them, with one line and no run."""
    from mlflow.tracking import MlflowClient

    missing = tmp_path / "missing.npz"
    out = tunelab_cli(
        [
            "strategy=tpe",
            "workers=2",
            "model=cnn",
            "dataset=cifar10",
            f"dataset.path={missing}",
            "budget=smoke",
            "quiet=true",
            "tracking.experiment=workers-no-data",
        ],
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 2, out.stderr  # a configuration error
    last_line = out.stderr.strip().splitlines()[-1]
    assert last_line == f"tunelab: error: dataset.path: no file at {str(missing)!r}"
    assert list((tmp_path / ".tunelab").glob("*/*/worker-1.log"))  # worker 1 had started
    assert not any(is_worker(process, tmp_path) for process in psutil.process_iter())
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("workers-no-data")
    assert experiment is None or not client.search_runs(
        [experiment.experiment_id], run_view_type=ViewType.ALL
    )


@pytest.mark.slow
def test_two_workers_share_a_design_each_point_run_once(tracking_uri, tmp_path):
    from mlflow.tracking import MlflowClient

    out = tunelab_cli(
        [
            "strategy=full_factorial",
            "model.tune=[lr,dropout]",
            "strategy.center_points=1",
            "workers=2",
            "dataset=digits",
            "budget=smoke",
            "quiet=true",
            "tracking.experiment=design",
        ],
        cwd=tmp_path,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("design").experiment_id
    (study,) = client.search_runs([experiment], "tags.`tunelab.kind` = 'study'")
    trials = client.search_runs([experiment], "tags.`tunelab.kind` = 'trial'")
    assert study.info.status == "FINISHED" and study.data.metrics["trials"] == 5
    assert sorted(t.data.params["standard_order"] for t in trials) == list("01234")
    assert {t.info.status for t in trials} == {"FINISHED"}
    # which worker takes which point is timing: fast smoke points may all go to the coordinator
    assert {t.data.tags["tunelab.worker"] for t in trials} <= {"0", "1"}
    assert [a.path for a in client.list_artifacts(study.info.run_id, "design")] == [
        "design/design.csv"
    ]


def is_worker(process, folder: Path) -> bool:
    """A live `python -m tunelab.workers` process (not a zombie, not the artifact worker) of a
    study under `folder` (tests running beside this one start workers of their own): its
    scratch folder is under the study folder."""
    try:
        command = " ".join(process.cmdline())
        alive = process.status() != psutil.STATUS_ZOMBIE
        return alive and "tunelab.workers" in command and str(folder) in command
    except psutil.Error:
        return False


@pytest.mark.slow
def test_a_killed_worker_s_trial_is_failed_retried_and_its_run_killed(tracking_uri, tmp_path):
    """Worker 1 dies (SIGKILL) in its first trial. Optuna's heartbeat fails that trial and
    enqueues it again, its MLflow run ends KILLED with the reason, a worker started afresh
    joins, and the study ends with exactly the configured number of completed trials."""
    import os
    import subprocess
    import sys
    import time

    import optuna
    import psutil
    from mlflow.tracking import MlflowClient

    args = [
        "strategy=tpe",
        "strategy.max_trials=16",
        "strategy.pruner=none",
        "strategy.heartbeat_seconds=1",
        "model.training.epochs=8",
        "workers=2",
        "dataset=digits",
        "budget=smoke",
        "quiet=true",
        "tracking.experiment=faults",
    ]
    env = {**os.environ, "TUNELAB_TEST_KILL": "epoch:1@1"}
    coordinator = subprocess.Popen(
        [sys.executable, "-m", "tunelab", *args],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    folder = study_folder(
        tmp_path / ".tunelab",
        "mlp-digits-tpe-seed0",
        TrackingSettings(uri=tracking_uri, experiment="faults"),
    )
    deadline = time.time() + 300
    seen = False
    while time.time() < deadline:  # until worker 1 has died (a zombie until reaped)
        alive = [p for p in psutil.Process(coordinator.pid).children() if is_worker(p, tmp_path)]
        seen |= bool(alive)
        if seen and not alive:
            break
        time.sleep(0.2)
    rejoined = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunelab",
            "worker",
            "--study",
            folder.name,
            "--storage",
            f"sqlite:///{folder / 'optuna.db'}",
        ],
        env={**os.environ, "TUNELAB_WORKER": "2"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    _, stderr = coordinator.communicate(timeout=300)
    assert coordinator.returncode == 0, stderr
    assert rejoined.returncode == 0, rejoined.stderr
    assert "tunelab: worker 1 was killed (signal 9); the others finished its trials" in stderr

    study = optuna.load_study(study_name=folder.name, storage=f"sqlite:///{folder / 'optuna.db'}")
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 16 and states.count("FAIL") == 1, states
    (dead,) = [t for t in study.trials if t.state.name == "FAIL"]
    (retry,) = [t for t in study.trials if t.system_attrs.get("failed_trial") == dead.number]
    assert retry.params == dead.params and retry.state.name == "COMPLETE"

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("faults").experiment_id
    (run,) = client.search_runs([experiment], "tags.`tunelab.kind` = 'study'")
    trials = client.search_runs([experiment], "tags.`tunelab.kind` = 'trial'")
    assert run.info.status == "FINISHED" and run.data.metrics["trials"] == 16
    by_status = {s: [t for t in trials if t.info.status == s] for s in ("FINISHED", "KILLED")}
    assert len(by_status["FINISHED"]) == 16 and len(trials) == 17
    (killed,) = by_status["KILLED"]
    assert killed.data.tags["tunelab.trial_id"] == str(dead.number)
    assert killed.data.tags["tunelab.failure_reason"].startswith(
        "its worker stopped (no heartbeat for 3 s)"
    )
    assert killed.data.tags["tunelab.worker"] == "1"
    assert {t.data.tags["tunelab.worker"] for t in by_status["FINISHED"]} == {"0", "2"}
    finished_ids = sorted(int(t.data.tags["tunelab.trial_id"]) for t in by_status["FINISHED"])
    assert dead.number not in finished_ids and retry.number in finished_ids
