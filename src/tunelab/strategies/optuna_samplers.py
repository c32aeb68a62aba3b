"""Optuna samplers that need a word from tunelab before they start: a check of the space or of
an optional package, or the seed every worker of a study shares. Each is a `_target_` of a
strategy YAML (`conf/strategy/cmaes.yaml`, `optuna_gp.yaml`, `qmc.yaml`)."""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

from tunelab.schema import ConfigError
from tunelab.space import SearchSpace


def cma_es(space: SearchSpace, seed: int, n_startup_trials: int) -> Any:
    """Optuna's CMA-ES over two or more float / int ranges (log ranges on the log scale)."""
    import optuna

    space.require_ranges("CmaEs")
    if len(space.params) < 2:  # with one, Optuna falls back to random sampling
        raise ConfigError(
            f"model.tune: CmaEs needs at least 2 ranges to tune, got {len(space.params)}"
        )
    return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=n_startup_trials)


def gaussian_process(seed: int, n_startup_trials: int) -> Any:
    """Optuna's `GPSampler` (log expected improvement), which needs PyTorch."""
    if importlib.util.find_spec("torch") is None:
        raise ConfigError(
            "strategy=optuna_gp: Optuna's GPSampler needs PyTorch: pip install -e '.[gp]' "
            "(docs: how-to/run-studies.md, Optuna's samplers); strategy=gp_ei and "
            "strategy=keras_bayesian are Gaussian-process strategies without it"
        )
    import optuna

    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup_trials)


def scrambled_sobol(seed: int, study_seed: int) -> Any:
    """Optuna's quasi-Monte Carlo sampler on scrambled Sobol points. Every worker scrambles
    with `study_seed`: one Sobol sequence, whose points Optuna hands out by number across
    processes. `seed` draws what Sobol does not (a first trial, choices), at random."""
    import optuna

    with warnings.catch_warnings():  # "QMCSampler is experimental" (since Optuna 3.0)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.QMCSampler(
            qmc_type="sobol",
            scramble=True,
            seed=study_seed,
            independent_sampler=optuna.samplers.RandomSampler(seed=seed),
            warn_independent_sampling=False,
        )
