"""TensorFlow and Keras, imported on first use (seconds) and quietly: config validation, `--help`
and the comparison CLI never pay for them. Everything that needs Keras gets it from here."""

from __future__ import annotations

import importlib.util
import os
from typing import Any


def require_tensorflow() -> None:
    """Refuse, in one line and without importing it, a Python with no TensorFlow (tunelab
    installed without its `cpu` or `gpu` extra)."""
    if importlib.util.find_spec("tensorflow") is None:
        from tunelab.schema import ConfigError

        raise ConfigError(
            "TensorFlow is not installed: pip install 'tunelab[cpu]', or "
            "'tunelab[gpu]' on a machine with CUDA GPUs (docs: how-to/workers.md, "
            "GPUs)"
        )


def keras() -> Any:
    """Import Keras on first use, with TensorFlow's start-up chatter silenced."""
    quiet_tensorflow()
    import keras as _keras

    return _keras


def predict_in_batches(model: Any, x: Any, batch_size: int = 500) -> Any:
    """`model(x)` as a NumPy array, from eager forward passes over batches of `batch_size`
    (no per-model `predict` function to trace); `x` is an array, a list of arrays or a dict of
    arrays (a model with named inputs)."""
    import numpy as np

    to_numpy = keras().ops.convert_to_numpy
    several = isinstance(x, (list, tuple))
    named = isinstance(x, dict)
    n = len(next(iter(x.values()))) if named else len(x[0]) if several else len(x)

    def batch(i: int) -> Any:
        if named:
            return {k: a[i : i + batch_size] for k, a in x.items()}
        return [a[i : i + batch_size] for a in x] if several else x[i : i + batch_size]

    return np.concatenate(
        [to_numpy(model(batch(i), training=False)) for i in range(0, n, batch_size)]
    )


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up logs and retracing warnings (call before importing it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.WARNING)
