"""Optuna's Gaussian-process sampler (log expected improvement), which needs PyTorch."""

from __future__ import annotations

import importlib.util
from typing import Any

from tunelab.schema import ConfigError
from tunelab.strategies.optuna_base import OptunaStrategy


class GP(OptunaStrategy):
    """Optuna's `GPSampler` after `n_startup_trials` random trials, e.g.::

    python -m tunelab strategy=gp strategy.n_trials=20
    """

    def check_space(self) -> None:
        if importlib.util.find_spec("torch") is None:
            raise ConfigError(
                "strategy=gp: Optuna's GPSampler needs PyTorch: pip install -e '.[gp]' (docs: "
                "how-to/run-studies.md, Optuna's samplers); strategy=gp_ei and strategy=bayesian "
                "are Gaussian-process strategies without it"
            )

    def make_sampler(self, optuna: Any, seed: int) -> Any:
        startup = self.settings.n_startup_trials
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
