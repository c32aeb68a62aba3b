"""How one trial runs: seed, build, (warm-start), fit with per-epoch hooks.

What `fit` is fed and what an epoch adds come from the model's task (`tunelab.tasks`), so this
loop is the same for every model family. Importing this module imports TensorFlow; the runner
does so only after the config is valid.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.backend import keras
from tunelab.config import ModelConfig
from tunelab.objective import Objective
from tunelab.seeding import seed_everything
from tunelab.tasks.base import Task
from tunelab.weights import load_weights, weight_snapshot

# (epoch, metrics, images) -> stop (prune) now?
EpochHook = Callable[[int, dict[str, float], dict[str, np.ndarray]], bool]


@dataclass
class Fit:
    """A trained model and what happened while training it."""

    model: Any
    history: list[dict[str, float]]  # one entry per epoch run, with its "epoch" index
    stop_reason: str  # "completed", "early_stopping", "pruned" or "nan"
    weights_before: dict[str, np.ndarray] = field(repr=False)


def fit(
    model_cfg: ModelConfig,
    hp: Any,
    task: Task,
    *,
    epochs: int,
    initial_epoch: int,
    seed: int,
    objective: Objective,
    on_epoch: EpochHook,
    warm_start: Path | None = None,
) -> Fit:
    """Train a fresh model built from `hp` from `initial_epoch` up to `epochs`."""
    seed_everything(seed)
    model = model_cfg.cls.build(hp, task.data.spec)
    if warm_start is not None:  # the weights carry over; the optimizer starts afresh
        load_weights(model, warm_start)
    before = weight_snapshot(model)
    tracker = _EpochTracker(on_epoch, task, epochs)
    callbacks: list[Any] = [tracker, *task.callbacks(hp)]
    patience = model_cfg.training.early_stopping_patience
    stopper = None
    if patience:
        stopper = keras().callbacks.EarlyStopping(
            monitor=objective.name, mode=objective.direction, patience=patience
        )
        callbacks.append(stopper)
    with _forgetting_custom_gradients():
        model_cfg.cls.fit(
            hp,
            model,
            **{"verbose": 0, **task.fit_inputs(hp, seed)},  # a verbose= given to tune wins
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
        )
    reason = tracker.stop_reason or ("early_stopping" if stopper and stopper.stopped_epoch else "")
    return Fit(model, tracker.history, reason or "completed", before)


@contextmanager
def _forgetting_custom_gradients() -> Iterator[None]:
    """Drop the gradient functions TensorFlow registered while a model trained.

    Tracing a train step registers a `CustomGradient-<n>` function in TensorFlow's global
    gradient registry (Keras' optimizer sums gradients through `tf.custom_gradient`) and never
    removes it, so every trial's traced graphs stayed alive for the rest of the study
    (tensorflow/tensorflow#97697), thousands of objects and megabytes per trial. They are only
    needed while the step is traced, which happens inside `fit`.
    """
    try:
        from tensorflow.python.framework import ops

        registered: dict[str, Any] = ops._gradient_registry._registry
    except (ImportError, AttributeError):  # another TensorFlow layout: nothing to clean
        yield
        return
    before = set(registered)
    try:
        yield
    finally:
        for name in set(registered) - before:
            if name.startswith("CustomGradient-"):
                registered.pop(name, None)


class _EpochTracker(keras().callbacks.Callback):  # type: ignore[misc]  # a base from the lazy import
    """Adds epoch_time and the task's end-of-epoch metrics to Keras' logs, stops a trial whose
    loss is not finite, then asks the hook whether to stop."""

    def __init__(self, on_epoch: EpochHook, task: Task, epochs: int) -> None:
        super().__init__()
        self.on_epoch = on_epoch
        self.task = task
        self.last_epoch = epochs - 1
        self.history: list[dict[str, float]] = []
        self.stop_reason = ""
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        logs["epoch_time"] = time.perf_counter() - self._started  # Keras' own epoch, validation in
        metrics = {k: float(v) for k, v in logs.items()}
        if not all(math.isfinite(metrics.get(k, 0.0)) for k in self.task.loss_metrics):
            self.history.append({"epoch": epoch, **metrics})
            self.stop_reason = "nan"
            self.model.stop_training = True
            return
        extras = self.task.end_of_epoch(self.model, epoch, last=epoch == self.last_epoch)
        logs.update(extras.metrics)  # later callbacks (early stopping) see them too
        metrics.update(extras.metrics)
        self.history.append({"epoch": epoch, **metrics})
        if self.on_epoch(epoch, metrics, extras.images):
            self.stop_reason = "pruned"
            self.model.stop_training = True
