"""Runs read back from any tracking URI as one tidy frame, and comparison runs logged."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import Param
from mlflow.tracking import MlflowClient

from tunelab.schema import RENAMED_STRATEGIES, ConfigError

MAX_PARAM_CHARS = 6000  # MLflow refuses longer param values

PAGE_SIZE = 50_000  # the most an MLflow server returns per page; fewer round trips than 1,000


def runs_frame(
    tracking_uri: str | None,
    experiment: str,
    filter_string: str = "",
    page_size: int = PAGE_SIZE,
    cache_dir: Path | None = None,
    refresh: bool = False,
) -> pd.DataFrame:
    """One row per run: run_id, run_name, status, start/end time (ms), `params.*` (numbers
    where numeric), `metrics.*` (final values) and `tags.*`. Pages through `search_runs`.

    With `cache_dir`, the frame is kept as Parquet keyed by (tracking URI, experiment, filter)
    and read from there next time; `refresh=True` queries the server again.
    """
    cached = None
    if cache_dir is not None:
        uri = tracking_uri or mlflow.get_tracking_uri()
        key = hashlib.sha256(json.dumps([uri, experiment, filter_string]).encode()).hexdigest()
        cached = Path(cache_dir) / f"runs-{key[:16]}.parquet"
        if cached.exists() and not refresh:
            return pd.read_parquet(cached)
    frame = _one_type_per_column(_query(tracking_uri, experiment, filter_string, page_size))
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(cached)
    return frame


def _one_type_per_column(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns mixing numbers and text (a param that is sometimes None) become text, so a frame
    read from the server and the same frame read from the cache are alike."""
    frame = frame.copy()
    for column in frame.select_dtypes(include="object").columns:
        if frame[column].map(type).nunique() > 1:
            frame[column] = frame[column].astype(str)
    return frame


def _query(
    tracking_uri: str | None, experiment: str, filter_string: str, page_size: int
) -> pd.DataFrame:
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = ", ".join(sorted(e.name for e in client.search_experiments()))
        raise ConfigError(f"--experiment: no experiment named {experiment!r}; there are: {names}")
    rows, token = [], None
    while True:
        page = client.search_runs(
            [found.experiment_id], filter_string, max_results=page_size, page_token=token
        )
        for run in page:
            row: dict[str, Any] = {
                "run_id": run.info.run_id,
                "run_name": run.info.run_name,
                "status": run.info.status,
                "start_time": run.info.start_time,
                "end_time": run.info.end_time,
            }
            row.update({f"params.{k}": _typed(v) for k, v in run.data.params.items()})
            row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
            row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
            if (strategy := row.get("tags.tunelab.strategy")) in RENAMED_STRATEGIES:
                row["tags.tunelab.strategy"] = RENAMED_STRATEGIES[strategy]  # an old study's
            rows.append(row)
        token = page.token
        if not token:
            break
    if not rows:
        where = f" with filter {filter_string!r}" if filter_string else ""
        raise ConfigError(f"--filter: no runs in experiment {experiment!r}{where}")
    return pd.DataFrame(rows)


def _typed(value: str) -> Any:
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value


def mlflow_params(params: Mapping[str, Any]) -> list[Param]:
    """Params as MLflow accepts them, long values cut (`MlflowClient.log_batch` sends them 100
    to a request)."""
    return [Param(k, str(v)[:MAX_PARAM_CHARS]) for k, v in params.items()]


def log_comparison(
    tracking_uri: str | None,
    experiment: str,
    name: str,
    params: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame],
    figures: Mapping[str, Any],
) -> str:
    """A run tagged `tunelab.kind=comparison` holding the analysis: CSV and Markdown tables,
    PNG figures, and what was analysed as params. Returns its run id."""
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise ConfigError(f"--experiment: no experiment named {experiment!r}")
    run = client.create_run(found.experiment_id, run_name=name, tags={"tunelab.kind": "comparison"})
    run_id = run.info.run_id
    client.log_batch(run_id, params=mlflow_params(params))
    for path, table in tables.items():
        client.log_text(run_id, table.to_csv(), f"{path}.csv")
        client.log_text(run_id, table.to_markdown(), f"{path}.md")
    for path, figure in figures.items():
        client.log_figure(run_id, figure, path)
    client.set_terminated(run_id, "FINISHED")
    return run_id


def load_keras_model(tracking_uri: str | None, model_uri: str) -> Any:
    """A Keras model logged with `mlflow.tensorflow.log_model`, e.g. `models:/m-…`."""
    import mlflow.tensorflow

    with tracking_uri_kept():  # the caller's stays theirs
        if tracking_uri:
            mlflow.set_tracking_uri(tracking_uri)
        return mlflow.tensorflow.load_model(model_uri)


def read_text(tracking_uri: str | None, run_id: str, path: str) -> str:
    """A text artifact of a run."""
    return read_bytes(tracking_uri, run_id, path).decode()


def read_bytes(tracking_uri: str | None, run_id: str, path: str) -> bytes:
    """An artifact of a run (e.g. a PNG), downloaded without MLflow's progress bar."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # unless asked for
    client = MlflowClient(tracking_uri)
    with tempfile.TemporaryDirectory() as folder:
        return Path(client.download_artifacts(run_id, path, folder)).read_bytes()


def log_report(
    tracking_uri: str | None,
    experiment: str,
    name: str,
    params: Mapping[str, Any],
    tags: Mapping[str, str],
    files: Mapping[str, str | bytes],
) -> str:
    """A finished run holding a report: `files` (text or bytes by artifact path), `params`
    and `tags`; the experiment is created if missing. Returns its run id."""
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run_id = client.create_run(experiment_id, run_name=name, tags=dict(tags)).info.run_id
    client.log_batch(run_id, params=mlflow_params(params))
    with tempfile.TemporaryDirectory() as folder:
        for path, content in files.items():
            target = Path(folder, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        client.log_artifacts(run_id, folder)
    client.set_terminated(run_id, "FINISHED")
    return run_id


@contextlib.contextmanager
def tracking_uri_kept() -> Iterator[None]:
    """MLflow's tracking URI and `MLFLOW_TRACKING_URI` as they were before the block (a study
    sets both for its own store; `tunelab.tune` hands the caller's back)."""
    import mlflow
    from mlflow.tracking._tracking_service import utils

    before, environment = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)  # type: ignore[arg-type]  # None: unset, as before
        if environment is not None:
            os.environ["MLFLOW_TRACKING_URI"] = environment
