"""Deterministic DDIM sampling (Song et al. 2021, η = 0), optionally classifier-guided.

Guidance in DDIM form (Dhariwal & Nichol 2021, eq. 14): ε̂ = ε_θ(x_t, t) − w·√(1 − ᾱ_t)·
∇ₓ log p_φ(y | x_t, t). Before and after guidance ε is made consistent with the x̂_0 it
predicts, clipped to [−1, 1]: at the first steps ᾱ_t is near 0 (2e-9 at t = T − 1 under the
cosine schedule) and x̂_0 moves by w(1 − ᾱ_t)/√ᾱ_t · ∇, so an unclipped guided x̂_0 throws x_t
far out of what the denoiser has seen. The last step returns x̂_0. With w = 0 the classifier
is never called, so sampling is the unguided sampler's, bit for bit. Starting noise comes from
a NumPy generator seeded by `seed`, drawn for all images at once: the same seed gives the same
images bit for bit, and the same starting noise whatever the batch size. Importing this module
imports TensorFlow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from tunelab.diffusion.schedule import NoiseSchedule


class DDIMSampler:
    def __init__(
        self, denoiser: Any, schedule: NoiseSchedule, steps: int, classifier: Any = None
    ) -> None:
        self.denoiser = denoiser
        self.classifier = classifier  # [x_t, t] -> logits, for guidance
        self.timesteps = schedule.sampling_timesteps(steps)
        alpha_bar = schedule.alpha_bar.astype(np.float32)
        following = [*alpha_bar[self.timesteps[1:]], np.float32(1.0)]  # ᾱ of the next step
        self.steps = [
            (tf.constant(t, tf.int32), tf.constant(alpha_bar[t]), tf.constant(a_prev))
            for t, a_prev in zip(self.timesteps, following, strict=True)
        ]
        self._unguided = tf.function(self._step, reduce_retracing=True)
        self._guided = tf.function(self._guided_step, reduce_retracing=True)

    def noise(self, n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
        return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)

    def sample(
        self,
        n: int,
        shape: tuple[int, ...],
        seed: int,
        classes: np.ndarray | None = None,
        weight: float = 0.0,
        batch: int = 250,
    ) -> np.ndarray:
        """`n` images (n, *shape) in [−1, 1]; guided towards `classes` (n,) when `weight` > 0."""
        x_start = self.noise(n, shape, seed)
        out = []
        for i in range(0, n, batch):
            y = None if classes is None else classes[i : i + batch]
            *_, (_, x) = self._steps(x_start[i : i + batch], y, weight)
            out.append(x.numpy())
        return np.concatenate(out)

    def trajectory(
        self,
        n: int,
        shape: tuple[int, ...],
        seed: int,
        classes: np.ndarray | None,
        weight: float,
        keep: set[int],
    ) -> list[tuple[int, np.ndarray]]:
        """(k, x after k steps) for every k in `keep`, of one batch of `n` images."""
        states = self._steps(self.noise(n, shape, seed), classes, weight)
        return [(k, x.numpy()) for k, x in states if k in keep]

    def _steps(self, x: np.ndarray, classes: np.ndarray | None, weight: float) -> Any:
        """Yield (k, x after k steps) for k = 1 … steps."""
        if weight and (self.classifier is None or classes is None):
            raise ValueError("guidance needs a classifier and the requested classes")
        x = tf.constant(x)
        y = None if classes is None else tf.constant(classes, tf.int32)
        w = tf.constant(weight, tf.float32)
        for k, (t, a_t, a_prev) in enumerate(self.steps, start=1):
            x = (
                self._guided(x, t, a_t, a_prev, y, w)
                if weight
                else self._unguided(x, t, a_t, a_prev)
            )
            yield k, tf.clip_by_value(x, -1.0, 1.0) if k == len(self.steps) else x

    def _timesteps(self, x: Any, t: Any) -> Any:
        return tf.fill([tf.shape(x)[0], 1], t)

    def _step(self, x: Any, t: Any, a_t: Any, a_prev: Any) -> Any:
        eps = self.denoiser([x, self._timesteps(x, t)], training=False)
        return _update(x, _consistent(x, eps, a_t), a_t, a_prev)

    def _guided_step(self, x: Any, t: Any, a_t: Any, a_prev: Any, y: Any, weight: Any) -> Any:
        ts = self._timesteps(x, t)
        eps = _consistent(x, self.denoiser([x, ts], training=False), a_t)
        eps = eps - weight * tf.sqrt(1.0 - a_t) * class_log_prob_gradient(self.classifier, x, ts, y)
        return _update(x, _consistent(x, eps, a_t), a_t, a_prev)


def _consistent(x: Any, eps: Any, a_t: Any) -> Any:
    """ε made consistent with the x̂_0 it predicts clipped to [−1, 1]."""
    x0 = tf.clip_by_value((x - tf.sqrt(1.0 - a_t) * eps) / tf.sqrt(a_t), -1.0, 1.0)
    return (x - tf.sqrt(a_t) * x0) / tf.sqrt(1.0 - a_t)


def _update(x: Any, eps: Any, a_t: Any, a_prev: Any) -> Any:
    """The DDIM step (η = 0) from x_t to x at ᾱ_prev."""
    x0 = (x - tf.sqrt(1.0 - a_t) * eps) / tf.sqrt(a_t)
    return tf.sqrt(a_prev) * x0 + tf.sqrt(1.0 - a_prev) * eps


def class_log_prob_gradient(classifier: Any, x: Any, t: Any, y: Any) -> Any:
    """∇ₓ log p(y | x, t) per image (the images' log-probabilities are independent)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        log_p = tf.nn.log_softmax(classifier([x, t], training=False))
        total = tf.reduce_sum(tf.gather(log_p, y, axis=1, batch_dims=1))
    return tape.gradient(total, x)
