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
# Batch norm's moving averages, which the model evaluates and serves with, span about a sixth
# of an epoch: momentum 1 - 6 / steps per epoch, within [0.9, 0.99]. That is Keras' default 0.99
# on the full CIFAR-10 at batch 64 (625 steps per epoch) and 0.9 on 3,660 images (58 steps),
# where 0.99 averages over almost two epochs of weights that have since moved on.
AVERAGES_PER_EPOCH = 6


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
    batch_norm_momentum: float | None = None  # None: by the steps per epoch
    dropout: float = 0.25  # before the output, and after every block without batch norm
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
        momentum = self.batch_norm_momentum
        if momentum is not None and not 0 < momentum < 1:
            raise ConfigError(f"{path}.batch_norm_momentum: must be in (0, 1), got {momentum}")

    def momentum_for(self, spec: DataSpec) -> float:
        """Batch norm's momentum: as set, else 1 - `AVERAGES_PER_EPOCH` / steps per epoch within
        [0.9, 0.99] (0.99 when the training set's size is not known)."""
        if self.batch_norm_momentum is not None:
            return self.batch_norm_momentum
        if not spec.n_train:
            return 0.99
        steps = -(-spec.n_train // self.batch_size) if self.batch_size else 1
        return min(0.99, max(0.9, 1 - AVERAGES_PER_EPOCH / steps))

    def block_filters(self) -> list[int]:
        return [
            getattr(self, f"filters_{i}") or self.filters * 2 ** (i - 1)
            for i in range(1, self.blocks + 1)
        ]


class CNN(ModelBuilder):
    """`blocks` × (Conv2D, BN, ReLU, MaxPool) → Dense → Dropout → softmax; without batch norm,
    each block ends with dropout too."""

    HParams = CNNHParams
    task = Classification

    @staticmethod
    def build(hp: CNNHParams, spec: DataSpec) -> Any:
        inp, x = inputs(spec, hp.resolution)
        out = keras().layers.Dense(spec.n_classes, activation="softmax", name="output")(
            conv_features(x, hp, momentum=hp.momentum_for(spec))
        )
        return compile_classifier(keras().Model(inp, out, name="cnn"), hp)


def conv_features(x: Any, hp: CNNHParams, momentum: float, condition: Any = None) -> Any:
    """The CNN up to its last hidden layer. `condition` (batch, d), if given, is projected and
    added to every block's feature maps before its activation (a timestep embedding);
    `momentum` is batch norm's."""
    layers = keras().layers
    for i, filters in enumerate(hp.block_filters(), start=1):
        x = layers.Conv2D(
            filters,
            hp.kernel_size,
            padding="same",
            use_bias=not hp.batch_norm,
            kernel_regularizer=regularizer(0.0, hp.l2),
            name=f"conv_{i}",
        )(x)
        if hp.batch_norm:
            x = layers.BatchNormalization(momentum=momentum)(x)
        if condition is not None:
            shift = layers.Dense(filters, name=f"condition_{i}")(condition)
            x = x + layers.Reshape((1, 1, filters))(shift)
        x = layers.Activation("relu")(x)
        if x.shape[1] >= 2:
            x = layers.MaxPooling2D()(x)
        if hp.dropout and not hp.batch_norm:  # ahead of the next block's batch norm, dropout
            x = layers.Dropout(hp.dropout)(x)  # would shift its variance at inference
    x = layers.Flatten()(x)
    x = layers.Dense(hp.dense_units, activation="relu", name="dense")(x)
    return layers.Dropout(hp.dropout)(x) if hp.dropout else x
