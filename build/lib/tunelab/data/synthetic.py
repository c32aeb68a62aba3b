"""Made-up colour images for smoke studies of CIFAR-shaped models, generated offline.

Each class is a blocky random colour pattern; each image is its class's pattern under Gaussian
noise. Learnable in an epoch or two, so a smoke study shows factors at work, but it says
nothing about real images: use it for plumbing, never for results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from tunelab.data.base import Arrays, DatasetSource, DataSettings
from tunelab.schema import ConfigError


@dataclass
class SyntheticSettings(DataSettings):
    source: Literal["generated"] = "generated"
    images: int = 2000  # generated in total, equally many per class
    size: int = 32  # square side in pixels
    channels: int = 3
    noise: float = 0.35  # standard deviation of the noise on patterns in [0, 1]
    generator_seed: int = 0  # the same seed makes the same images

    def check(self, path: str) -> None:
        super().check(path)
        if self.size % 4 or self.size < 4:
            raise ConfigError(f"{path}.size: must be a positive multiple of 4, got {self.size}")
        if self.images < 20:
            raise ConfigError(f"{path}.images: must be at least 20, got {self.images}")


class Synthetic(DatasetSource):
    """10 classes of generated images (see the module docstring)."""

    Settings = SyntheticSettings
    class_names = [f"pattern_{i}" for i in range(10)]
    max_value = 1.0

    @classmethod
    def arrays(cls, settings: SyntheticSettings) -> Arrays:
        rng = np.random.default_rng(settings.generator_seed)
        block = settings.size // 4
        coarse = rng.uniform(size=(10, 4, 4, settings.channels))
        patterns = coarse.repeat(block, axis=1).repeat(block, axis=2)
        y = np.arange(settings.images) % 10
        x = patterns[y] + rng.normal(0, settings.noise, size=(len(y), *patterns.shape[1:]))
        return Arrays(np.clip(x, 0, 1).astype("float32"), y.astype("int64"))
