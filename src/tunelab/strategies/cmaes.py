"""Optuna's CMA-ES sampler: an evolution strategy over continuous ranges."""

from __future__ import annotations

from typing import Any

from tunelab.schema import ConfigError
from tunelab.strategies.optuna_base import OptunaStrategy


class CmaEs(OptunaStrategy):
    """Covariance-matrix adaptation over two or more float / int ranges (log ranges on the log
    scale), after `n_startup_trials` random ones, e.g.::

        python -m tunelab strategy=cmaes model.tune=[lr,dropout,l2]
    """

    def check_space(self) -> None:
        space = self.context.space
        space.require_ranges("CmaEs")
        if len(space.params) < 2:  # with one, Optuna falls back to random sampling
            raise ConfigError(
                f"model.tune: CmaEs needs at least 2 ranges to tune, got {len(space.params)}"
            )

    def make_sampler(self, optuna: Any, seed: int) -> Any:
        return optuna.samplers.CmaEsSampler(
            seed=seed, n_startup_trials=self.settings.n_startup_trials
        )
