"""Kernel Inception Distance (Bińkowski et al. 2018): the unbiased MMD² between two feature
sets under the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³, averaged over random subsets.
Unlike FID it has no small-sample bias: two samples of one distribution give 0 on average."""

from __future__ import annotations

import numpy as np

from tunelab.metrics.base import Score


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² of two (m, d) samples of the same size m under the cubic kernel."""
    m, d = x.shape
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.mean())


def kid(
    real: np.ndarray, generated: np.ndarray, subsets: int = 100, subset_size: int = 1000,
    seed: int = 0,
) -> Score:  # fmt: skip
    """Mean ± std of the MMD² over `subsets` random subsets of min(`subset_size`, N) per side
    (drawn without replacement within a subset)."""
    x, y = np.asarray(real, np.float64), np.asarray(generated, np.float64)
    m = min(subset_size, len(x), len(y))
    if m < 2:
        return Score(float("nan"), n=m, reason=f"KID needs at least 2 samples per side, got {m}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return Score(float("nan"), n=m, reason="features are not finite")
    if m == len(x) == len(y):  # every subset is the whole of both samples: one is enough
        return Score(polynomial_mmd2(x, y), std=0.0, n=m)
    rng = np.random.default_rng(seed)
    values = [
        polynomial_mmd2(x[rng.choice(len(x), m, replace=False)],
                        y[rng.choice(len(y), m, replace=False)])
        for _ in range(subsets)
    ]  # fmt: skip
    return Score(float(np.mean(values)), std=float(np.std(values)), n=m)
