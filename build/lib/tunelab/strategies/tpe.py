"""Optuna's tree-structured Parzen estimator."""

from __future__ import annotations

from typing import Any

from tunelab.strategies.optuna_base import OptunaStrategy


class TPE(OptunaStrategy):
    """Random trials first (`n_startup_trials`), then TPE, e.g.::

    python -m tunelab strategy=tpe strategy.n_trials=30 strategy.pruner=hyperband
    """

    def make_sampler(self, optuna: Any, seed: int) -> Any:
        startup = self.settings.n_startup_trials
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
