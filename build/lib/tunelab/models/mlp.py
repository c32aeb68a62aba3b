"""Fully connected classifier on flattened pixels, as in the MNIST and CIFAR-10 MLP studies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tunelab.backend import keras
from tunelab.data.base import DataSpec
from tunelab.models.common import (
    ModelBuilder,
    TrainHParams,
    compile_classifier,
    initializer,
    inputs,
    regularizer,
)
from tunelab.schema import ConfigError
from tunelab.tasks.classification import Classification

MAX_DEPTH = 5


@dataclass
class MLPHParams(TrainHParams):
    depth: int = 2  # hidden layers; 0 = softmax regression
    units: int = 128  # width of every hidden layer without its own units_<i>
    units_1: int | None = None
    units_2: int | None = None
    units_3: int | None = None
    units_4: int | None = None
    units_5: int | None = None
    widths: list[int] | None = None  # all hidden widths at once, e.g. [256, 128, 64]; wins
    activation: Literal["relu", "tanh", "sigmoid", "elu", "gelu"] = "relu"
    initializer: Literal["glorot_uniform", "he_normal", "he_uniform", "random_normal_mean10"] = (
        "glorot_uniform"
    )
    l1: float = 0.0
    l2: float = 0.0
    dropout: float = 0.0

    def check(self, path: str) -> None:
        super().check(path)
        if self.widths is not None and not all(w > 0 for w in self.widths):
            raise ConfigError(f"{path}.widths: every width must be positive, got {self.widths}")
        if not 0 <= self.depth <= MAX_DEPTH:
            raise ConfigError(f"{path}.depth: must be 0..{MAX_DEPTH}, got {self.depth}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"{path}.dropout: must be in [0, 1), got {self.dropout}")
        if self.l1 < 0 or self.l2 < 0:
            raise ConfigError(f"{path}.l1/l2: must be >= 0 (0 means no penalty)")

    def layer_widths(self) -> list[int]:
        if self.widths is not None:
            return list(self.widths)
        return [getattr(self, f"units_{i}") or self.units for i in range(1, self.depth + 1)]


class MLP(ModelBuilder):
    """Flatten → `depth` × (Dense, dropout) → softmax."""

    HParams = MLPHParams
    task = Classification

    @staticmethod
    def build(hp: MLPHParams, spec: DataSpec) -> Any:
        layers = keras().layers
        inp, x = inputs(spec)
        x = layers.Flatten()(x)
        for i, width in enumerate(hp.layer_widths(), start=1):
            x = layers.Dense(
                width,
                activation=hp.activation,
                kernel_initializer=initializer(hp.initializer),
                kernel_regularizer=regularizer(hp.l1, hp.l2),
                name=f"dense_{i}",
            )(x)
            if hp.dropout:
                x = layers.Dropout(hp.dropout)(x)
        out = layers.Dense(spec.n_classes, activation="softmax", name="output")(x)
        return compile_classifier(keras().Model(inp, out, name="mlp"), hp)
