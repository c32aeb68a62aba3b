"""The tracking server checked before a study, its retries as a setting, its outages described,
and trial runs kept one per trial."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from conftest import PROJECT, tunelab_cli
from mlflow.tracking import MlflowClient

from tunelab.schema import ConfigError
from tunelab.tracking import reachability


@pytest.mark.parametrize(
    ("seconds", "policy"), [(0, (0, 0)), (2, (2, 1)), (30, (5, 1)), (240, (6, 4)), (1e9, (10, 120))]
)
def test_retry_seconds_become_mlflow_retries_that_wait_at_least_that_long(seconds, policy):
    assert reachability.retry_policy(seconds) == policy
    retries, factor = policy
    waited = reachability.backoff_seconds(retries, factor)
    assert waited >= min(seconds, 9 * 120)  # the most MLflow's limits allow: 18 min
    assert reachability.backoff_seconds(7, 2) == 244  # MLflow's defaults: about 4 minutes


def test_urllib3_retry_warnings_are_counted_not_printed(caplog):
    counter = reachability.RetryCounter.installed()
    assert reachability.RetryCounter.installed() is counter
    before = counter.retries
    logger = logging.getLogger("urllib3.connectionpool")
    with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"):
        logger.warning("Retrying (Retry(total=6)) after connection broken by 'x': /api")
        logger.warning("Connection pool is full")
    assert counter.retries == before + 1
    assert [r.getMessage() for r in caplog.records] == ["Connection pool is full"]


def test_an_outage_is_told_apart_from_other_errors():
    import requests
    from mlflow.exceptions import MlflowException

    uri = "http://127.0.0.1:5000"
    try:
        try:
            raise requests.exceptions.ConnectionError(
                "Max retries exceeded (Caused by "
                "NewConnectionError: [Errno 111] "
                "Connection refused)"
            )
        except requests.exceptions.ConnectionError as error:
            raise MlflowException(  # noqa: B904 (as MLflow raises it: chained implicitly)
                f"API request to {uri}/api/2.0/mlflow/runs/log-batch failed with exception {error}"
            )
    except MlflowException as error:
        line = reachability.describe_outage(error, uri)
    assert line.startswith(
        f"the tracking server {uri} stopped answering (…/runs/log-batch: connection refused; "
    )
    assert reachability.describe_outage(MlflowException("RESOURCE_DOES_NOT_EXIST"), uri) is None
    assert reachability.describe_outage(ValueError("x"), uri) is None


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "http://127.0.0.1:1",
            "tracking.uri: nothing answers at http://127.0.0.1:1 (connection refused)",
        ),
        (
            "postgresql+psycopg://nouser:secret@127.0.0.1:1/x",
            "tracking.uri: cannot connect to postgresql+psycopg://nouser:***@127.0.0.1:1/x (",
        ),
        ("sqlite:////proc/mlflow.db", "tracking.uri: sqlite:////proc/mlflow.db cannot be written"),
    ],
)
def test_a_study_with_an_unusable_tracking_uri_is_one_line_within_seconds(uri, message, tmp_path):
    out = tunelab_cli([f"tracking.uri={uri}", "budget=smoke"], tmp_path, timeout=30)
    assert out.returncode == 2
    assert out.stderr.startswith(f"tunelab: error: {message}"), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "secret" not in out.stderr


def test_an_unreachable_optuna_storage_is_one_line_before_anything_runs(tmp_path):
    storage = "postgresql+psycopg://nouser:secret@127.0.0.1:1/optuna"
    out = tunelab_cli(
        ["strategy=tpe", f"strategy.storage='{storage}'", "budget=smoke"], tmp_path, timeout=30
    )
    assert (out.returncode, out.stderr.strip()) == (
        2,
        (
            "tunelab: error: strategy.storage: cannot connect to "
            "postgresql+psycopg://nouser:***@127.0.0.1:1/optuna (connection failed: connection to "
            'server at "127.0.0.1", port 1 failed: Connection refused)'
        ),
    )
    assert not (tmp_path / "mlflow.db").exists()


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    (tmp_path / "mlflow.db").write_text("not a database")
    with pytest.raises(ConfigError, match="is not a usable SQLite database"):
        reachability.check(f"sqlite:///{tmp_path / 'mlflow.db'}")
    reachability.check(f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}")  # MLflow creates it


def test_compare_against_an_unreachable_server_is_one_line():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunelab.compare",
            "optimisers",
            "--tracking-uri",
            "http://127.0.0.1:1",
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=30,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "tunelab.compare: error: --tracking-uri: nothing answers at "
        "http://127.0.0.1:1 (connection refused); start the server "
        "(e.g. `mlflow server`) or fix the URI"
    )


def test_a_server_that_is_not_mlflow_is_named(tmp_path):
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{server.server_port}"
        with pytest.raises(ConfigError, match="answered HTTP 404 .* an MLflow tracking server"):
            reachability.check(uri)
    finally:
        server.shutdown()


@pytest.mark.slow
def test_a_retried_create_run_leaves_no_twin(tracking_uri):
    """A CreateRun retried after the server had made the run: the twin is deleted."""
    from tunelab.config import TrackingSettings
    from tunelab.tracking import Tracker, run_id

    tracker = Tracker(TrackingSettings(uri=tracking_uri, experiment="twins"))
    study = tracker.start_study("study", {}, {}, resume_run_id=None)
    create = tracker.client.create_run

    def create_twice(*args, **kwargs):  # what a retried POST does on the server
        create(*args, **kwargs)
        logging.getLogger("urllib3.connectionpool").warning("Retrying (Retry(total=6)) …")
        return create(*args, **kwargs)

    tracker.client.create_run = create_twice
    trial = run_id(tracker.start_trial("trial-0", "s/0", {}))
    tracker.client.create_run = create
    tracker.end_all("FINISHED")
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([tracker.experiment_id], f"tags.`mlflow.parentRunId` = '{study}'")
    assert [r.info.run_id for r in runs] == [trial]
    assert runs[0].data.tags["tunelab.trial_key"] == "s/0"


def written_by(tracking_uri: str, run_id: str, path: str, stuck_unless_in: int = 0) -> None:
    """An artifact job that says which process ran it; stuck for a minute in any process but
    `stuck_unless_in` (when given), as a worker that gets no CPU."""
    import os
    import time

    if stuck_unless_in and os.getpid() != stuck_unless_in:
        time.sleep(60)
    with open(path, "a") as f:
        f.write(f"{run_id}:{os.getpid()}\n")


def test_jobs_a_starved_artifact_worker_has_not_done_are_done_by_the_study(tmp_path, monkeypatch):
    """On a busy machine the idle-priority worker gets no CPU: the study waits for it at most
    PATIENCE_SECONDS, then draws what is left itself (it waited 69 s in a study of 8 s)."""
    import os
    import time

    from tunelab.tracking import artifacts

    worker = artifacts.ArtifactWorker().start()
    log = tmp_path / "log"
    worker.submit(written_by, "uri", "first", path=str(log))
    monkeypatch.setattr(artifacts, "PATIENCE_SECONDS", 120.0)
    worker.drain()  # the worker's, however long it takes to start
    monkeypatch.setattr(artifacts, "PATIENCE_SECONDS", 1.0)
    worker.submit(written_by, "uri", "stuck", path=str(log), stuck_unless_in=os.getpid())
    worker.submit(written_by, "uri", "last", path=str(log))
    started = time.perf_counter()
    worker.drain()
    assert time.perf_counter() - started < 10
    done = dict(line.split(":") for line in log.read_text().split())
    assert set(done) == {"first", "stuck", "last"}
    assert done["first"] != str(os.getpid())  # the worker's
    assert done["stuck"] == done["last"] == str(os.getpid())  # this process's
    worker.terminate()


def failing(tracking_uri: str, run_id: str) -> None:
    """An artifact job that fails."""
    raise RuntimeError(f"no figure for {run_id}")


def test_a_failed_artifact_job_is_told_though_the_next_job_came_first(tmp_path):
    """A job done by the time the next one is submitted leaves the worker's list; had it
    failed, its warning is given then, not lost."""
    from tunelab.tracking import artifacts

    worker = artifacts.ArtifactWorker().start()
    worker.submit(failing, "uri", "first")
    worker._pending[0][0].wait(120)
    with pytest.warns(UserWarning, match="logging trial artifacts failed: .*no figure for first"):
        worker.submit(written_by, "uri", "second", path=str(tmp_path / "log"))
    worker.drain()
    worker.terminate()
