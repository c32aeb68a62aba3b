"""How one trial runs: seed, build, (warm-start), fit with per-epoch hooks, evaluate.

Importing this module imports TensorFlow; the runner does so only after the config is valid.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix

from tunelab.config import ModelConfig, Objective
from tunelab.data import Dataset, DataSpec
from tunelab.models.common import augmenter, keras

EpochHook = Callable[[int, dict[str, float]], bool]  # (epoch, metrics) -> stop (prune) now?
NEAR_ZERO = 1e-3


@dataclass
class Fit:
    """A trained model and what happened while training it."""

    model: Any
    history: list[dict[str, float]]  # one entry per epoch run, with its "epoch" index
    stop_reason: str  # "completed", "early_stopping", "pruned" or "nan"
    weights_before: dict[str, np.ndarray] = field(repr=False)

    def best(self, objective: Objective) -> tuple[float | None, int | None]:
        """Best objective value over the epochs and the epoch it came from."""
        scored = [h for h in self.history if math.isfinite(h.get(objective.name, math.nan))]
        if not scored:
            return None, None
        pick = max if objective.direction == "max" else min
        top = pick(scored, key=lambda h: h[objective.name])
        return top[objective.name], int(top["epoch"])


@dataclass
class Evaluation:
    accuracy: float
    macro_f1: float
    report: dict[str, Any]  # sklearn classification_report(output_dict=True)
    confusion: np.ndarray  # (classes, classes) raw counts, rows = true class


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow's ops deterministic."""
    import tensorflow as tf

    keras().utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def fit(
    model_cfg: ModelConfig,
    hp: Any,
    data: Dataset,
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
    model = model_cfg.cls.build(hp, data.spec)
    if warm_start is not None:  # the weights carry over; the optimizer starts afresh
        load_weights(model, warm_start)
    before = weight_snapshot(model)
    tracker = _EpochTracker(on_epoch)
    callbacks: list[Any] = [tracker]
    if getattr(hp, "lr_step_every", 0):
        callbacks.append(keras().callbacks.LearningRateScheduler(_step_schedule(hp)))
    patience = model_cfg.training.early_stopping_patience
    stopper = None
    if patience:
        stopper = keras().callbacks.EarlyStopping(
            monitor=objective.name, mode=objective.direction, patience=patience
        )
        callbacks.append(stopper)
    batch_size = hp.batch_size or len(data.y_train)  # 0 = full batch
    transform = augmenter(data.spec.augmentation) if getattr(hp, "augment", False) else None
    if transform is None:
        inputs: dict[str, Any] = {"x": data.x_train, "y": data.y_train, "batch_size": batch_size,
                                  "shuffle": True}  # fmt: skip
    else:
        inputs = {"x": _augmented_batches(data, batch_size, transform, seed), "shuffle": False}
    with _forgetting_custom_gradients():
        model.fit(
            **inputs, epochs=epochs, initial_epoch=initial_epoch,
            validation_data=(data.x_val, data.y_val), callbacks=callbacks, verbose=0,
        )  # fmt: skip
    reason = tracker.stop_reason or ("early_stopping" if stopper and stopper.stopped_epoch else "")
    return Fit(model, tracker.history, reason or "completed", before)


@contextmanager
def _forgetting_custom_gradients() -> Iterator[None]:
    """Drop the gradient functions TensorFlow registered while a model trained.

    Tracing a train step registers a `CustomGradient-<n>` function in TensorFlow's global
    gradient registry (Keras' optimizer sums gradients through `tf.custom_gradient`) and never
    removes it, so every trial's traced graphs stayed alive for the rest of the study
    (tensorflow/tensorflow#97697): here +11,700 Python objects and ≈10 MB per trial. They are
    only needed while the step is traced, which happens inside `fit`.
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


def _augmented_batches(data: Dataset, batch_size: int, transform: Any, seed: int) -> Any:
    """Shuffled training batches, each randomly transformed anew every epoch."""
    import tensorflow as tf

    return (
        tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
        .shuffle(len(data.y_train), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(lambda x, y: (transform(x, training=True), y))
        .prefetch(tf.data.AUTOTUNE)
    )


class _EpochTracker(keras().callbacks.Callback):
    """Adds lr and epoch_time to Keras' logs (val_macro_f1 is a compiled metric), then asks the
    hook whether to stop."""

    def __init__(self, on_epoch: EpochHook) -> None:
        super().__init__()
        self.on_epoch = on_epoch
        self.history: list[dict[str, float]] = []
        self.stop_reason = ""
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        logs["epoch_time"] = time.perf_counter() - self._started  # Keras' own epoch, validation in
        logs["lr"] = float(keras().ops.convert_to_numpy(self.model.optimizer.learning_rate))
        metrics = {k: float(v) for k, v in logs.items()}
        self.history.append({"epoch": epoch, **metrics})
        if not math.isfinite(metrics.get("loss", 0.0)):
            self.stop_reason = "nan"
            self.model.stop_training = True
        elif self.on_epoch(epoch, metrics):
            self.stop_reason = "pruned"
            self.model.stop_training = True


def _step_schedule(hp: Any) -> Callable[[int, float], float]:
    def schedule(epoch: int, lr: float) -> float:
        return float(hp.lr * hp.lr_step_gamma ** (epoch // hp.lr_step_every))

    return schedule


def predict_classes(model: Any, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class indices from eager forward passes (no per-model `predict` function to trace)."""
    to_numpy = keras().ops.convert_to_numpy
    batches = [
        to_numpy(model(x[i : i + batch_size], training=False)) for i in range(0, len(x), batch_size)
    ]
    return np.argmax(np.concatenate(batches), axis=1)


def evaluate(model: Any, data: Dataset) -> Evaluation:
    """Test-set accuracy, macro-F1, per-class report and confusion matrix."""
    predicted = predict_classes(model, data.x_test)
    labels = list(range(len(data.class_names)))
    report = classification_report(
        data.y_test, predicted, labels=labels, target_names=data.class_names,
        output_dict=True, zero_division=0,
    )  # fmt: skip
    return Evaluation(
        accuracy=float(np.mean(predicted == data.y_test)),
        macro_f1=float(report["macro avg"]["f1-score"]),
        report=report,
        confusion=confusion_matrix(data.y_test, predicted, labels=labels),
    )


def save_weights(model: Any, path: Path) -> None:
    """The model's weights, not its optimizer's, as an .npz written atomically. Keras'
    `.weights.h5` also stores the optimizer state: 25.5 ms against 4.5 ms here for a
    784-512-512-10 MLP, paid by every Hyperband trial."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as f:
        np.savez(f, *model.get_weights())
    os.replace(partial, path)


def load_weights(model: Any, path: Path) -> None:
    """Weights saved by `save_weights` into a model of the same architecture."""
    with np.load(path) as saved:
        model.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])


def trained_model(model_cfg: ModelConfig, hp: Any, spec: DataSpec, weights: Path) -> Any:
    """A model rebuilt from `save_weights`, uncompiled: serving it needs no loss, optimizer or
    metrics (nor tunelab's MacroF1 class to load it)."""
    compiled = model_cfg.cls.build(hp, spec)
    load_weights(compiled, weights)
    return keras().Model(compiled.input, compiled.output, name=compiled.name)


def weight_snapshot(model: Any) -> dict[str, np.ndarray]:
    """Every layer's trainable weights, flattened into one array per layer."""
    snapshot = {}
    for layer in model.layers:
        weights = [np.ravel(keras().ops.convert_to_numpy(w)) for w in layer.trainable_weights]
        if weights:
            snapshot[layer.name] = np.concatenate(weights)
    return snapshot


def weight_stats(values: np.ndarray) -> dict[str, float]:
    """Summary of one layer's weights: mean, std, min, max, p1/p50/p99, fraction |w| < 1e-3."""
    ordered = np.sort(values)  # NumPy's vectorised sort, then percentiles of sorted data: 4 ms
    p1, p50, p99 = np.percentile(ordered, [1, 50, 99])  # instead of 8 ms (784 x 512 weights)
    return {
        "mean": float(values.mean()), "std": float(values.std()),
        "min": float(ordered[0]), "max": float(ordered[-1]),
        "p1": float(p1), "p50": float(p50), "p99": float(p99),
        "frac_near_zero": float(np.mean(np.abs(values) < NEAR_ZERO)),
    }  # fmt: skip


def parameter_count(model: Any) -> int:
    return int(model.count_params())
