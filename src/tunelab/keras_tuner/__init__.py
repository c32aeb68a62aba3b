"""KerasTuner with every trial tracked in MLflow: change one import line.

    import tunelab.keras_tuner as keras_tuner   # was: import keras_tuner

`RandomSearch`, `Hyperband`, `BayesianOptimization` and `GridSearch` take KerasTuner's
arguments and methods (`search`, `results_summary`, `get_best_models`, ...) and run a tunelab
study; `Tuner(build_model, strategy="tpe")` runs any of tunelab's strategies. Everything else
(`HyperModel`, `HyperParameters`, `Objective`, `errors`, ...) is KerasTuner's own.
"""

from __future__ import annotations

import importlib
from typing import Any

from keras_tuner import HyperModel, HyperParameters, Objective

from tunelab.keras_tuner import tuners
from tunelab.keras_tuner.tuners import (
    BayesianOptimization,
    GridSearch,
    Hyperband,
    RandomSearch,
    Tuner,
)


def __getattr__(name: str) -> Any:
    """KerasTuner's own names (`errors`, `oracles`, `applications`, ...)."""
    return getattr(importlib.import_module("keras_tuner"), name)


__all__ = [
    "BayesianOptimization",
    "GridSearch",
    "HyperModel",
    "HyperParameters",
    "Hyperband",
    "Objective",
    "RandomSearch",
    "Tuner",
    "tuners",
]
