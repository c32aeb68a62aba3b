"""Kernel Inception Distance (Bińkowski et al. 2018): the unbiased MMD² between two feature
sets under the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³, averaged over random subsets.
Unlike FID it has no small-sample bias: two samples of one distribution give 0 on average.

A study scores many generated sets against one reference set, so the reference side is
prepared once (`KIDReference`): its subsets and their within-subset kernel terms are reused
for every set scored. When a subset takes all of the generated set (N ≤ subset size), its
within term is computed once and the cross term comes from one kernel matrix.
"""

from __future__ import annotations

import numpy as np

from tunelab.metrics.base import Score


def cubic_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(aᵀb / d + 1)³ for all pairs of rows of a and b."""
    k = a @ b.T
    k /= a.shape[1]
    k += 1.0
    k *= k * k
    return k


def within(a: np.ndarray) -> float:
    """Mean of k(aᵢ, aⱼ) over pairs i ≠ j."""
    k = cubic_kernel(a, a)
    m = len(a)
    return float((k.sum() - np.trace(k)) / (m * (m - 1)))


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² of two (m, d) samples of the same size m under the cubic kernel."""
    return within(x) + within(y) - 2.0 * float(cubic_kernel(x, y).mean())


class KIDReference:
    """The reference (real) side of KID: `subsets` random subsets of min(`subset_size`, N)
    rows (without replacement within a subset), drawn once from `seed`."""

    def __init__(
        self, real: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
    ) -> None:
        self.x = np.asarray(real, np.float64)
        self.subsets, self.subset_size, self.seed = subsets, subset_size, seed
        self._prepared: dict[int, tuple[list[np.ndarray], list[float]]] = {}

    def _subsets(self, m: int) -> tuple[list[np.ndarray], list[float]]:
        """The reference subsets of size m and their within terms (computed once per m)."""
        if m not in self._prepared:
            n = len(self.x)
            if m == n:  # every subset is all of the reference
                picks, terms = [np.arange(n)] * self.subsets, [within(self.x)] * self.subsets
            else:
                rng = np.random.default_rng(self.seed)
                picks = [rng.choice(n, m, replace=False) for _ in range(self.subsets)]
                terms = [within(self.x[i]) for i in picks]
            self._prepared[m] = picks, terms
        return self._prepared[m]

    def score(self, generated: np.ndarray) -> Score:
        """Mean ± std of the MMD² between the reference subsets and as many random subsets of
        `generated` (all of it when it has no more rows than a subset)."""
        y = np.asarray(generated, np.float64)
        m = min(self.subset_size, len(self.x), len(y))
        if m < 2:
            reason = f"KID needs at least 2 samples per side, got {m}"
            return Score(float("nan"), n=m, reason=reason)
        if not (np.isfinite(self.x).all() and np.isfinite(y).all()):
            return Score(float("nan"), n=m, reason="features are not finite")
        picks, x_within = self._subsets(m)
        if m == len(self.x) == len(y):  # every subset of both sides is all of it: one will do
            picks, x_within = picks[:1], x_within[:1]
        if m == len(y):  # every generated subset is all of y
            y_within = within(y)
            cross_sums = cubic_kernel(self.x, y).sum(axis=1)  # per reference row
            values = [
                w + y_within - 2.0 * cross_sums[i].sum() / (m * m)
                for i, w in zip(picks, x_within, strict=True)
            ]
        else:
            rng = np.random.default_rng(self.seed + 1)
            values = []
            for i, w in zip(picks, x_within, strict=True):
                ys = y[rng.choice(len(y), m, replace=False)]
                values.append(w + within(ys) - 2.0 * float(cubic_kernel(self.x[i], ys).mean()))
        return Score(float(np.mean(values)), std=float(np.std(values)), n=m)


def kid(
    real: np.ndarray,
    generated: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> Score:
    """Mean ± std of the MMD² over `subsets` random subsets of min(`subset_size`, N) per side
    (drawn without replacement within a subset); one subset when both sides have N rows."""
    return KIDReference(real, subsets, subset_size, seed).score(generated)
