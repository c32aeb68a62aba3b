"""Fréchet distance between Gaussians fitted to two feature sets (FID, Heusel et al. 2017).

    d² = ‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr √(Σ₁Σ₂)

The trace of the matrix square root is computed as TF-GAN does, from symmetric eigenproblems:
Tr √(Σ₁Σ₂) = Σᵢ √λᵢ(A Σ₂ A) with A = √Σ₁, negative eigenvalues (round-off) clipped to 0.
`scipy.linalg.sqrtm` is not used: SciPy 1.11.2–1.12 return huge imaginary parts for these
products (pytorch-fid#103, scipy#19415), and its `disp` argument is gone in SciPy 1.18.
"""

from __future__ import annotations

import numpy as np

from tunelab.metrics.base import Score


def symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """√M of a symmetric positive semi-definite matrix (eigenvalues below 0 taken as 0)."""
    eigenvalues, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr √(Σ₁Σ₂) for covariance matrices Σ₁, Σ₂."""
    root = symmetric_sqrt(sigma1)
    product = root @ sigma2 @ root
    eigenvalues = np.linalg.eigvalsh((product + product.T) / 2)
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Squared Fréchet distance between N(μ₁, Σ₁) and N(μ₂, Σ₂), in float64."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    diff = mu1 - mu2
    return float(
        diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    )


def moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of (N, d) features, in float64."""
    x = np.asarray(features, np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def fid(real: np.ndarray, generated: np.ndarray) -> Score:
    """FID between two (N, d) feature arrays. With N ≤ d on either side the covariance is
    singular and the distance meaningless: NaN with the reason, never an exception."""
    n = min(len(real), len(generated))
    d = real.shape[1]
    if n <= d:
        return Score(
            float("nan"),
            n=n,
            reason=f"FID needs more samples than feature dimensions (N = {n}, d = {d})",
        )
    if not (np.isfinite(real).all() and np.isfinite(generated).all()):
        return Score(float("nan"), n=n, reason="features are not finite")
    return Score(frechet_distance(*moments(real), *moments(generated)), n=n)
