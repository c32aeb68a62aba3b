"""Optuna's quasi-Monte Carlo sampler: scrambled Sobol points, spread more evenly than random."""

from __future__ import annotations

import warnings
from typing import Any

from tunelab.strategies.optuna_base import OptunaStrategy


class QMC(OptunaStrategy):
    """Scrambled Sobol points over the ranges (choices drawn at random), e.g.::

    python -m tunelab strategy=qmc strategy.n_trials=16
    """

    def make_sampler(self, optuna: Any, seed: int) -> Any:
        """Every worker scrambles with the study seed: one Sobol sequence, whose points Optuna
        hands out by number across processes. `seed` draws a first trial, which is random."""
        with warnings.catch_warnings():  # "QMCSampler is experimental" (since Optuna 3.0)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(
                qmc_type="sobol",
                scramble=True,
                seed=self.study_seed,
                independent_sampler=optuna.samplers.RandomSampler(seed=seed),
                warn_independent_sampling=False,
            )
