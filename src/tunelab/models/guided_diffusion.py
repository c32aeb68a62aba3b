"""Classifier-guided diffusion: the tuned part is the noise-aware classifier p_φ(y | x_t, t).

It is the CNN of the `cnn` space (blocks, filters, dropout, resolution, lr, batch, ...) with
the timestep as a second input: a fixed sinusoidal embedding and an MLP, added to every conv
block. It outputs logits; the task trains it on images noised by the denoiser's schedule at
random t, then samples with the cached denoiser guided by it at `guidance_weight`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunelab.backend import keras
from tunelab.data.base import DataSpec
from tunelab.models.cnn import CNNHParams, conv_features
from tunelab.models.common import ModelBuilder, optimizer
from tunelab.schema import ConfigError
from tunelab.tasks.guided_generation import GuidedGeneration

TIME_EMBEDDING = 64


@dataclass
class GuidedDiffusionHParams(CNNHParams):
    guidance_weight: float = 16.0  # w: 0 samples unguided
    timesteps: int = 1000  # T of the denoiser's schedule (the YAML ties the two)

    def check(self, path: str) -> None:
        super().check(path)
        if self.guidance_weight < 0:
            raise ConfigError(f"{path}.guidance_weight: must be >= 0, got {self.guidance_weight}")
        if self.augment:
            raise ConfigError(
                f"{path}.augment: not supported by guided_diffusion (the "
                "classifier trains on noised images); valid: false"
            )


class GuidedDiffusion(ModelBuilder):
    """[x_t (batch, H, W, C) in the diffusion range, t (batch, 1) int] -> class logits."""

    HParams = GuidedDiffusionHParams
    task = GuidedGeneration

    @staticmethod
    def build(hp: GuidedDiffusionHParams, spec: DataSpec) -> Any:
        from tunelab.diffusion.unet import timestep_embedding

        layers = keras().layers
        image = keras().Input(shape=spec.input_shape, name="x_t")
        t = keras().Input(shape=(1,), dtype="int32", name="t")
        x = image
        side = hp.resolution or spec.resize
        if side:
            x = layers.Resizing(side, side, name="resolution")(x)
        embedding = timestep_embedding(t, hp.timesteps, TIME_EMBEDDING, "time")
        features = conv_features(x, hp, hp.momentum_for(spec), condition=embedding)
        logits = layers.Dense(spec.n_classes, name="logits")(features)
        model = keras().Model([image, t], logits, name="noise_aware_classifier")
        loss = keras().losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(optimizer=optimizer(hp), loss=loss, metrics=["accuracy"])
        return model
