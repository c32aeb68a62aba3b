"""Your own arrays in a NumPy `.npz` file: `dataset=npz dataset.path=data.npz`."""

from __future__ import annotations

from typing import Any

import numpy as np

from tunelab.data.supervised import FileSettings, SupervisedData, from_splits
from tunelab.schema import ConfigError

LAYOUTS = "x and y, or x_train, y_train, x_test, y_test (and optionally x_val, y_val)"


class NPZ:
    """Keys `x` / `y` (test and validation shares split off), or `x_train` / `y_train` /
    `x_test` / `y_test` with optional `x_val` / `y_val`."""

    Settings = FileSettings

    @classmethod
    def load(cls, settings: FileSettings, seed: int) -> SupervisedData:
        try:
            with np.load(str(settings.path), allow_pickle=False) as f:
                arrays = {key: f[key] for key in f.files}
        except FileNotFoundError:
            raise ConfigError(f"dataset.path: no file at {settings.path!r}") from None
        except (OSError, ValueError) as error:
            raise ConfigError(
                f"dataset.path: {settings.path!r} is not a readable .npz ({error})"
            ) from None
        return from_splits(settings, seed, *_layout(arrays, str(settings.path)))


def _layout(arrays: dict[str, np.ndarray], path: str) -> tuple[Any, ...]:
    def pair(prefix: str) -> tuple[np.ndarray, np.ndarray] | None:
        names = (f"x_{prefix}", f"y_{prefix}")
        return (arrays[names[0]], arrays[names[1]]) if set(names) <= set(arrays) else None

    if {"x", "y"} <= set(arrays):
        return arrays["x"], arrays["y"], None, None
    train, test = pair("train"), pair("test")
    if train is None or test is None:
        found = ", ".join(sorted(arrays)) or "no arrays"
        raise ConfigError(f"dataset.path: {path!r} has {found}; expected {LAYOUTS}")
    return *train, pair("val"), test
