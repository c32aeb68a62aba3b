"""Shared fixtures: a real `mlflow server` on a free loopback port, and studies run in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tunelab import config
from tunelab.server import start_mlflow_server

PROJECT = Path(__file__).resolve().parents[1]


MOVE_THE_BOUND = (
    "check what changed, adapt the module named, then move the package's upper "
    "bound in pyproject.toml and the pin in conda.yaml"
)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, uri = start_mlflow_server(tmp_path_factory.mktemp("mlflow_server"))
    yield uri
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A private PostgreSQL 16 (pgserver) for this session."""
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("postgres") / "data", cleanup_mode="stop")
    yield server
    server.cleanup()


def postgres_database(postgres: Any, name: str) -> str:
    """A new database on `postgres`: its SQLAlchemy URL, over psycopg 3."""
    postgres.psql(f"CREATE DATABASE {name};")
    return postgres.get_uri(name).replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def postgres_mlflow_server(
    postgres: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`mlflow server` backed by PostgreSQL."""
    uri = postgres_database(postgres, "mlflow")
    process, http = start_mlflow_server(tmp_path_factory.mktemp("pg_mlflow"), backend_store_uri=uri)
    yield http
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture()
def tracking_uri(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    mlflow.set_tracking_uri(mlflow_server)
    return mlflow_server


def assert_same_weights(a, b) -> None:
    """Two Keras models hold the same number of weight arrays, each equal to its twin."""
    import numpy as np

    for i, (x, y) in enumerate(zip(a.get_weights(), b.get_weights(), strict=True)):
        assert np.array_equal(x, y), f"weight array {i} differs"


def load_config(overrides: list[str]) -> config.StudyConfig:
    return config.compose(overrides)


def run_study(overrides: list[str], tmp_path: Path):
    """Run a study in this process (TensorFlow is imported once per test session)."""
    from tunelab.study import Study

    cfg = load_config([f"workdir={tmp_path / 'work'}", "quiet=true", *overrides])
    return Study(cfg).run()


def tunelab_cli(args: list[str], cwd: Path, env: dict | None = None, **kwargs):
    """Run `python -m tunelab` as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "tunelab", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        **kwargs,
    )
