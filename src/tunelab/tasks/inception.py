"""InceptionV3 pool features for the usual FID, from a local weights file only.

Keras downloads its ImageNet weights at run time, which this project never relies on; a user
with the no-top weights file (`inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`) on
disk names it in `model.task.inception_weights`. Images are fed as the network expects:
grey images repeated to 3 channels, resized to 299 × 299, pixel values x/127.5 − 1 (from
[0, 1]: 2x − 1). Features have 2,048 dimensions, so FID needs more than 2,048 images a side.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SIDE = 299
FEATURE_DIM = 2048


def inception_inputs(images: np.ndarray) -> Any:
    """(N, H, W, C) images in [0, 1] -> (N, 299, 299, 3) in [-1, 1], as InceptionV3 expects."""
    import tensorflow as tf

    x = tf.convert_to_tensor(images, tf.float32)
    if x.shape[-1] == 1:
        x = tf.repeat(x, 3, axis=-1)
    x = tf.image.resize(x, (SIDE, SIDE), method="bilinear")
    return x * 2.0 - 1.0


class InceptionFeatures:
    """Average-pooled InceptionV3 features of images in [0, 1]."""

    def __init__(self, weights: str) -> None:
        from tunelab.backend import keras

        self.model = keras().applications.InceptionV3(
            include_top=False, weights=weights, pooling="avg", input_shape=(SIDE, SIDE, 3)
        )

    def features(self, images: np.ndarray, batch: int = 50) -> np.ndarray:
        from tunelab.backend import keras

        to_numpy = keras().ops.convert_to_numpy
        parts = [
            to_numpy(self.model(inception_inputs(images[i : i + batch]), training=False))
            for i in range(0, len(images), batch)
        ]
        return np.concatenate(parts).astype(np.float64)
