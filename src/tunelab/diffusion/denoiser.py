"""The denoiser of a dataset: trained once (ε-prediction, MSE, Adam with a weight EMA) and cached
on disk under a hash of what it was trained on, like the feature extractor. It does not depend
on any tuned factor, so every trial of every study on the same data reuses it.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.diffusion.schedule import NoiseSchedule, ScheduleKind
from tunelab.files import write_atomically
from tunelab.schema import ConfigError

ARCHITECTURE = "unet-res1-groupnorm-sinusoidal-v1"


@dataclass
class DenoiserSettings:
    widths: list[int] = field(default_factory=lambda: [32, 64, 96])  # channels per U-Net level
    schedule: ScheduleKind = "cosine"
    steps: int = 1000  # T, the training timesteps
    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    ema: float = 0.995  # momentum of the weight average that is kept; 0 = none

    def check(self, path: str) -> None:
        if not self.widths or min(self.widths) < 1:
            raise ConfigError(f"{path}.widths: a non-empty list of positive channel counts")
        if min(self.steps - 1, self.epochs, self.batch_size) < 1 or self.lr <= 0:
            raise ConfigError(f"{path}: steps must be >= 2, epochs and batch_size >= 1, lr > 0")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"{path}.ema: must be in [0, 1), got {self.ema}")

    @property
    def noise_schedule(self) -> NoiseSchedule:
        return NoiseSchedule(self.schedule, self.steps)


@dataclass
class Denoiser:
    model: Any  # [x_t, t] -> ε, images in [-1, 1]
    key: str
    params: dict[str, Any]
    metrics: dict[str, float]


def to_model_range(images: np.ndarray) -> np.ndarray:
    """Images in [0, 1] -> [-1, 1], the diffusion models' range."""
    return (images * np.float32(2) - np.float32(1)).astype(np.float32)


def noised_batches(
    schedule: NoiseSchedule,
    x: np.ndarray,
    batch_size: int,
    seed: int,
    labels: np.ndarray | None = None,
) -> Any:
    """A tf.data pipeline of shuffled batches ((x_t, t), target), with a fresh timestep and
    noise per image every epoch; the target is the noise ε, or `labels` if given."""
    import tensorflow as tf

    alpha_bar = tf.constant(schedule.alpha_bar, tf.float32)
    images = tf.data.Dataset.from_tensor_slices(x if labels is None else (x, labels))
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def noise(batch: Any, pair: Any) -> Any:
        x0 = batch if labels is None else batch[0]
        n = tf.shape(x0)[0]
        t = tf.random.stateless_uniform([n, 1], pair, 0, schedule.steps, tf.int32)
        eps = tf.random.stateless_normal(tf.shape(x0), pair + 1)
        a = tf.reshape(tf.gather(alpha_bar, t[:, 0]), [-1, 1, 1, 1])
        x_t = tf.sqrt(a) * x0 + tf.sqrt(1.0 - a) * eps
        return (x_t, t), (eps if labels is None else batch[1])

    batches = images.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    return tf.data.Dataset.zip(batches, seeds).map(noise).prefetch(tf.data.AUTOTUNE)


def fixed_noised(
    schedule: NoiseSchedule, x: np.ndarray, seed: int, t: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x_t, t, ε) for every image, drawn once from `seed` (uniform t unless given)."""
    rng = np.random.default_rng(seed)
    if t is None:
        t = rng.integers(0, schedule.steps, len(x))
    eps = rng.standard_normal(x.shape).astype(np.float32)
    t = np.broadcast_to(t, (len(x),)).astype(np.int32)
    return schedule.noised(x, t, eps), t[:, None], eps


def denoiser_key(data: Any, settings: DenoiserSettings, seed: int) -> str:
    digest = hashlib.sha256()
    for array in (data.x_train, data.x_val):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(f"{ARCHITECTURE}|{json.dumps(vars(settings), sort_keys=True)}|{seed}".encode())
    return digest.hexdigest()[:16]


def trained_denoiser(
    data: Any, settings: DenoiserSettings, cache: Path, seed: int, quiet: bool = False
) -> Denoiser:
    """The denoiser for `data`'s training split: from the cache, else trained now and cached."""
    from tunelab.backend import keras
    from tunelab.diffusion.unet import unet
    from tunelab.seeding import seed_everything
    from tunelab.weights import load_weights, save_weights

    key = denoiser_key(data, settings, seed)
    folder = cache / key
    weights, meta_file = folder / "weights.npz", folder / "meta.json"
    schedule = settings.noise_schedule
    seed_everything(seed)  # before building: the initial weights are drawn from the seed
    model = unet(data.spec.input_shape, settings.widths, settings.steps)
    params = {
        "architecture": ARCHITECTURE,
        **vars(settings),
        "seed": seed,
        "n_train": len(data.x_train),
        "parameters": model.count_params(),
    }
    if weights.exists() and meta_file.exists():
        load_weights(model, weights)
        return Denoiser(model, key, params, json.loads(meta_file.read_text())["metrics"])
    if not quiet:
        print(
            f"tunelab: training the denoiser ({settings.epochs} epochs; cached afterwards in "
            f"{folder})",
            file=sys.stderr,
        )
    ema = {"use_ema": True, "ema_momentum": settings.ema} if settings.ema else {}
    model.compile(optimizer=keras().optimizers.Adam(settings.lr, **ema), loss="mse")
    x_val, t_val, eps_val = fixed_noised(schedule, to_model_range(data.x_val), seed)
    started = time.perf_counter()
    history = model.fit(
        noised_batches(schedule, to_model_range(data.x_train), settings.batch_size, seed),
        validation_data=((x_val, t_val), eps_val),
        epochs=settings.epochs,
        shuffle=False,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    val_loss = float(model.evaluate((x_val, t_val), eps_val, verbose=0))  # with the EMA weights
    metrics = {
        "train_seconds": seconds,
        "val_loss": val_loss,
        "train_loss": float(history.history["loss"][-1]),
    }
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(model, weights)
    write_atomically(meta_file, json.dumps({"metrics": metrics, **params}))
    if not quiet:
        print(
            f"tunelab: denoiser trained in {seconds:.0f} s (validation MSE {val_loss:.4f})",
            file=sys.stderr,
        )
    return Denoiser(model, key, params, metrics)
