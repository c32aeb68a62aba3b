"""`tunelab cleanup`: RUNNING runs whose process is dead become KILLED with the reason, against
a real `mlflow server`; live processes' runs, other hosts' and foreign runs are left alone."""

from __future__ import annotations

import socket
import subprocess
import sys

from conftest import run_study, tunelab_cli

from tunelab.tracking.cleanup import PROCESS, REASON, SHARED, this_process


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_dead_processes_runs_are_killed_with_the_reason_and_the_rest_left(tracking_uri, tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.create_experiment("cleanup")
    host = socket.gethostname()

    def running(name: str, process: str | None, **more: str) -> str:
        tags = {PROCESS: process, **more} if process else {}
        return client.create_run(experiment, run_name=name, tags=tags).info.run_id

    dead = running("dead", f"{host}:{dead_pid()}")
    alive = running("alive", this_process())
    elsewhere = running("elsewhere", "other-machine:4242")
    foreign = running("foreign", None)
    shared = running("shared", f"{host}:{dead_pid()}", **{SHARED: "true"})  # workers=0 made it

    out = tunelab_cli(["cleanup", "--experiment", "cleanup", "--dry-run"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "5 running, 1 dead (dry run)" in out.stdout
    assert client.get_run(dead).info.status == "RUNNING"

    out = tunelab_cli(["cleanup", "--experiment", "cleanup"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"KILLED     {dead} dead: its process {host}:" in out.stdout
    assert client.get_run(dead).info.status == "KILLED"
    assert "is gone; ended by tunelab cleanup" in client.get_run(dead).data.tags[REASON]
    assert f"left       {shared} shared: a shared study's run: its workers close it" in out.stdout
    statuses = {r: client.get_run(r).info.status for r in (alive, elsewhere, foreign, shared)}
    assert set(statuses.values()) == {"RUNNING"}

    out = tunelab_cli(
        ["cleanup", "--experiment", "cleanup", "--gone-host", "other-machine"], cwd=tmp_path
    )
    assert "4 running, 1 dead" in out.stdout
    assert client.get_run(elsewhere).info.status == "KILLED"
    assert "its host other-machine is gone" in client.get_run(elsewhere).data.tags[REASON]
    assert client.get_run(alive).info.status == "RUNNING"


def test_an_unknown_experiment_is_one_line_naming_those_there(tracking_uri, tmp_path):
    out = tunelab_cli(["cleanup", "--experiment", "nope"], cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("tunelab cleanup: error: --experiment: no experiment 'nope'; ")


def test_study_and_trial_runs_name_the_process_that_writes_them(tracking_uri, tmp_path):
    from mlflow.tracking import MlflowClient

    summary = run_study(
        [
            "dataset=digits",
            "budget=smoke",
            "strategy=grid",
            "model.tune=[lr]",
            "strategy.points=2",
            "tracking.experiment=process",
        ],
        tmp_path,
    )
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("process").experiment_id])
    assert summary.run_id in {r.info.run_id for r in runs} and len(runs) >= 3
    assert {r.data.tags[PROCESS] for r in runs} == {this_process()}
