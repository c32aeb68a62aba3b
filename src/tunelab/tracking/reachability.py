"""Is the tracking server there? Checked before a study starts, and described when it goes away.

- `check(uri)`: a short probe of an HTTP server or a database before TensorFlow is imported, so
  a wrong or unreachable `tracking.uri` is one line within seconds, not a traceback minutes on.
- `retry_environment(seconds)`: `tracking.retry_seconds` as MLflow's retry settings.
- `RetryCounter`: urllib3's "Retrying …" warnings counted instead of printed.
- `describe_outage(error, uri)`: one line for an error that means the server stopped answering.

No MLflow import here: the check runs where only the config is loaded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tunelab.schema import ConfigError, StudyFailed

PROBE_SECONDS = 5
# MLflow's own caps (its _MLFLOW_HTTP_REQUEST_MAX_*_LIMIT) and urllib3's longest backoff sleep
MAX_RETRIES, MAX_BACKOFF_FACTOR, MAX_SLEEP = 10, 120, 120


class TrackingOutage(StudyFailed):
    """The tracking server stopped answering a study's requests."""


def backoff_seconds(retries: int, factor: int) -> float:
    """How long urllib3 sleeps over `retries` retries (jitter aside): nothing before the first,
    then factor·2, factor·4, … seconds, each at most two minutes."""
    return float(sum(min(MAX_SLEEP, factor * 2 ** (n - 1)) for n in range(2, retries + 1)))


def retry_policy(seconds: float) -> tuple[int, int]:
    """(retries, backoff factor) that wait at least `seconds` for the server, and as little
    more as MLflow's integer settings allow."""
    if seconds <= 0:
        return 0, 0
    candidates = [
        (backoff_seconds(r, f), -r, f)
        for r in range(2, MAX_RETRIES + 1)
        for f in range(1, MAX_BACKOFF_FACTOR + 1)
    ]
    enough = [c for c in candidates if c[0] >= seconds]
    window, retries, factor = min(enough) if enough else max(candidates)
    return -retries, factor


def retry_environment(seconds: float) -> dict[str, str]:
    retries, factor = retry_policy(seconds)
    return {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(factor),
    }


def retry_window() -> float:
    """How long MLflow's current retry settings wait for the server (default ≈ 4 minutes)."""
    retries = int(os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", 7))
    factor = int(os.environ.get("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", 2))
    return backoff_seconds(retries, factor)


class RetryCounter(logging.Filter):
    """Counts urllib3's retry warnings and keeps them off the terminal."""

    def __init__(self) -> None:
        super().__init__()
        self.retries = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Retrying"):
            self.retries += 1
            return False
        return True

    @classmethod
    def installed(cls) -> RetryCounter:
        """The counter on urllib3's connection-pool logger (one per process)."""
        logger = logging.getLogger("urllib3.connectionpool")
        for existing in logger.filters:
            if isinstance(existing, cls):
                return existing
        counter = cls()
        logger.addFilter(counter)
        return counter


CAUSES = [
    (r"Connection refused", "connection refused"),
    (r"timed out|Timeout", "timed out"),
    (r"RemoteDisconnected|Connection aborted|Connection reset|BrokenPipe", "connection dropped"),
    (r"too many (\d{3}) error responses", r"HTTP \1"),
    (r"Name or service not known|nodename nor servname|getaddrinfo failed", "unknown host"),
]


def _cause(text: str) -> str:
    for pattern, cause in CAUSES:
        if found := re.search(pattern, text):
            return found.expand(cause)
    return "no answer"


def describe_outage(error: BaseException, uri: str) -> str | None:
    """One line if `error` (or what it was raised from) means the server stopped answering;
    None for any other error."""
    import requests

    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if isinstance(error, TrackingOutage):
        return str(error)
    lost = (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        requests.exceptions.RetryError,
    )
    if not any(isinstance(e, lost) for e in chain):
        return None
    text = " ".join(str(e) for e in chain)
    request = re.search(r"API request to \S+?(/api/[\w./-]+|/ajax-api/[\w./-]+)", text)
    where = f"…{request.group(1).split('/mlflow', 1)[-1]}: " if request else ""
    counter = RetryCounter.installed()
    return (
        f"the tracking server {uri} stopped answering ({where}{_cause(text)}; "
        f"{counter.retries} retries, giving up after ≈{retry_window():.0f} s)"
    )


def effective_uri(uri: str | None) -> str | None:
    """The URI a study will use: `uri`, else $MLFLOW_TRACKING_URI; None for MLflow's default."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or None


def check(uri: str | None, key: str = "tracking.uri") -> None:
    """Raise ConfigError naming `key`, the URI and the cause if nothing usable answers there."""
    uri = effective_uri(uri)
    if uri is None:
        return
    scheme = urlsplit(uri).scheme.split("+")[0].lower()
    if scheme in ("http", "https"):
        _check_http(uri, key)
    elif scheme in ("postgresql", "mysql", "mssql"):
        _check_database(uri, scheme, key)
    elif scheme in ("sqlite", "file", ""):
        _check_folder(uri, key)


def _check_http(uri: str, key: str) -> None:
    import requests

    url = f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search"
    try:
        response = requests.get(
            url, params={"max_results": 1}, headers=_auth_headers(), timeout=PROBE_SECONDS
        )
    except requests.exceptions.RequestException as error:
        raise ConfigError(
            f"{key}: nothing answers at {uri} ({_cause(str(error))}); start "
            "the server (e.g. `mlflow server`) or fix the URI"
        ) from None
    if response.status_code in (401, 403):
        raise ConfigError(
            f"{key}: {uri} refused access (HTTP {response.status_code}); set "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or "
            "MLFLOW_TRACKING_TOKEN"
        )
    if response.status_code != 200:
        raise ConfigError(
            f"{key}: {uri} answered HTTP {response.status_code} to MLflow's "
            "experiment search; is it an MLflow tracking server?"
        )


def _auth_headers() -> dict[str, str]:
    import base64

    if token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
        return {"Authorization": f"Bearer {token}"}
    user, password = (os.environ.get(f"MLFLOW_TRACKING_{k}") for k in ("USERNAME", "PASSWORD"))
    if user and password:
        return {
            "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        }
    return {}


def masked(uri: str) -> str:
    """`uri` without its password, for messages."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", uri)


def _check_database(uri: str, scheme: str, key: str) -> None:
    import sqlalchemy

    connect_args: dict[str, Any] = {"connect_timeout": PROBE_SECONDS} if scheme != "mssql" else {}
    shown = masked(uri)
    try:
        engine = sqlalchemy.create_engine(uri, connect_args=connect_args)
        with engine.connect():
            pass
        engine.dispose()
    except ModuleNotFoundError as error:
        raise ConfigError(
            f"{key}: {shown} needs the database driver {error.name!r}, which is not installed"
        ) from None
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise ConfigError(f"{key}: cannot connect to {shown} ({reason})") from None


def _check_folder(uri: str, key: str) -> None:
    """A SQLite file must be a database; where none is yet, its folder must take a file (tried,
    not asked: for root, `os.access` says yes even to /proc)."""
    if uri.startswith("sqlite:"):
        path = uri.split(":///", 1)[1] if ":///" in uri else ""  # sqlite:////abs, sqlite:///rel
        if path in ("", ":memory:"):
            return
        if Path(path).is_file():
            _check_sqlite_file(uri, Path(path), key)
            return
        folder = Path(path).parent
    else:
        folder = Path(uri.removeprefix("file://"))
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # MLflow creates missing folders below one that exists
    try:
        tempfile.NamedTemporaryFile(dir=folder).close()
    except OSError as error:
        raise ConfigError(
            f"{key}: {uri} cannot be written ({folder}: {error.strerror or error})"
        ) from None


def _check_sqlite_file(uri: str, path: Path, key: str) -> None:
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            db.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as error:
        raise ConfigError(f"{key}: {uri} is not a usable SQLite database ({error})") from None
