"""The adversarial pair as one `keras.Model` whose `train_step` trains both networks, so that
`fit` (with its callbacks, epochs and warm starts) drives a GAN like any other model. Importing
this module imports TensorFlow."""

from __future__ import annotations

from typing import Any

from tunelab.backend import keras


class GAN(keras().Model):  # type: ignore[misc]  # a base from the lazy import
    """Generator and discriminator trained against each other, one step per batch of real
    images: both networks see the same generated batch, as in the reference."""

    def __init__(self, generator: Any, discriminator: Any, latent_dim: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.noise = keras().random.SeedGenerator()
        mean = keras().metrics.Mean
        self.trackers = [mean(name=n) for n in ("g_loss", "d_loss", "d_acc_real", "d_acc_fake")]
        self.built = True

    def compile(self, g_optimizer: Any, d_optimizer: Any) -> None:
        super().compile()
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        self.cross_entropy = keras().losses.BinaryCrossentropy(from_logits=True)

    @property
    def metrics(self) -> list[Any]:
        return self.trackers  # reset at every epoch by fit

    def call(self, z: Any, training: bool = False) -> Any:
        return self.generator(z, training=training)

    def train_step(self, real: Any) -> dict[str, Any]:
        import tensorflow as tf

        if isinstance(real, tuple):
            real = real[0]
        ops = keras().ops
        z = keras().random.normal((ops.shape(real)[0], self.latent_dim), seed=self.noise)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(z, training=True)
            real_logit = self.discriminator(real, training=True)
            fake_logit = self.discriminator(fake, training=True)
            g_loss = self.cross_entropy(ops.ones_like(fake_logit), fake_logit)
            d_loss = self.cross_entropy(ops.ones_like(real_logit), real_logit) + self.cross_entropy(
                ops.zeros_like(fake_logit), fake_logit
            )
        g_vars, d_vars = self.generator.trainable_weights, self.discriminator.trainable_weights
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars, strict=True))
        self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_loss, d_vars), d_vars, strict=True))
        values = (
            g_loss,
            d_loss,
            ops.mean(ops.cast(real_logit > 0, "float32")),
            ops.mean(ops.cast(fake_logit < 0, "float32")),
        )
        for tracker, value in zip(self.trackers, values, strict=True):
            tracker.update_state(value)
        return {t.name: t.result() for t in self.trackers}
