"""DCGAN (Radford et al. 2016) in the reference study's architecture (TensorFlow's DCGAN tutorial).

Generator: Dense(s·s·256, no bias) → (batch norm) → activation → reshape → Conv2DTranspose 128
(stride 1) → 64 (stride 2) → C channels (stride 2, tanh), so s = image side / 4 (7 for MNIST).
Discriminator: Conv2D 64 → 128 (stride 2), LeakyReLU, dropout → Dense(1), a logit.
`width` scales every layer's filters and units (a fixed hyperparameter, 1.0 = the reference).

Label convention: the discriminator's logit is high for "real" (label 1) and low for generated
images (label 0); its accuracy counts a real image right when the logit is > 0 and a generated
one when it is < 0. Images are in [−1, 1] for this model (the task scales them).

Both networks live in one `keras.Model` with its own `train_step`, so `fit` drives it under
every strategy: Hyperband's epochs are GAN epochs, and a warm start restores both networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tunelab.backend import keras
from tunelab.data.base import DataSpec
from tunelab.models.common import ModelBuilder
from tunelab.schema import ConfigError
from tunelab.tasks.generation import Generation


@dataclass
class DCGANHParams:
    latent_dim: int = 100
    width: float = 1.0  # multiplies the filters and units of both networks
    dropout_rate: float = 0.3  # the discriminator's, after each conv block
    batch_normalization: bool = True  # the generator's, after its dense and conv layers
    activation: Literal["relu", "leaky_relu", "sigmoid", "softmax"] = "leaky_relu"  # generator
    g_lr: float = 1e-4  # Adam, generator
    d_lr: float = 1e-4  # Adam, discriminator
    beta_1: float = 0.9  # Adam's β₁ for both (Keras' default; DCGAN's paper used 0.5)
    batch_size: int = 128

    def check(self, path: str) -> None:
        if not 0 <= self.dropout_rate < 1:
            raise ConfigError(f"{path}.dropout_rate: must be in [0, 1), got {self.dropout_rate}")
        if self.width <= 0 or self.latent_dim < 1 or self.batch_size < 1:
            raise ConfigError(f"{path}: width, latent_dim and batch_size must be positive")
        if min(self.g_lr, self.d_lr) <= 0 or not 0 <= self.beta_1 < 1:
            raise ConfigError(f"{path}: g_lr and d_lr must be positive, beta_1 in [0, 1)")


def _units(base: int, width: float) -> int:
    return max(1, round(base * width))


def generator(hp: DCGANHParams, spec: DataSpec) -> Any:
    layers = keras().layers
    height, width_px, channels = spec.input_shape
    if height % 4 or width_px % 4:
        raise ValueError(f"dcgan: image sides must be multiples of 4, got {height}x{width_px}")
    side = (height // 4, width_px // 4)
    z = keras().Input(shape=(hp.latent_dim,))
    filters = _units(256, hp.width)
    x = layers.Dense(side[0] * side[1] * filters, use_bias=False)(z)
    x = _normalise_and_activate(x, hp)
    x = layers.Reshape((*side, filters))(x)
    for base, stride in ((128, 1), (64, 2)):
        x = layers.Conv2DTranspose(
            _units(base, hp.width), 5, strides=stride, padding="same", use_bias=False
        )(x)
        x = _normalise_and_activate(x, hp)
    out = layers.Conv2DTranspose(
        channels, 5, strides=2, padding="same", use_bias=False, activation="tanh"
    )(x)
    return keras().Model(z, out, name="generator")


def _normalise_and_activate(x: Any, hp: DCGANHParams) -> Any:
    layers = keras().layers
    if hp.batch_normalization:
        x = layers.BatchNormalization()(x)
    if hp.activation == "leaky_relu":
        return layers.LeakyReLU(negative_slope=0.3)(x)
    return layers.Activation(hp.activation)(x)


def discriminator(hp: DCGANHParams, spec: DataSpec) -> Any:
    layers = keras().layers
    image = keras().Input(shape=spec.input_shape)
    x = image
    for base in (64, 128):
        x = layers.Conv2D(_units(base, hp.width), 5, strides=2, padding="same")(x)
        x = layers.LeakyReLU(negative_slope=0.3)(x)
        x = layers.Dropout(hp.dropout_rate)(x)
    logit = layers.Dense(1)(layers.Flatten()(x))
    return keras().Model(image, logit, name="discriminator")


class DCGAN(ModelBuilder):
    """The GAN of the reference study, compiled with one Adam optimizer per network."""

    HParams = DCGANHParams
    task = Generation

    @staticmethod
    def build(hp: DCGANHParams, spec: DataSpec) -> Any:
        from tunelab.models.gan import GAN  # a keras.Model subclass: imports TensorFlow

        gan = GAN(generator(hp, spec), discriminator(hp, spec), hp.latent_dim, name="dcgan")
        adam = keras().optimizers.Adam
        gan.compile(
            g_optimizer=adam(hp.g_lr, beta_1=hp.beta_1), d_optimizer=adam(hp.d_lr, beta_1=hp.beta_1)
        )
        return gan
