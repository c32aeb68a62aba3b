"""The denoiser ε_θ(x_t, t): a compact U-Net with a timestep embedding (Ho et al. 2020, smaller).

One residual block per level (group norm, swish, 3x3 conv; the timestep embedding added between
the two convs), average pooling down, nearest upsampling up, skip connections concatenated.
Timesteps enter through a fixed sinusoidal table (a frozen `Embedding`, so the saved model needs
no custom layer); the noise-aware classifier shares it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tunelab.backend import keras


def sinusoidal_table(steps: int, dim: int) -> np.ndarray:
    """(steps, dim) sinusoidal embeddings of t = 0 … steps − 1 (Vaswani et al. 2017)."""
    half = dim // 2
    frequencies = np.exp(-math.log(10_000.0) * np.arange(half) / max(1, half - 1))
    angles = np.arange(steps)[:, None] * frequencies[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype(np.float32)


def timestep_embedding(t: Any, steps: int, dim: int, name: str) -> Any:
    """Integer timesteps (batch, 1) -> (batch, dim): the fixed table, then a trained MLP."""
    layers = keras().layers
    table = sinusoidal_table(steps, dim)
    x = layers.Embedding(
        steps,
        dim,
        embeddings_initializer=keras().initializers.Constant(table),
        trainable=False,
        name=f"{name}_table",
    )(t)
    x = layers.Flatten()(x)
    x = layers.Dense(dim, activation="swish", name=f"{name}_dense_1")(x)
    return layers.Dense(dim, activation="swish", name=f"{name}_dense_2")(x)


def _groups(channels: int) -> int:
    return math.gcd(channels, 8)


def _res_block(x: Any, channels: int, embedding: Any, name: str) -> Any:
    layers = keras().layers
    skip = x if x.shape[-1] == channels else layers.Conv2D(channels, 1, name=f"{name}_skip")(x)
    h = layers.GroupNormalization(_groups(x.shape[-1]), name=f"{name}_norm_1")(x)
    h = layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv_1")(
        layers.Activation("swish")(h)
    )
    h = h + layers.Reshape((1, 1, channels))(layers.Dense(channels, name=f"{name}_time")(embedding))
    h = layers.GroupNormalization(_groups(channels), name=f"{name}_norm_2")(h)
    h = layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv_2")(
        layers.Activation("swish")(h)
    )
    return layers.Add(name=f"{name}_out")([skip, h])


def unet(input_shape: tuple[int, ...], widths: list[int], steps: int) -> Any:
    """[x_t (batch, H, W, C), t (batch, 1) int] -> predicted noise ε (batch, H, W, C). H and W
    must be multiples of 2^(len(widths) − 1)."""
    layers = keras().layers
    factor = 2 ** (len(widths) - 1)
    if input_shape[0] % factor or input_shape[1] % factor:
        raise ValueError(f"unet: image sides must be multiples of {factor}, got {input_shape}")
    image = keras().Input(shape=input_shape, name="x_t")
    t = keras().Input(shape=(1,), dtype="int32", name="t")
    embedding = timestep_embedding(t, steps, 4 * widths[0], "time")
    x = layers.Conv2D(widths[0], 3, padding="same", name="stem")(image)
    skips = []
    for level, width in enumerate(widths):
        x = _res_block(x, width, embedding, f"down_{level}")
        skips.append(x)
        if level < len(widths) - 1:
            x = layers.AveragePooling2D(2, name=f"pool_{level}")(x)
    x = _res_block(x, widths[-1], embedding, "middle")
    for level in reversed(range(len(widths))):
        if level < len(widths) - 1:
            x = layers.UpSampling2D(name=f"up_{level}")(x)
        x = layers.Concatenate()([x, skips[level]])
        x = _res_block(x, widths[level], embedding, f"up_block_{level}")
    x = layers.Activation("swish")(layers.GroupNormalization(_groups(widths[0]))(x))
    out = layers.Conv2D(
        input_shape[-1], 3, padding="same", kernel_initializer="zeros", name="noise"
    )(x)
    return keras().Model([image, t], out, name="denoiser")
