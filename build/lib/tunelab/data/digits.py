"""scikit-learn's 1,797 handwritten 8x8 digits: tiny, embedded, for smoke studies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tunelab.data.base import Arrays, DatasetSource, DataSettings


@dataclass
class DigitsSettings(DataSettings):
    source: Literal["embedded"] = "embedded"
    n_val: int = 300
    n_test: int | None = 300


class Digits(DatasetSource):
    """8x8 grey digits with values 0..16, shipped inside scikit-learn."""

    Settings = DigitsSettings
    class_names = [str(d) for d in range(10)]
    max_value = 16.0

    @classmethod
    def arrays(cls, settings: DigitsSettings) -> Arrays:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return Arrays(bunch.images[..., None], bunch.target.astype("int64"))
