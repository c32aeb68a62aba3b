"""Workers on any machine: a study's process and workers that share nothing with it but the
study's Optuna storage (PostgreSQL) and its tracking server, each in its own folder."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import postgres_database, start_mlflow_server, tunelab_cli

from tunelab import joining
from tunelab.server import free_port

STUDY = ["dataset=digits", "budget=smoke", "quiet=true", "study_name=joined"]


def wait_for_identity(storage: str, name: str, process: subprocess.Popen) -> dict:
    import optuna

    polled = polling_storage(storage)  # one engine: a new one per poll leaks its connections
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"the study ended early:\n{process.stderr.read()}")
            if name in optuna.get_all_study_names(polled):
                identity = optuna.load_study(study_name=name, storage=polled).user_attrs
                if joining.IDENTITY in identity:
                    return identity[joining.IDENTITY]
            time.sleep(0.5)
        raise AssertionError("the study never published its identity")
    finally:
        polled.engine.dispose()


def finishing(process: subprocess.Popen, folder: Path, timeout: float = 600) -> tuple[str, str]:
    """`process.communicate(timeout)`; if it is still running then, it and every process it
    started print their threads' stacks (faulthandler, on SIGABRT) into the failure."""
    import psutil

    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for child in [*psutil.Process(process.pid).children(recursive=True), process]:
            with contextlib.suppress(psutil.Error):
                if "tunelab" in " ".join(child.cmdline()):  # not their multiprocessing pools
                    child.send_signal(signal.SIGABRT)
        _, stacks = process.communicate(timeout=60)
        logs = "\n".join(f"{log}:\n{log.read_text()[-5000:]}" for log in folder.rglob("*.log"))
        raise AssertionError(
            f"still running after {timeout} s:\n{stacks[-8000:]}\n{logs}"
        ) from None


def polling_storage(storage: str):
    """An Optuna storage to poll with, its connections kept in one engine's pool."""
    import optuna

    return optuna.storages.RDBStorage(storage)


def worker(storage: str, uri: str, folder, name: str = "joined", **env: str) -> subprocess.Popen:
    """`tunelab worker` in a folder of its own, without the study's environment."""
    folder.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "TUNELAB_"))},
        **env,
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tunelab",
            "worker",
            "--study",
            name,
            "--storage",
            storage,
            "--tracking-uri",
            uri,
        ],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


PLANS = {  # twelve trials each: TPE's, and a 2^3 factorial with four centre points
    "tpe": ["strategy=tpe", "strategy.max_trials=12", "strategy.pruner=none"],
    "full_factorial": [
        "strategy=full_factorial",
        "model.tune=[lr,dropout,depth]",
        "strategy.center_points=4",
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", list(PLANS))
def test_two_workers_join_from_their_own_folders_with_the_storage_and_tracking_uri_alone(
    strategy, postgres, postgres_mlflow_server, tmp_path
):
    """Exactly the study's trials (a plan's points each once), by three processes that share
    nothing but the database and the tracking server."""
    import optuna
    from mlflow.tracking import MlflowClient

    storage = postgres_database(postgres, f"joined_{strategy}")
    (tmp_path / "creator").mkdir()
    creator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tunelab",
            *STUDY,
            *PLANS[strategy],
            "model.training.epochs=8",
            f"strategy.storage='{storage}'",
            f"tracking.experiment=joined-{strategy}",
        ],
        cwd=tmp_path / "creator",
        env={**os.environ, "MLFLOW_TRACKING_URI": postgres_mlflow_server},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
    if strategy != "tpe":
        assert sorted(int(t.data.params["standard_order"]) for t in trials) == list(range(12))
    states = [t.state.name for t in optuna.load_study(study_name="joined", storage=storage).trials]
    assert states == ["COMPLETE"] * 12
    best = study.data.tags["tunelab.best_trial_run_id"]
    assert best in {t.info.run_id for t in trials}
    models = client.search_logged_models(
        [study.info.experiment_id], filter_string=f"source_run_id = '{study.info.run_id}'"
    )
    assert len(models) == 1  # the best model, logged once, by the process that closed the study


def refusal(storage: str, study: str, tmp_path) -> str:
    out = tunelab_cli(["worker", "--study", study, "--storage", storage], tmp_path, timeout=60)
    assert out.returncode == 1 and not out.stdout, out
    (line,) = out.stderr.strip().splitlines()
    return line


def test_a_worker_is_refused_in_one_line_for_a_missing_study_or_other_versions(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(study_name="plain", storage=storage)
    assert refusal(storage, "nowhere", tmp_path) == (
        f"tunelab worker: error: --study: no study 'nowhere' in {storage} (studies there: plain)"
    )
    assert refusal(storage, "plain", tmp_path).startswith(
        "tunelab worker: error: --study: 'plain' in "
    ) and "is not a tunelab study that takes workers" in refusal(storage, "plain", tmp_path)
    older = optuna.create_study(study_name="older", storage=storage)
    older.set_user_attr(joining.IDENTITY, {"versions": {**joining.versions(), "keras": "2.0.0"}})
    assert refusal(storage, "older", tmp_path) == (
        "tunelab worker: error: --study: 'older' was created with keras 2.0.0, this machine has "
        f"{joining.versions()['keras']}; install the same version to join it"
    )


def published_study(tmp_path, overrides: list[str]) -> str:
    """A study's identity as its creator publishes it, composed in `tmp_path/creator` (no
    study run: the refusals come before a worker reads one)."""
    import optuna

    from tunelab import config

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    cwd = os.getcwd()
    os.chdir(tmp_path / "creator")
    try:
        cfg = config.compose(
            [*overrides, "strategy=tpe", f"strategy.storage={storage}", "study_name=published"]
        )
        identity = {
            "config": cfg.resolved,
            "run_id": "none",
            "study_id": "published-0",
            "tracking_uri": "sqlite:///unused.db",
            "data": joining.data_fingerprint(getattr(cfg.dataset.settings, "path", None)),
        }
    finally:
        os.chdir(cwd)
    optuna.create_study(study_name="published", storage=storage)
    joining.publish(storage, "published", identity)
    return storage


OWN_MODEL = "import keras\n\ndef build(hp):\n    return keras.Sequential()\n"


def test_a_worker_is_refused_for_a_model_it_cannot_import_or_other_data(tmp_path):
    import numpy as np

    (tmp_path / "creator").mkdir()
    (tmp_path / "creator" / "own.py").write_text(OWN_MODEL)
    data = {"x": np.zeros((20, 3)), "y": np.arange(20) % 2}
    np.savez(tmp_path / "creator" / "data.npz", **data)
    storage = published_study(
        tmp_path,
        ["model=hypermodel", "model.build=own:build", "dataset=npz", "dataset.path=data.npz"],
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert refusal(storage, "published", elsewhere).startswith(
        "tunelab worker: error: model.build: no module 'own' on "
    )
    (elsewhere / "own.py").write_text(OWN_MODEL)
    assert refusal(storage, "published", elsewhere) == (
        "tunelab worker: error: dataset.path: nothing at 'data.npz' on this machine; a worker "
        "reads the study's data from the same path"
    )
    np.savez(elsewhere / "data.npz", **{**data, "y": np.arange(20) % 3})
    assert refusal(storage, "published", elsewhere).startswith(
        "tunelab worker: error: dataset.path: 'data.npz' differs from the study's data ("
    )


def waiting_study(
    postgres, uri: str, tmp_path: Path, name: str, trials: int, epochs: int
) -> tuple[str, subprocess.CompletedProcess]:
    """A TPE study `name` created with `workers=0` in its own PostgreSQL database (no trial
    run yet): its storage URL and the creating command's outcome."""
    storage = postgres_database(postgres, name)
    (tmp_path / "creator").mkdir()
    created = tunelab_cli(
        [
            *STUDY,
            "strategy=tpe",
            "strategy.pruner=none",
            f"study_name={name}",
            f"strategy.max_trials={trials}",
            f"model.training.epochs={epochs}",
            "workers=0",
            f"strategy.storage='{storage}'",
            f"tracking.experiment={name}",
        ],
        tmp_path / "creator",
        env={"MLFLOW_TRACKING_URI": uri},
        timeout=300,
    )
    assert created.returncode == 0, created.stderr[-3000:]
    return storage, created


@pytest.mark.slow
def test_workers_0_waits_for_workers_and_the_last_one_out_closes_the_study(
    postgres, postgres_mlflow_server, tmp_path
):
    """The study's process creates it and returns; two workers started from the command it
    prints run every trial, and exactly one of them closes the study."""
    import shlex

    import optuna
    from mlflow.tracking import MlflowClient

    storage, created = waiting_study(postgres, postgres_mlflow_server, tmp_path, "waiting", 8, 4)
    command = created.stdout.strip().splitlines()[-1].strip()
    assert command.startswith("tunelab worker --study waiting --storage "), created.stdout
    args = shlex.split(command)[1:]
    assert args[args.index("--tracking-uri") + 1] == postgres_mlflow_server
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "TUNELAB_"))}
    workers = []
    for i in (1, 2):
        (tmp_path / f"w{i}").mkdir()
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "tunelab", *args],
                cwd=tmp_path / f"w{i}",
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [w.communicate(timeout=600) for w in workers]
    for worker_process, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker_process.returncode == 0, stderr[-3000:]
    closing = [out for out, _ in outputs if out.startswith("tunelab worker: closed study")]
    assert len(closing) == 1, outputs

    study_attrs = optuna.load_study(study_name="waiting", storage=storage).user_attrs
    client = MlflowClient(postgres_mlflow_server)
    study = client.get_run(study_attrs[joining.IDENTITY]["run_id"])
    assert study.info.status == "FINISHED" and study.data.metrics["trials"] == 8
    assert (
        f"(8 trials; best val_accuracy {study.data.metrics['best_val_accuracy']:.4f})"
        in (closing[0])
    )
    trials = client.search_runs([study.info.experiment_id], "tags.`tunelab.kind` = 'trial'")
    assert len(trials) == 8 and {t.info.status for t in trials} == {"FINISHED"}
    assert "0" not in {t.data.tags["tunelab.worker"] for t in trials}  # the creator ran none
    best = client.get_run(study.data.tags["tunelab.best_trial_run_id"])
    assert best.data.tags["tunelab.worker"] == study_attrs[joining.CLOSER] or [
        a.path for a in client.list_artifacts(best.info.run_id, "best")
    ]  # the closer trained the best trial, or read its weights from MLflow
    models = client.search_logged_models(
        [study.info.experiment_id], filter_string=f"source_run_id = '{study.info.run_id}'"
    )
    assert len(models) == 1


@pytest.mark.slow
def test_kill_9_of_a_worker_and_of_the_study_s_creator_loses_no_trial(
    postgres, postgres_mlflow_server, tmp_path
):
    """The creator dies (kill -9) in its second trial and worker w1 in its first: Optuna's
    heartbeat fails their trials and enqueues them again, their runs end KILLED with the
    reason, and the two live workers run exactly the configured trials and close the study."""
    import optuna
    from mlflow.tracking import MlflowClient

    from tunelab import faults

    storage = postgres_database(postgres, "killed")
    (tmp_path / "creator").mkdir()
    creator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tunelab",
            *STUDY,
            "strategy=tpe",
            "strategy.pruner=none",
            "strategy.max_trials=10",
            "strategy.heartbeat_seconds=1",
            "model.training.epochs=8",
            "study_name=killed",
            f"strategy.storage='{storage}'",
            "tracking.experiment=killed",
        ],
        cwd=tmp_path / "creator",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": postgres_mlflow_server, faults.KILL: "epoch:2@0"},
    )
    identity = wait_for_identity(storage, "killed", creator)
    workers = {
        label: worker(
            storage,
            postgres_mlflow_server,
            tmp_path / label,
            "killed",
            TUNELAB_WORKER=label,
            **{faults.KILL: "epoch:1@w1"},
        )
        for label in ("w1", "w2", "w3")
    }
    creator.communicate(timeout=600)
    assert creator.returncode == -9
    outputs = {label: process.communicate(timeout=600) for label, process in workers.items()}
    assert workers["w1"].returncode == -9
    for label in ("w2", "w3"):
        assert workers[label].returncode == 0, outputs[label][1][-3000:]
    closing = [label for label, (out, _) in outputs.items() if "closed study killed" in out]
    assert len(closing) == 1

    trials = optuna.load_study(study_name="killed", storage=storage).trials
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") == 10 and states.count("FAIL") == 2, states
    for dead in (t for t in trials if t.state.name == "FAIL"):  # run again, maybe twice
        (retry,) = [
            t
            for t in trials
            if t.state.name == "COMPLETE" and dead.number in t.system_attrs.get("retry_history", [])
        ]
        assert retry.params == dead.params

    client = MlflowClient(postgres_mlflow_server)
    study = client.get_run(identity["run_id"])
    assert study.info.status == "FINISHED" and study.data.metrics["trials"] == 10
    runs = client.search_runs([study.info.experiment_id], "tags.`tunelab.kind` = 'trial'")
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert sorted(r.data.tags["tunelab.worker"] for r in killed) == ["0", "w1"]
    for run in killed:
        assert run.data.tags["tunelab.failure_reason"].startswith(
            "its worker stopped (no heartbeat for 3 s)"
        )
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert len(finished) == 10 and len(runs) == 12
    assert {r.data.tags["tunelab.worker"] for r in finished} <= {"0", "w2", "w3"}


NETWORK = "10.231.0"  # the veth pair's subnet: .1 this host, .2 the other "host"


@pytest.fixture()
def other_host() -> Iterator[str]:
    """A network and UTS namespace standing for another machine, reaching this one through a
    veth pair at {NETWORK}.1; yields the namespace's name (`ip netns exec NAME …`)."""
    import shutil

    if os.geteuid() != 0 or not (shutil.which("ip") and shutil.which("unshare")):
        pytest.skip("another host needs root, iproute2 and unshare (network namespaces)")
    name, here, there = f"tl{os.getpid()}", f"tla{os.getpid()}", f"tlb{os.getpid()}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("netns", "add", name)
    try:
        ip("link", "add", here, "type", "veth", "peer", "name", there)
        ip("link", "set", there, "netns", name)
        ip("addr", "add", f"{NETWORK}.1/24", "dev", here)
        ip("link", "set", here, "up")
        for args in (
            ["addr", "add", f"{NETWORK}.2/24", "dev", there],
            ["link", "set", there, "up"],
            ["link", "set", "lo", "up"],
        ):
            ip("netns", "exec", name, "ip", *args)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", here], capture_output=True)
        ip("netns", "del", name)


def postgres_on_tcp(folder: Path, host: str) -> tuple[Any, str]:
    """A PostgreSQL (pgserver's) listening on `host` over TCP too, trusting its subnet; its
    server and the SQLAlchemy URL of a new database `optuna` there."""
    import pgserver
    from pgserver._commands import pg_ctl

    server = pgserver.get_server(folder, cleanup_mode="stop")
    server.psql("CREATE DATABASE optuna;")
    with (server.pgdata / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {NETWORK}.0/24 trust\n")
    port = free_port()
    socket_dir = server.get_postmaster_info().socket_dir
    pg_ctl(
        [
            "-w",
            "-o",
            f"-h {host}",
            "-o",
            f"-p {port}",
            "-o",
            f"-k {socket_dir}",
            "-l",
            str(server.log),
            "restart",
        ],
        pgdata=server.pgdata,
        user=server.system_user,
    )
    return server, f"postgresql+psycopg://postgres@{host}:{port}/optuna"


@pytest.mark.slow
def test_a_worker_on_another_host_is_killed_and_cleaned_up_and_the_total_stays_exact(
    other_host, tmp_path
):
    """A worker in its own network and UTS namespaces (host name far-host) joins over TCP
    through a veth pair; its runs carry that host. Killed (kill -9) mid-trial, its run
    is KILLED by `tunelab cleanup --gone-host far-host`, its trial is failed by the heartbeat
    and run again by the others, and the study ends with exactly its trials."""
    import optuna
    from mlflow.tracking import MlflowClient

    here = f"{NETWORK}.1"
    postgres, storage = postgres_on_tcp(tmp_path / "pgdata", here)
    server, uri = start_mlflow_server(tmp_path / "mlflow", host=here)
    try:
        (tmp_path / "creator").mkdir()
        creator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tunelab",
                *STUDY,
                "strategy=tpe",
                "strategy.pruner=none",
                "strategy.max_trials=10",
                "strategy.heartbeat_seconds=5",
                "model.training.epochs=8",
                "study_name=far",
                f"strategy.storage='{storage}'",
                f"tracking.uri={uri}",
                "tracking.experiment=far",
            ],
            cwd=tmp_path / "creator",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        identity = wait_for_identity(storage, "far", creator)
        (tmp_path / "far").mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "TUNELAB_"))}
        far = subprocess.Popen(  # ip, unshare and sh exec in turn: its pid becomes the worker's
            [
                "ip",
                "netns",
                "exec",
                other_host,
                "unshare",
                "--uts",
                "sh",
                "-c",
                f"hostname far-host && exec {sys.executable} -m tunelab worker --study far "
                f"--storage '{storage}' --tracking-uri {uri}",
            ],
            cwd=tmp_path / "far",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**env, "TUNELAB_WORKER": "far"},
        )
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("far").experiment_id
        deadline = time.time() + 120
        while time.time() < deadline and not client.search_runs(
            [experiment], "tags.`tunelab.worker` = 'far' AND attributes.status = 'RUNNING'"
        ):
            assert far.poll() is None, far.communicate()[1][-3000:]
            time.sleep(0.2)
        far.kill()  # kill -9 mid-trial
        assert far.wait(timeout=60) == -9
        cleanup = tunelab_cli(
            ["cleanup", "--tracking-uri", uri, "--experiment", "far", "--gone-host", "far-host"],
            tmp_path,
        )
        assert cleanup.returncode == 0, cleanup.stderr
        assert "its host far-host is gone" in cleanup.stdout, cleanup.stdout
        _, errors = creator.communicate(timeout=600)
        assert creator.returncode == 0, errors[-3000:]

        study = client.get_run(identity["run_id"])
        assert study.info.status == "FINISHED" and study.data.metrics["trials"] == 10
        runs = client.search_runs([study.info.experiment_id], "tags.`tunelab.kind` = 'trial'")
        (dead,) = [r for r in runs if r.data.tags["tunelab.worker"] == "far"]
        assert dead.data.tags["tunelab.process"].startswith("far-host:")
        assert dead.info.status == "KILLED" and dead.data.tags["tunelab.abandoned"] == "true"
        assert dead.data.tags["tunelab.failure_reason"].startswith(
            "its host far-host is gone (tunelab cleanup --gone-host); ended by tunelab cleanup"
        )
        finished = [r for r in runs if r.info.status == "FINISHED"]
        assert len(finished) == 10 and len(runs) == 11
        states = [t.state.name for t in optuna.load_study(study_name="far", storage=storage).trials]
        assert states.count("COMPLETE") == 10 and states.count("FAIL") == 1, states
    finally:
        server.terminate()
        server.wait(timeout=30)
        stop_postgres(postgres)  # restarted on TCP with pg_ctl: pgserver's cleanup leaves it
        postgres.cleanup()


def completed(storage: Any, name: str = "restarted") -> int:
    import optuna

    return sum(
        t.state.name == "COMPLETE"
        for t in optuna.load_study(study_name=name, storage=storage).trials
    )


def stop_postgres(server: Any) -> None:
    """Stop pgserver's PostgreSQL if it still runs."""
    from pgserver._commands import pg_ctl

    if (Path(server.pgdata) / "postmaster.pid").exists():
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


def restart_postgres(server: Any, down_seconds: float) -> None:
    """Stop pgserver's PostgreSQL (fast shutdown: sessions cut), wait, start it again as
    pgserver does (its socket only)."""
    from pgserver._commands import pg_ctl

    socket_dir = server.get_postmaster_info().socket_dir
    stop_postgres(server)
    time.sleep(down_seconds)
    pg_ctl(
        ["-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(server.log), "start"],
        pgdata=server.pgdata,
        user=server.system_user,
    )


@pytest.mark.slow
def test_a_study_outlasts_its_database_restarting_mid_study(mlflow_server, tmp_path):
    """PostgreSQL, which holds the study's Optuna storage, goes away for 10 s while two
    workers run trials: they wait for it and the study ends with exactly its trials, none
    lost, none RUNNING."""
    import optuna
    import pgserver
    from mlflow.tracking import MlflowClient

    postgres = pgserver.get_server(tmp_path / "pgdata", cleanup_mode="stop")
    try:
        storage = postgres_database(postgres, "restarted")
        (tmp_path / "creator").mkdir()
        creator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tunelab",
                *STUDY,
                "strategy=tpe",
                "strategy.pruner=none",
                "strategy.max_trials=10",
                "model.training.epochs=8",
                "workers=2",
                "study_name=restarted",
                f"strategy.storage='{storage}'",
                "tracking.experiment=restarted",
            ],
            cwd=tmp_path / "creator",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_server, "PYTHONFAULTHANDLER": "1"},
        )
        identity = wait_for_identity(storage, "restarted", creator)
        polled = polling_storage(storage)
        deadline = time.time() + 300
        while (done := completed(polled)) < 2 and time.time() < deadline:  # more running
            time.sleep(0.5)
        polled.engine.dispose()
        assert done >= 2, f"{done} trials completed in 300 s"
        restart_postgres(postgres, 10)
        _, errors = finishing(creator, tmp_path / "creator")
        assert creator.returncode == 0, errors[-3000:]
        trials = optuna.load_study(study_name="restarted", storage=storage).trials
        states = [t.state.name for t in trials]
        assert states.count("COMPLETE") == 10 and "RUNNING" not in states, states
    finally:
        postgres.cleanup()
        stop_postgres(postgres)  # the one started again is not pgserver's to stop
    client = MlflowClient(mlflow_server)
    study_run = client.get_run(identity["run_id"])
    assert study_run.info.status == "FINISHED" and study_run.data.metrics["trials"] == 10
    runs = client.search_runs([study_run.info.experiment_id], "tags.`tunelab.kind` = 'trial'")
    assert {r.info.status for r in runs} == {"FINISHED"} and len(runs) == 10


@pytest.mark.slow
def test_study_close_runs_what_is_left_and_closes_a_study_whose_workers_are_gone(
    postgres, postgres_mlflow_server, tmp_path
):
    """A study whose closing a dead worker claimed: `tunelab study close` runs the trials
    left and closes it all the same."""
    import optuna
    from mlflow.tracking import MlflowClient

    storage, _ = waiting_study(postgres, postgres_mlflow_server, tmp_path, "orphan", 3, 2)
    optuna.load_study(study_name="orphan", storage=storage).set_user_attr(
        joining.CLOSER, "a worker that died closing it"
    )
    closed = tunelab_cli(
        ["study", "close", "--study", "orphan", "--storage", storage], tmp_path, timeout=300
    )
    assert closed.returncode == 0, closed.stderr[-3000:]
    assert closed.stdout.startswith("tunelab study close: closed study orphan (3 trials; best ")
    identity = optuna.load_study(study_name="orphan", storage=storage).user_attrs
    study = MlflowClient(postgres_mlflow_server).get_run(identity[joining.IDENTITY]["run_id"])
    assert study.info.status == "FINISHED" and study.data.metrics["trials"] == 3


def test_a_relative_sqlite_or_folder_uri_is_handed_to_workers_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert joining.portable_uri("sqlite:///mlflow.db") == f"sqlite:///{tmp_path}/mlflow.db"
    assert joining.portable_uri("mlruns") == str(tmp_path / "mlruns")
    for unchanged in (
        "sqlite:////srv/mlflow.db",
        "http://127.0.0.1:5000",
        "postgresql+psycopg://u@host/optuna",
        "file:///srv/mlruns",
    ):
        assert joining.portable_uri(unchanged) == unchanged


@pytest.mark.slow
def test_the_join_command_workers_0_prints_works_from_another_folder(tmp_path):
    """As the docs show it: a study on this machine's SQLite files (a relative tracking URI),
    created with workers=0, and a worker started in another folder with the printed command."""
    import shlex

    created = tunelab_cli(
        [
            *STUDY,
            "strategy=tpe",
            "strategy.pruner=none",
            "strategy.max_trials=3",
            "model.training.epochs=2",
            "workers=0",
            "tracking.uri=sqlite:///mlflow.db",
        ],
        tmp_path,
        timeout=300,
    )
    assert created.returncode == 0, created.stderr[-3000:]
    command = shlex.split(created.stdout.strip().splitlines()[-1])
    assert command[:2] == ["tunelab", "worker"], created.stdout
    (tmp_path / "elsewhere").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "TUNELAB_"))}
    joined = subprocess.run(
        [sys.executable, "-m", "tunelab", *command[1:]],
        cwd=tmp_path / "elsewhere",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert joined.returncode == 0, joined.stderr[-3000:]
    assert joined.stdout.startswith("tunelab worker: closed study joined (3 trials; best ")
    assert not (tmp_path / "elsewhere" / "mlflow.db").exists()  # it logged to the study's


def test_a_claim_to_close_sent_again_by_its_own_process_is_still_its_own(tmp_path):
    """A database restart can cut the lock's connection after the claim was written, and the
    claim is sent again: it is still this process's, while another process's is not."""
    import optuna

    (tmp_path / "study").mkdir()
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(study_name="study", storage=url)
    assert joining.claim_close(url, tmp_path / "study")
    assert joining.claim_close(url, tmp_path / "study")
    optuna.load_study(study_name="study", storage=url).set_user_attr(
        joining.CLOSING_PROCESS, "elsewhere:1"
    )
    assert not joining.claim_close(url, tmp_path / "study")
