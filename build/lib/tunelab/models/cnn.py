"""Convolutional classifier: conv blocks with optional batch norm, as in the CIFAR-10 CNN study."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunelab.backend import keras
from tunelab.data.base import DataSpec
from tunelab.models.common import (
    ModelBuilder,
    TrainHParams,
    compile_classifier,
    inputs,
    regularizer,
)
from tunelab.schema import ConfigError
from tunelab.tasks.classification import Classification

MAX_BLOCKS = 5


@dataclass
class CNNHParams(TrainHParams):
    blocks: int = 3  # conv blocks, each conv → (batch norm) → relu → max-pool
    filters: int = 32  # filters of block i without its own filters_<i> double each block
    filters_1: int | None = None
    filters_2: int | None = None
    filters_3: int | None = None
    filters_4: int | None = None
    filters_5: int | None = None
    kernel_size: int = 3
    batch_norm: bool = True
    dropout: float = 0.25  # after every block and before the output
    dense_units: int = 64
    l2: float = 0.0
    augment: bool = False  # train on batches randomly transformed by the dataset's augmentation
    resolution: int | None = None  # square side to resize to in the model; wins over dataset.resize

    def check(self, path: str) -> None:
        super().check(path)
        if not 1 <= self.blocks <= MAX_BLOCKS:
            raise ConfigError(f"{path}.blocks: must be 1..{MAX_BLOCKS}, got {self.blocks}")
        if self.resolution is not None and self.resolution < 8:
            raise ConfigError(f"{path}.resolution: must be >= 8 pixels, got {self.resolution}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"{path}.dropout: must be in [0, 1), got {self.dropout}")

    def block_filters(self) -> list[int]:
        return [
            getattr(self, f"filters_{i}") or self.filters * 2 ** (i - 1)
            for i in range(1, self.blocks + 1)
        ]


class CNN(ModelBuilder):
    """`blocks` × (Conv2D, BN, ReLU, MaxPool, Dropout) → Dense → softmax."""

    HParams = CNNHParams
    task = Classification

    @staticmethod
    def build(hp: CNNHParams, spec: DataSpec) -> Any:
        inp, x = inputs(spec, hp.resolution)
        out = keras().layers.Dense(spec.n_classes, activation="softmax", name="output")(
            conv_features(x, hp)
        )
        return compile_classifier(keras().Model(inp, out, name="cnn"), hp)


def conv_features(x: Any, hp: CNNHParams, condition: Any = None) -> Any:
    """The CNN up to its last hidden layer. `condition` (batch, d), if given, is projected and
    added to every block's feature maps before its activation (a timestep embedding)."""
    layers = keras().layers
    for i, filters in enumerate(hp.block_filters(), start=1):
        x = layers.Conv2D(
            filters, hp.kernel_size, padding="same", use_bias=not hp.batch_norm,
            kernel_regularizer=regularizer(0.0, hp.l2), name=f"conv_{i}",
        )(x)  # fmt: skip
        if hp.batch_norm:
            x = layers.BatchNormalization()(x)
        if condition is not None:
            shift = layers.Dense(filters, name=f"condition_{i}")(condition)
            x = x + layers.Reshape((1, 1, filters))(shift)
        x = layers.Activation("relu")(x)
        if x.shape[1] >= 2:
            x = layers.MaxPooling2D()(x)
        if hp.dropout:
            x = layers.Dropout(hp.dropout)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(hp.dense_units, activation="relu", name="dense")(x)
    return layers.Dropout(hp.dropout)(x) if hp.dropout else x
