"""Classification: images in, class probabilities out (the MLP and the CNN)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from tunelab.logged import EpochExtras, Evaluation, TrialArtifacts
from tunelab.tasks.base import Direction, Task


class Classification(Task):
    """Cross-entropy training on integer labels, validated every epoch; evaluated on the test
    split by accuracy, macro-F1, per-class F1 and a confusion matrix; served as the network
    itself (images in [0, 1] -> class probabilities)."""

    objectives: ClassVar[dict[str, Direction]] = {
        "val_accuracy": "max",
        "val_macro_f1": "max",
        "val_loss": "min",
        "accuracy": "max",
        "loss": "min",
    }
    curves: ClassVar[dict[str, list[str]]] = {
        "loss": ["loss", "val_loss"],
        "accuracy": ["accuracy", "val_accuracy"],
    }

    def fit_inputs(self, hp: Any, seed: int) -> dict[str, Any]:
        data = self.data
        batch_size = hp.batch_size or len(data.y_train)  # 0 = full batch
        validation = {"validation_data": (data.x_val, data.y_val)}
        augmented = isinstance(hp, Augmentable) and hp.augment
        transform = data.spec.augmentation.transform() if augmented else None
        if transform is None:
            return {
                "x": data.x_train,
                "y": data.y_train,
                "batch_size": batch_size,
                "shuffle": True,
                **validation,
            }
        return {
            "x": self._augmented_batches(batch_size, transform, seed),
            "shuffle": False,
            **validation,
        }

    def _augmented_batches(self, batch_size: int, transform: Any, seed: int) -> Any:
        """Shuffled training batches, each randomly transformed anew every epoch."""
        import tensorflow as tf

        data = self.data
        return (
            tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
            .shuffle(len(data.y_train), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size)
            .map(lambda x, y: (transform(x, training=True), y))
            .prefetch(tf.data.AUTOTUNE)
        )

    def callbacks(self, hp: Any) -> list[Any]:
        from tunelab.backend import keras

        if not (isinstance(hp, SteppedLearningRate) and hp.lr_step_every):
            return []
        return [keras().callbacks.LearningRateScheduler(_step_schedule(hp))]

    def end_of_epoch(self, model: Any, epoch: int, last: bool) -> EpochExtras:
        from tunelab.backend import keras

        lr = float(keras().ops.convert_to_numpy(model.optimizer.learning_rate))
        return EpochExtras(metrics={"lr": lr})

    def evaluate(self, model: Any, hp: Any) -> Evaluation:
        """Test-set accuracy, macro-F1, per-class F1, the share of the most predicted class (1.0:
        one class predicted), confusion matrix and class report."""
        data = self.data
        return evaluate_classes(data.y_test, predict_classes(model, data.x_test), data.class_names)

    def servable(self, model_cls: Any, hp: Any, weights: Path) -> tuple[Any, np.ndarray]:
        """The network rebuilt from saved weights, uncompiled: serving it needs no loss,
        optimizer or metrics (nor tunelab's MacroF1 class to load it); 5 test images."""
        from tunelab.backend import keras
        from tunelab.weights import load_weights

        compiled = model_cls.build(hp, self.data.spec)
        load_weights(compiled, weights)
        model = keras().Model(compiled.input, compiled.output, name=compiled.name)
        return model, self.data.x_test[:5]


def evaluate_classes(
    truth: np.ndarray, predicted: np.ndarray, class_names: list[str], split: str = "test"
) -> Evaluation:
    """How well `predicted` class indices match `truth` on `split`: accuracy, macro-F1, per-class
    F1, the share of the most predicted class, a confusion matrix and the class report."""
    from sklearn.metrics import classification_report, confusion_matrix

    from tunelab import plots

    labels = list(range(len(class_names)))
    report = classification_report(
        truth,
        predicted,
        labels=labels,
        target_names=class_names,
        output_dict=True,
        zero_division=0,
    )
    confusion = confusion_matrix(truth, predicted, labels=labels)
    accuracy = float(np.mean(predicted == truth))
    macro_f1 = float(report["macro avg"]["f1-score"])
    top_class_share = float(np.bincount(predicted, minlength=len(labels)).max() / len(predicted))
    metrics = {
        f"{split}_accuracy": accuracy,
        f"{split}_macro_f1": macro_f1,
        f"{split}_top_class_share": top_class_share,
    }
    for name in class_names:
        metrics[f"{split}_f1.{name}"] = report[name]["f1-score"]
    return Evaluation(
        metrics=metrics,
        artifacts=TrialArtifacts(
            figures={
                "plots/confusion_matrix.png": (
                    plots.confusion_matrix,
                    {"counts": confusion, "class_names": class_names},
                )
            },
            texts={"tables/confusion_matrix.csv": confusion_csv(confusion, class_names)},
            dicts={"reports/classification_report.json": report},
        ),
        headline={f"{split}_accuracy": accuracy, f"{split}_macro_f1": macro_f1},
    )


def predict_classes(
    model: Any, x: np.ndarray | list[np.ndarray], batch_size: int = 1024
) -> np.ndarray:
    """Class indices of the model's outputs for `x`."""
    from tunelab.backend import predict_in_batches

    return np.argmax(predict_in_batches(model, x, batch_size), axis=1)


def confusion_csv(confusion: np.ndarray, class_names: list[str]) -> str:
    """Raw counts, a row per true class."""
    header = ",".join(["true\\predicted", *class_names])
    rows = [",".join([n, *map(str, r)]) for n, r in zip(class_names, confusion, strict=True)]
    return "\n".join([header, *rows]) + "\n"


@runtime_checkable
class Augmentable(Protocol):
    """Hyperparameters of a model family that may train on augmented batches (the CNN's)."""

    augment: bool


@runtime_checkable
class SteppedLearningRate(Protocol):
    """Hyperparameters of a model family whose learning rate steps down every N epochs."""

    lr: float
    lr_step_every: int  # 0: constant
    lr_step_gamma: float


def _step_schedule(hp: SteppedLearningRate) -> Callable[[int, float], float]:
    def schedule(epoch: int, lr: float) -> float:
        return float(hp.lr * hp.lr_step_gamma ** (epoch // hp.lr_step_every))

    return schedule
