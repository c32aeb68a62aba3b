"""Inception Score (Salimans et al. 2016) from a classifier's logits:
IS = exp(E_x KL(p(y|x) ‖ p(y))), computed per split, reported as mean ± std over the splits.
It is the number of classes C for confident predictions spread evenly over C classes, and 1
when every prediction is the same."""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, logsumexp

from tunelab.metrics.base import Score


def inception_score(logits: np.ndarray, splits: int = 10) -> Score:
    """IS of (N, C) logits (pre-softmax scores), in float64, over `splits` equal splits."""
    log_p = log_softmax(np.asarray(logits, np.float64), axis=1)
    if not np.isfinite(log_p).all():
        return Score(float("nan"), n=len(log_p), reason="logits are not finite")
    if len(log_p) < splits:
        return Score(
            float("nan"),
            n=len(log_p),
            reason=f"IS needs at least {splits} samples (one per split), got {len(log_p)}",
        )
    scores = []
    for part in np.array_split(log_p, splits):
        log_marginal = logsumexp(part, axis=0) - np.log(len(part))  # log p(y) over the split
        kl = (np.exp(part) * (part - log_marginal)).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return Score(float(np.mean(scores)), std=float(np.std(scores)), n=len(log_p))
