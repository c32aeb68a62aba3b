"""Generation: a generator trained from unlabelled images, scored by FID, KID and IS.

The features and logits come from a digit classifier trained here once per training set
(`tasks.feature_extractor`); the reference set is the training split. Per epoch: the 10x10
image grid of a fixed latent seed (the same for every epoch and trial) and, every `every`
epochs and at the last one, FID / KID / IS of `samples_during_training` generated images. At
the end of a trial: the same metrics from `samples` images, the classes the classifier sees
in them (mode collapse shows there), the final grid and a loss-curves figure. The study run
records the real-data floor: held-out real images scored against the same reference set at
the same N. A trial's score is its final value of the objective; a non-finite one (a collapsed
generator) becomes a finite penalty and the tag `tunelab.collapsed=true`, so the study goes on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tunelab.logged import EpochExtras, Evaluation, StudyExtras, TrialArtifacts
from tunelab.schema import ConfigError
from tunelab.tasks.base import Direction, Task
from tunelab.tasks.image_scores import ImageScorer, ScoringSettings

GRID_SIDE = 10  # a 10 x 10 grid of generated images
PENALTY: dict[Direction, float] = {"min": 1e6, "max": 0.0}  # IS >= 1 for any real generator


@dataclass
class GenerationSettings(ScoringSettings):
    samples_during_training: int = 500  # per metric epoch
    every: int = 1  # epochs between metric evaluations; the last epoch always has them
    latent_seed: int = 1234  # the fixed latent vectors of the image grid and the evaluations

    def check(self, path: str) -> None:
        super().check(path)
        for key in ("samples_during_training", "every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{path}.{key}: must be at least 1, got {getattr(self, key)}")


class Generation(Task):
    """Images from latent vectors; served as the generator (latent vectors (n, latent_dim) ->
    images (n, H, W, C) in [0, 1], the dataset's range)."""

    Settings = GenerationSettings
    objectives: ClassVar[dict[str, Direction]] = {
        "fid": "min",
        "kid": "min",
        "inception_score": "max",
    }
    loss_metrics: ClassVar[tuple[str, ...]] = ("g_loss", "d_loss")
    curves: ClassVar[dict[str, list[str]]] = {
        "losses": ["g_loss", "d_loss"],
        "discriminator accuracy": ["d_acc_real", "d_acc_fake"],
        "FID (classifier features)": ["fid"],
    }

    def __init__(self, settings: GenerationSettings, data: Any, seed: int, workdir: Path) -> None:
        super().__init__(settings, data, seed, workdir)
        self.x_train = data.x_train * np.float32(2) - np.float32(1)  # [-1, 1] for the GAN
        self.scorer = ImageScorer(settings, data, seed, workdir)
        self.last_grid: np.ndarray | None = None  # the last epoch's, reused by `evaluate`

    def prepare(self) -> StudyExtras:
        return self.scorer.prepare()

    def latents(self, n: int, latent_dim: int, salt: int = 0) -> np.ndarray:
        """Fixed latent vectors: the same for every epoch and every trial of every study."""
        rng = np.random.default_rng(self.settings.latent_seed + salt)
        return rng.standard_normal((n, latent_dim)).astype(np.float32)

    def generate(self, gan: Any, n: int, salt: int = 0) -> np.ndarray:
        """`n` images in [0, 1] from the fixed latent vectors."""
        from tunelab.backend import predict_in_batches

        images = predict_in_batches(gan.generator, self.latents(n, gan.latent_dim, salt))
        return (images.astype(np.float64) + 1.0) / 2.0

    def fit_inputs(self, hp: Any, seed: int) -> dict[str, Any]:
        return {"x": self.x_train, "batch_size": hp.batch_size, "shuffle": True}

    def end_of_epoch(self, model: Any, epoch: int, last: bool) -> EpochExtras:
        grid = self.last_grid = image_grid(self.generate(model, GRID_SIDE**2))
        extras = EpochExtras(images={"generated": grid})
        if last or (epoch + 1) % self.settings.every == 0:
            samples = self.generate(model, self.settings.samples_during_training, salt=1)
            scores = self.scorer.scores(samples, final=False)
            extras.metrics = {k: v for k, v in scores.metrics().items() if k in self.objectives}
        return extras

    def evaluate(self, model: Any, hp: Any) -> Evaluation:
        from tunelab import plots

        samples = self.generate(model, self.settings.samples, salt=2)
        scores = self.scorer.scores(samples, final=True)
        metrics = {f"final_{k}": v for k, v in scores.metrics().items()}
        self.scorer.final_extras(samples, scores, metrics)
        counts = self.scorer.class_counts(scores)
        collapsed = not all(math.isfinite(metrics[f"final_{k}"]) for k in self.objectives)
        tags = {"tunelab.collapsed": str(collapsed).lower()}
        if scores.reasons:
            tags["tunelab.metric_notes"] = "; ".join(scores.reasons)
        return Evaluation(
            metrics=metrics,
            artifacts=TrialArtifacts(
                figures={
                    "plots/class_counts.png": (
                        plots.class_counts,
                        {"counts": counts, "class_names": self.data.class_names},
                    )
                },
                images={"plots/generated.png": self._final_grid(model)},
            ),
            tags=tags,
            headline={f"final_{k}": metrics[f"final_{k}"] for k in self.objectives},
        )

    def _final_grid(self, model: Any) -> np.ndarray:
        """The grid of the trained generator: the last epoch's if it drew this model's."""
        grid, self.last_grid = self.last_grid, None
        return grid if grid is not None else image_grid(self.generate(model, GRID_SIDE**2))

    def score(
        self, history: list[dict[str, float]], evaluation: Evaluation, objective: Any
    ) -> tuple[float | None, int | None]:
        """The final value of the objective (the served generator's), penalised if not finite."""
        value = evaluation.metrics[f"final_{objective.name}"]
        if not math.isfinite(value):
            value = PENALTY[objective.direction]
        return value, int(history[-1]["epoch"]) if history else None

    def servable(self, model_cls: Any, hp: Any, weights: Path) -> tuple[Any, np.ndarray]:
        """The generator with its output mapped from [-1, 1] to [0, 1]; 5 latent vectors."""
        from tunelab.backend import keras

        gan = self._trained_gan(model_cls, hp, weights)
        z = keras().Input(shape=(hp.latent_dim,), name="latent")
        images = keras().layers.Rescaling(0.5, offset=0.5, name="to_unit_range")(gan.generator(z))
        return keras().Model(z, images, name="generator"), self.latents(5, hp.latent_dim)

    def companions(self, model_cls: Any, hp: Any, weights: Path) -> dict[str, tuple[Any, Any]]:
        """The discriminator, taking images in [0, 1] (the generator's and the dataset's range)
        to a logit that is high for "real"; 5 test images as its example."""
        from tunelab.backend import keras

        gan = self._trained_gan(model_cls, hp, weights)
        image = keras().Input(shape=self.data.spec.input_shape, name="image")
        scaled = keras().layers.Rescaling(2.0, offset=-1.0, name="to_gan_range")(image)
        model = keras().Model(image, gan.discriminator(scaled), name="discriminator")
        return {"discriminator": (model, self.data.x_test[:5])}

    def _trained_gan(self, model_cls: Any, hp: Any, weights: Path) -> Any:
        """The GAN built from `hp` with the saved `weights`."""
        from tunelab.weights import load_weights

        gan = model_cls.build(hp, self.data.spec)
        load_weights(gan, weights)
        return gan


def image_grid(images: np.ndarray, side: int = GRID_SIDE, columns: int | None = None) -> np.ndarray:
    """`side` rows of `columns` (default `side`) images (N, H, W, C) in [0, 1], row by row,
    tiled into one (side·H, columns·W[, C]) image."""
    n, h, w, c = images.shape
    columns = columns or side
    tiles = np.clip(images[: side * columns], 0.0, 1.0).reshape(side, columns, h, w, c)
    grid = tiles.transpose(0, 2, 1, 3, 4).reshape(side * h, columns * w, c)
    return grid[..., 0] if c == 1 else grid
