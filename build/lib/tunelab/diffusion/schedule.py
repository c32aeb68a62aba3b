"""The forward noising process q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I) over T training steps.

ᾱ_t is the product of (1 − β_s) for s ≤ t. `linear` is DDPM's β from 1e-4 to 0.02 (scaled to
T); `cosine` is Nichol & Dhariwal's (2021) ᾱ_t = cos²((t/T + s)/(1 + s) · π/2), β clipped at
0.999. Timesteps are 0-based here: t = 0 is the first noising step, T − 1 the last. NumPy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tunelab.schema import ConfigError

ScheduleKind = Literal["linear", "cosine"]


@dataclass(frozen=True)
class NoiseSchedule:
    kind: ScheduleKind = "cosine"
    steps: int = 1000  # T

    def __post_init__(self) -> None:
        if self.steps < 2:
            raise ConfigError(f"schedule.steps: must be at least 2, got {self.steps}")

    @property
    def betas(self) -> np.ndarray:
        if self.kind == "linear":
            scale = 1000.0 / self.steps
            return np.linspace(scale * 1e-4, scale * 0.02, self.steps)
        s = 0.008
        f = np.cos(((np.arange(self.steps + 1) / self.steps) + s) / (1 + s) * math.pi / 2) ** 2
        return np.clip(1.0 - f[1:] / f[:-1], 0.0, 0.999)

    @property
    def alpha_bar(self) -> np.ndarray:
        """ᾱ_t for t = 0 … T − 1, strictly decreasing inside (0, 1)."""
        return np.cumprod(1.0 - self.betas)

    def noised(self, x0: np.ndarray, t: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, for one timestep per image."""
        a = self.alpha_bar[np.asarray(t)].reshape(-1, *([1] * (x0.ndim - 1)))
        return (np.sqrt(a) * x0 + np.sqrt(1.0 - a) * noise).astype(x0.dtype)

    def sampling_timesteps(self, n: int) -> np.ndarray:
        """The `n` timesteps a DDIM sampler visits, from T − 1 down to 0, evenly spaced."""
        if not 1 <= n <= self.steps:
            raise ConfigError(f"sampling steps: must be 1..{self.steps}, got {n}")
        return np.unique(np.linspace(0, self.steps - 1, n).round().astype(np.int64))[::-1]
