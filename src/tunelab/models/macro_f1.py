"""Macro-averaged F1 as a streaming Keras metric, so validation yields `val_macro_f1` in the same
pass as `val_accuracy` (imported when a model is built: it needs Keras)."""

from __future__ import annotations

from typing import Any

from tunelab.backend import keras

ops = keras().ops


@keras().saving.register_keras_serializable(package="tunelab")
class MacroF1(keras().metrics.Metric):  # type: ignore[misc]  # a base from the lazy import
    """scikit-learn's `f1_score(average="macro")` for sparse labels: the mean F1 over the classes
    that occur among the labels or the predictions, from a confusion matrix summed over batches."""

    def __init__(self, n_classes: int, name: str = "macro_f1", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.n_classes = n_classes
        self.confusion = self.add_variable(
            shape=(n_classes, n_classes), initializer="zeros", dtype="float32", name="confusion"
        )

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        labels = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), self.n_classes)
        predicted = ops.one_hot(ops.argmax(y_pred, axis=-1), self.n_classes)
        self.confusion.assign_add(ops.matmul(ops.transpose(labels), predicted))

    def result(self) -> Any:
        hits = ops.diagonal(self.confusion)
        denominator = ops.sum(self.confusion, axis=0) + ops.sum(self.confusion, axis=1)
        present = ops.cast(denominator > 0, "float32")
        f1 = 2 * hits / ops.maximum(denominator, 1.0)
        return ops.sum(f1 * present) / ops.maximum(ops.sum(present), 1.0)

    def reset_state(self) -> None:
        self.confusion.assign(ops.zeros((self.n_classes, self.n_classes)))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_classes": self.n_classes}
