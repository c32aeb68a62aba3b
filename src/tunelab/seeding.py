"""Seeds derived from the study seed, so every trial is reproducible on its own."""

from __future__ import annotations

import zlib

import numpy as np


def derive(seed: int, *keys: str | int) -> int:
    """A 31-bit seed from the study seed and any keys (e.g. "trial", 7); never 0."""
    words = [seed & 0xFFFFFFFF] + [zlib.crc32(str(k).encode()) for k in keys]
    return int(np.random.SeedSequence(words).generate_state(1)[0] % (2**31 - 1)) + 1


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow's ops deterministic."""
    import tensorflow as tf

    from tunelab.backend import keras

    keras().utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
