"""`tunelab server start | stop | status` (or `python -m tunelab.server …`): a private
PostgreSQL (pgserver) with an `mlflow server` on it, for studies that outgrow SQLite.

`start` runs PostgreSQL on a Unix socket in the state folder and `mlflow server` on it
(`--serve-artifacts`, artifacts in the state folder, `--workers` ≥ 2) on a loopback port; it
prints the tracking URI and the Optuna storage URL and keeps them, with the processes, in
`<state>/server.json`. `start` on a running server prints the same and starts nothing;
`stop` stops both and leaves nothing running; `status` exits 1 when the server is down.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DEFAULT_STATE = Path(".tunelab/server")
DATABASES = ("mlflow", "optuna")
START_SECONDS = 90  # mlflow server's first start creates its schema in PostgreSQL
# MLflow's job execution (GenAI jobs, which tunelab never submits) starts eight more processes
# beside the server: 1.5 GB of memory and 30 s of CPU in its first 40 s (docs/benchmarks.md,
# "Measured while building"). Off unless the environment turns it on.
NO_JOB_EXECUTION = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


@dataclass
class ServerState:
    tracking_uri: str
    optuna_storage: str
    mlflow_pid: int
    pgdata: str

    @classmethod
    def read(cls, state: Path) -> ServerState | None:
        file = state / "server.json"
        return cls(**json.loads(file.read_text())) if file.exists() else None

    def write(self, state: Path) -> None:
        from tunelab.files import write_atomically

        write_atomically(state / "server.json", json.dumps(asdict(self), indent=2))

    def answers(self) -> bool:
        """Whether the MLflow server answers its health check."""
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with direct.open(f"{self.tracking_uri}/health", timeout=3) as response:
                return response.status == 200
        except OSError:
            return False


class ServerError(Exception):
    """Why the server could not start; one line."""


def start(state: Path, host: str, port: int, workers: int) -> ServerState:
    """Start PostgreSQL and the MLflow server, or return the running ones."""
    running = ServerState.read(state)
    if running is not None and running.answers() and _alive(running.mlflow_pid):
        return running
    if running is not None:  # left by a server that died: stop what remains of it
        stop(state)
    try:
        probe = state / "artifacts" / ".writable"
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise ServerError(
            f"--state: {state} cannot hold the database and artifacts ({error.strerror})"
        ) from None
    postgres = _postgres(state)
    uris = {
        db: postgres.get_uri(db).replace("postgresql://", "postgresql+psycopg://", 1)
        for db in DATABASES
    }
    log = state / "mlflow.log"
    with log.open("a") as out:
        process = subprocess.Popen(
            mlflow_server_command(host, port, uris["mlflow"], state / "artifacts", workers),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**NO_JOB_EXECUTION, **os.environ},
            start_new_session=True,  # outlives this command; stop ends its whole group
        )
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    server = ServerState(
        f"http://{shown_host}:{port}", uris["optuna"], process.pid, str(postgres.pgdata)
    )
    deadline = time.monotonic() + START_SECONDS
    while not server.answers():
        if process.poll() is not None or time.monotonic() > deadline:
            _end_group(process.pid)
            _stop_postgres(Path(server.pgdata))
            tail = " / ".join(log.read_text().strip().splitlines()[-2:])
            raise ServerError(f"mlflow server did not start on {host}:{port}: {tail}")
        time.sleep(0.5)
    server.write(state)
    return server


def stop(state: Path) -> bool:
    """Stop the MLflow server and PostgreSQL; whether anything was running."""
    server = ServerState.read(state)
    if server is None:
        return False
    was_running = _alive(server.mlflow_pid)
    _end_group(server.mlflow_pid)
    was_running |= _stop_postgres(Path(server.pgdata))
    (state / "server.json").unlink()
    return was_running


def _postgres(state: Path) -> Any:
    """PostgreSQL running on the state folder's data, with tunelab's databases."""
    try:
        import pgserver
    except ImportError:
        raise ServerError("tunelab server needs pgserver: pip install -e '.[server]'") from None
    with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set, falling back"
        warnings.simplefilter("ignore")
        postgres = pgserver.get_server(state / "postgres", cleanup_mode=None)  # stays up after us
    present = postgres.psql("SELECT datname FROM pg_database;")
    for db in DATABASES:
        if f" {db}\n" not in present:
            postgres.psql(f"CREATE DATABASE {db};")
    return postgres


def _stop_postgres(pgdata: Path) -> bool:
    """Stop PostgreSQL as pgserver runs it (as the user `pgserver` when we are root)."""
    import pgserver

    if not (pgdata / "postmaster.pid").exists():
        return False
    user = "pgserver" if os.geteuid() == 0 else None
    stop_command = ["-w", "-m", "fast", "stop"]
    pgserver.pg_ctl(stop_command, pgdata=pgdata, user=user)  # type: ignore[attr-defined]
    return True


def _alive(pid: int) -> bool:
    """Whether `pid` is a running `mlflow server` (not a zombie, not a reused pid)."""
    import psutil

    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and "mlflow" in " ".join(process.cmdline())
    except psutil.Error:
        return False


def _end_group(pid: int, seconds: float = 20) -> None:
    """SIGTERM the MLflow server and its workers, then SIGKILL what is left."""
    import psutil

    if not _alive(pid):
        return
    leader = psutil.Process(pid)
    processes = [leader, *leader.children(recursive=True)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.send_signal(sig)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and any(map(_running, processes)):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # our own child, when start fails
            time.sleep(0.2)


def _running(process: Any) -> bool:
    import psutil

    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="tunelab server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("action", choices=("start", "stop", "status"))
    top.add_argument(
        "--state",
        type=Path,
        default=DEFAULT_STATE,
        help=f"folder of the database, artifacts and server.json ({DEFAULT_STATE})",
    )
    top.add_argument("--port", type=int, default=5000, help="the MLflow server's port (5000)")
    top.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on (127.0.0.1); another one is reachable by "
        "others, and MLflow has no authentication of its own",
    )
    top.add_argument("--workers", type=int, default=2, help="MLflow server workers (≥ 2)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.action == "start":
        if args.workers < 2:
            print(
                "tunelab server: error: --workers: at least 2 (one request must not wait "
                f"for another), got {args.workers}",
                file=sys.stderr,
            )
            return 2
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(
                f"tunelab server: warning: listening on {args.host}: anyone who reaches this "
                "port can read and write every run (MLflow has no authentication of its "
                "own)",
                file=sys.stderr,
            )
        try:
            server = start(args.state, args.host, args.port, args.workers)
        except ServerError as error:
            print(f"tunelab server: error: {error}", file=sys.stderr)
            return 1
        _print(server)
        return 0
    if args.action == "stop":
        print("stopped" if stop(args.state) else "nothing was running")
        return 0
    found = ServerState.read(args.state)
    if found is None or not found.answers():
        print(f"not running (state: {args.state})")
        return 1
    _print(found)
    return 0


def _print(server: ServerState) -> None:
    print(f"tracking URI:   {server.tracking_uri}")
    print(f"Optuna storage: {server.optuna_storage}")
    print(f"use it with:    python -m tunelab tracking.uri={server.tracking_uri}")


if __name__ == "__main__":
    sys.exit(main())


def mlflow_server_command(
    host: str, port: int, backend_store_uri: str, artifacts: Path, workers: int
) -> list[str]:
    """`mlflow server` on `host:port` over `backend_store_uri`, serving the artifacts it keeps
    in `artifacts`, with `workers` worker processes."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--backend-store-uri",
        backend_store_uri,
        "--serve-artifacts",
        "--artifacts-destination",
        str(artifacts.resolve()),
        "--workers",
        str(workers),
    ]


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow_server(
    folder: Path,
    backend_store_uri: str | None = None,
    port: int | None = None,
    host: str = "127.0.0.1",
) -> tuple[subprocess.Popen, str]:
    """`mlflow server` with a SQLite backend in `folder` (or `backend_store_uri`), artifacts in
    `folder`, on `port` (default: a free one), one worker; returns once /health answers.
    Started again on the same folder and port, it is the same server after a restart. The
    tests' and the benchmarks' server (`tunelab server` is the PostgreSQL-backed one)."""
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    backend_store_uri = backend_store_uri or f"sqlite:///{folder / 'mlflow.db'}"
    with open(folder / "server.log", "a") as log:
        process = subprocess.Popen(
            mlflow_server_command(host, port, backend_store_uri, folder / "artifacts", 1),
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**NO_JOB_EXECUTION, **os.environ},
        )
    uri = f"http://{host}:{port}"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with direct.open(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    return process, uri
        except OSError:
            time.sleep(0.5)
        if process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"mlflow server did not start: {(folder / 'server.log').read_text()}")
