"""`tunelab server start | stop | status`: a real PostgreSQL (pgserver) and `mlflow server`,
a study against both, and nothing left running after `stop`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from conftest import PROJECT, tunelab_cli

from tunelab.server import free_port


def server(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tunelab", "server", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


def running(pid: int) -> bool:
    """Alive and not a zombie (this sandbox's init does not always reap orphans)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def dashboard_trials(storage: str) -> dict[str, list[str]]:
    """What `optuna-dashboard` on `storage` lists over HTTP: each study's trial states."""
    port = free_port()
    command = Path(sys.executable).with_name("optuna-dashboard")  # its console script
    dashboard = subprocess.Popen(
        [command, storage, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    studies: list[dict] = []
    try:
        for _ in range(60):
            try:
                with direct.open(f"http://127.0.0.1:{port}/api/studies", timeout=2) as answer:
                    studies = json.load(answer)["study_summaries"]
                break
            except OSError:
                time.sleep(0.5)
        found = {}
        for study in studies:
            url = f"http://127.0.0.1:{port}/api/studies/{study['study_id']}?after=0"
            with direct.open(url, timeout=5) as answer:
                found[study["study_name"]] = [t["state"] for t in json.load(answer)["trials"]]
        return found
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)


def test_fewer_than_two_workers_is_refused_with_one_line(tmp_path):
    out = server("start", "--workers", "1", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().startswith("tunelab server: error: --workers: at least 2")
    assert not (tmp_path / ".tunelab").exists()


def test_a_state_folder_that_cannot_be_written_is_one_line(tmp_path):
    out = server("start", "--state", "/proc/tunelab-state", cwd=tmp_path)
    assert (out.returncode, out.stderr.strip()) == (
        1,
        (
            "tunelab server: error: --state: /proc/tunelab-state cannot hold the database and "
            "artifacts (No such file or directory)"
        ),
    )


@pytest.mark.slow
def test_start_is_idempotent_a_study_uses_both_services_and_stop_leaves_nothing(tmp_path):
    port = str(free_port())
    started = server("start", "--port", port, cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    state = json.loads((tmp_path / ".tunelab/server/server.json").read_text())
    assert f"tracking URI:   http://127.0.0.1:{port}\n" in started.stdout
    assert f"Optuna storage: {state['optuna_storage']}\n" in started.stdout
    postmaster = int((tmp_path / ".tunelab/server/postgres/postmaster.pid").read_text().split()[0])
    workers = psutil.Process(state["mlflow_pid"]).children(recursive=True)
    try:
        again = server("start", "--port", port, cwd=tmp_path)
        assert again.returncode == 0 and again.stdout == started.stdout
        assert json.loads((tmp_path / ".tunelab/server/server.json").read_text()) == state
        assert server("status", cwd=tmp_path).stdout == started.stdout

        storage = state["optuna_storage"]
        args = [
            "strategy=tpe",
            "dataset=digits",
            "budget=smoke",
            "quiet=true",
            f"tracking.uri={state['tracking_uri']}",
            f"strategy.storage='{storage}'",
        ]
        study = tunelab_cli(args, cwd=tmp_path)
        assert study.returncode == 0, study.stderr
        stranger = storage.replace("postgres:@", "nobody:@")  # a role the server does not have
        refused = tunelab_cli([*args[:-1], f"strategy.storage='{stranger}'"], cwd=tmp_path)
        assert refused.returncode == 2
        assert refused.stderr.startswith("tunelab: error: strategy.storage: cannot connect to ")
        assert 'role "nobody" does not exist' in refused.stderr
        again = tunelab_cli(args, cwd=tmp_path)  # resume=false must not delete the shared study
        assert again.returncode == 2
        refusal = "tunelab: error: strategy.storage: an Optuna study named 'mlp-digits-tpe-seed0'"
        assert again.stderr.strip().startswith(refusal)
        import optuna
        from mlflow.tracking import MlflowClient

        trials = MlflowClient(state["tracking_uri"]).search_runs(
            ["1"], "tags.`tunelab.kind` = 'trial'"
        )
        assert len(trials) == 3 and {t.info.status for t in trials} == {"FINISHED"}
        runs = MlflowClient(state["tracking_uri"]).search_runs(["1"])
        assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
        (summary,) = optuna.get_all_study_summaries(storage)
        assert summary.n_trials == 3
        assert dashboard_trials(storage) == {"mlp-digits-tpe-seed0": ["Complete"] * 3}
        assert not (tmp_path / "mlflow.db").exists()
    finally:
        stopped = server("stop", cwd=tmp_path)
    assert (stopped.returncode, stopped.stdout) == (0, "stopped\n")
    assert not [
        p for p in [state["mlflow_pid"], postmaster, *(w.pid for w in workers)] if running(p)
    ]
    status = server("status", cwd=tmp_path)
    assert (status.returncode, status.stdout) == (1, "not running (state: .tunelab/server)\n")
    assert server("stop", cwd=tmp_path).stdout == "nothing was running\n"
    assert os.listdir(tmp_path / ".tunelab/server/postgres")  # the data stays for next start


@pytest.mark.slow
def test_eight_writers_log_2000_trials_and_every_run_is_read_back_complete(tmp_path):
    """The load of `benchmarks/tracking_load.py` at its full size, checked for completeness
    (status, params, metrics and a sample of histories); the benchmark measures the speed."""
    from mlflow.tracking import MlflowClient

    sys.path.insert(0, str(PROJECT / "benchmarks"))
    from tracking_writers import load, read_back

    from tunelab import server as tunelab_server

    state = tmp_path / "state"
    running = tunelab_server.start(state, "127.0.0.1", free_port(), workers=2)
    try:
        client = MlflowClient(running.tracking_uri)
        experiment_id = client.create_experiment("load")
        parent = client.create_run(experiment_id, run_name="study").info.run_id
        load(running.tracking_uri, experiment_id, parent, writers=8, trials=2000)
        assert read_back(running.tracking_uri, experiment_id, parent, 2000) == 2000
    finally:
        tunelab_server.stop(state)
