"""CIFAR-10: 32x32 colour images in 10 classes, from keras.datasets or a local copy."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from tunelab.data.base import (
    Arrays,
    Augmentation,
    DatasetSource,
    DataSettings,
    download_error,
    load_keras_npz,
)
from tunelab.schema import ConfigError


@dataclass
class CIFAR10Settings(DataSettings):
    source: Literal["keras"] = "keras"
    n_val: int = 10000
    n_test: int | None = None
    augmentation: Augmentation = field(
        default_factory=lambda: Augmentation(rotation=15, shift=0.1, shear=0.2, zoom=0.2, flip=True)
    )


class CIFAR10(DatasetSource):
    """`keras.datasets.cifar10` (downloads 163 MB once), or `path`: an `.npz` in keras layout
    or the `cifar-10-batches-py` folder of python pickles."""

    Settings = CIFAR10Settings
    class_names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]

    @classmethod
    def arrays(cls, settings: CIFAR10Settings) -> Arrays:
        if settings.path:
            path = Path(settings.path)
            return _pickle_batches(path) if path.is_dir() else load_keras_npz(str(path))
        from tunelab.backend import keras

        try:
            (x, y), (x_test, y_test) = keras().datasets.cifar10.load_data()
        except Exception as error:  # keras raises plain Exception on a failed download
            raise download_error(
                "CIFAR-10",
                error,
                "copy cifar-10-python.tar.gz's folder or an .npz here and set dataset.path=<path>",
            ) from None
        return Arrays(x, y.reshape(-1), x_test, y_test.reshape(-1))


def _pickle_batches(folder: Path) -> Arrays:
    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        file = folder / name
        if not file.exists():
            raise ConfigError(f"dataset.path: {folder} has no {name} (cifar-10-batches-py layout)")
        with file.open("rb") as f:
            batch = pickle.load(f, encoding="bytes")
        x = batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return x, np.asarray(batch[b"labels"], dtype="int64")

    parts = [read(f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = read("test_batch")
    return Arrays(
        np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), x_test, y_test
    )
