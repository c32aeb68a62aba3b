"""A study's data as MLflow dataset inputs: each split a dataset (name, digest, source, schema)
with its split as context, so the UI's Dataset column and Datasets filter show it."""

from __future__ import annotations

from typing import Any

import numpy as np

SPLITS = (("train", "training"), ("val", "validation"), ("test", "test"))
DIGEST_ROWS = 10_000  # MLflow hashes a sample of rows, not the whole array


def dataset_inputs(data: Any, name: str, source: str | None = None) -> list[Any]:
    """`DatasetInput`s of `data`'s training, validation and test splits (those it has), named
    `<name>-<split>`; `source` is where the data came from (a path), else this code."""
    from mlflow.data.numpy_dataset import from_numpy
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    fingerprint = getattr(data, "fingerprint", None)
    inputs = []
    for split, context in SPLITS:
        features = getattr(data, f"x_{split}", None)
        if features is None:
            continue
        targets = getattr(data, f"y_{split}", None)
        digest, rows = None, None
        if hasattr(features, "element_spec"):  # a stream: one batch, the files' hash
            features, targets = _first_batch(features)
            digest = f"{fingerprint}-{split}"[:36] if fingerprint else None
            rows = data.sizes.get(f"data.n_{split}") or None  # its profile: all of its rows
        where = {"source": source} if source else {}  # else MLflow names this code
        dataset = from_numpy(
            _sample(features),
            targets=_sample(targets),
            name=f"{name}-{split}",
            digest=digest,
            **where,
        )
        if rows:
            dataset.__class__ = _rows_of(type(dataset), rows)
        tags = [InputTag(key=MLFLOW_DATASET_CONTEXT, value=context)]
        inputs.append(DatasetInput(dataset=dataset._to_mlflow_entity(), tags=tags))
    return inputs


def _rows_of(cls: type, rows: int) -> type:
    """`cls` (MLflow's NumpyDataset) profiled as `rows` rows of its first batch's shape: a
    stream's dataset holds one batch, and its profile would describe that batch."""

    class Streamed(cls):
        @property
        def profile(self) -> Any:
            profile = dict(super().profile)
            for part in ("features", "targets"):
                shape = profile.get(f"{part}_shape")
                if isinstance(shape, tuple) and shape:
                    profile[f"{part}_shape"] = (rows, *shape[1:])
                    per_row = profile[f"{part}_nbytes"] // shape[0]
                    profile[f"{part}_size"] = rows * profile[f"{part}_size"] // shape[0]
                    profile[f"{part}_nbytes"] = rows * per_row
            return profile

    return Streamed


def _sample(array: Any) -> Any:
    if array is None or isinstance(array, dict):
        return array
    return np.asarray(array)


def _first_batch(stream: Any) -> tuple[np.ndarray, np.ndarray]:
    features, targets = next(iter(stream))
    return np.asarray(features), np.asarray(targets)
