"""A model's weights: saved and loaded as .npz (the model's, not its optimizer's), and
summarised per layer for a trial's weight metrics and violins."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.backend import keras

NEAR_ZERO = 1e-3


def save_weights(model: Any, path: Path) -> None:
    """The model's weights, not its optimizer's, as an .npz written atomically. Keras'
    `.weights.h5` also stores the optimizer state, several times slower to write, and every
    Hyperband trial pays for it."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as f:
        np.savez(f, *model.get_weights())
    os.replace(partial, path)


def load_weights(model: Any, path: Path) -> None:
    """Weights saved by `save_weights` into a model of the same architecture."""
    with np.load(path) as saved:
        model.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])


def weight_snapshot(model: Any) -> dict[str, np.ndarray]:
    """Every layer's trainable weights, flattened into one array per layer, by position:
    `layer_0` is the first layer with weights (Keras' own names, `dense_3`, differ from one
    trial's model to the next, so trials could not be compared)."""
    snapshot: dict[str, np.ndarray] = {}
    for layer in model.layers:
        weights = [np.ravel(keras().ops.convert_to_numpy(w)) for w in layer.trainable_weights]
        if weights:
            snapshot[f"layer_{len(snapshot)}"] = np.concatenate(weights)
    return snapshot


def weight_stats(values: np.ndarray) -> dict[str, float]:
    """Summary of one layer's weights: mean, std, min, max, p1/p50/p99, fraction |w| < 1e-3."""
    ordered = np.sort(values)  # NumPy's vectorised sort, then percentiles of sorted data: about
    p1, p50, p99 = np.percentile(ordered, [1, 50, 99])  # half the time of percentiles alone
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(ordered[0]),
        "max": float(ordered[-1]),
        "p1": float(p1),
        "p50": float(p50),
        "p99": float(p99),
        "frac_near_zero": float(np.mean(np.abs(values) < NEAR_ZERO)),
    }


def parameter_count(model: Any) -> int:
    return int(model.count_params())
