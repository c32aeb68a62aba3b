"""Guided generation: a noise-aware classifier tuned to steer a cached diffusion denoiser.

Once per study (`prepare`): the domain classifier behind FID / KID / IS, with the held-out test
split as the reference set (the denoiser learnt the training split) and the validation split as
the real-data floor (`tasks.image_scores`); the denoiser (`diffusion.denoiser`, trained once
per dataset and settings, then cached); and the unguided baseline, `unguided_*` scores of
samples from the denoiser alone. A trial trains the classifier p(y | x_t, t) on images noised
at random t, then samples `samples` images with DDIM guided by it at the trial's
`guidance_weight`, requesting every class equally often. It logs the classifier's accuracy on
clean and noised validation images, FID / KID / IS of the guided samples, the guided-class
accuracy (the share the domain classifier assigns to the requested class), seconds per sampled
image, and a grid of samples per class (a row each, fixed starting noise) whose step slider
walks through the denoising. At the end of a study, the best classifier samples at every
weight of `guidance_curve`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tunelab.diffusion.denoiser import DenoiserSettings, fixed_noised, to_model_range
from tunelab.logged import Evaluation, SharedModel, StudyExtras, TrialArtifacts
from tunelab.schema import ConfigError
from tunelab.tasks.base import Direction, Task
from tunelab.tasks.generation import PENALTY
from tunelab.tasks.image_scores import ImageScorer, Scores, ScoringSettings


@dataclass
class GuidedGenerationSettings(ScoringSettings):
    denoiser: DenoiserSettings = field(default_factory=DenoiserSettings)
    sampling_steps: int = 20  # DDIM steps per sample
    noise_seed: int = 1234  # starting noise of the scored samples and grids, the same per trial
    grid_per_class: int = 10
    grid_snapshots: int = 5  # denoising steps the grid's step slider shows (the last included)
    accuracy_timesteps: list[int] = field(default_factory=lambda: [250, 500, 750])
    guidance_curve: list[float] = field(default_factory=lambda: [0, 1, 4, 16, 64])  # [] skips
    curve_samples: int = 500  # per weight of the curve

    def check(self, path: str) -> None:
        super().check(path)
        steps = self.denoiser.steps
        if not 1 <= self.sampling_steps <= steps:
            raise ConfigError(
                f"{path}.sampling_steps: must be 1..{steps}, got {self.sampling_steps}"
            )
        if any(not 0 <= t < steps for t in self.accuracy_timesteps):
            raise ConfigError(f"{path}.accuracy_timesteps: each must be in 0..{steps - 1}")
        if any(w < 0 for w in self.guidance_curve):
            raise ConfigError(f"{path}.guidance_curve: weights must be >= 0")
        for key in ("grid_per_class", "grid_snapshots", "curve_samples"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{path}.{key}: must be at least 1, got {getattr(self, key)}")


@dataclass
class Samples:
    images: np.ndarray  # in [0, 1]
    classes: np.ndarray  # the requested ones
    scores: Scores
    seconds_per_image: float

    def metrics(self) -> dict[str, float]:
        assigned = np.argmax(self.scores.logits, axis=1)
        return {
            **self.scores.metrics(),
            "guided_class_accuracy": float(np.mean(assigned == self.classes)),
            "sampling_seconds_per_image": self.seconds_per_image,
        }


class GuidedGeneration(Task):
    """Served as the noise-aware classifier ({x_t, t} -> class logits); the denoiser is logged
    once in its own run (`tunelab.kind=denoiser`), whose id every trial tags."""

    Settings = GuidedGenerationSettings
    objectives: ClassVar[dict[str, Direction]] = {
        "fid": "min",
        "guided_class_accuracy": "max",
        "kid": "min",
        "inception_score": "max",
        "val_accuracy": "max",
    }
    curves: ClassVar[dict[str, list[str]]] = {
        "loss (noised images)": ["loss", "val_loss"],
        "accuracy (noised images)": ["accuracy", "val_accuracy"],
    }

    def __init__(
        self, settings: GuidedGenerationSettings, data: Any, seed: int, workdir: Path
    ) -> None:
        super().__init__(settings, data, seed, workdir)
        self.scorer = ImageScorer(settings, data, seed, workdir, held_out=True)
        self.schedule = settings.denoiser.noise_schedule
        self.x_train = to_model_range(data.x_train)
        self.x_val = to_model_range(data.x_val)
        x_t, t, _ = fixed_noised(self.schedule, self.x_val, seed)
        self.validation = ((x_t, t), data.y_val)  # the same noised images for every trial
        self.denoiser: Any = None
        self._sampler: tuple[Any, Any] = (None, None)  # (classifier, its DDIMSampler)

    def prepare(self) -> StudyExtras:
        from tunelab.diffusion.denoiser import trained_denoiser

        extras = self.scorer.prepare()
        denoiser = trained_denoiser(
            self.data, self.settings.denoiser, self.workdir / "denoisers", self.seed
        )
        self.denoiser = denoiser.model
        extras.shared.append(
            SharedModel("denoiser", denoiser.key, denoiser.params, denoiser.metrics, denoiser.model)
        )
        extras.metrics.update({f"denoiser_{k}": v for k, v in denoiser.metrics.items()})
        unguided = self.sample(None, 0.0, self.settings.samples)
        extras.metrics.update({f"unguided_{k}": v for k, v in unguided.metrics().items()})
        return extras

    def sampler(self, classifier: Any) -> Any:
        """The DDIM sampler guided by `classifier`, kept while it is the same one (its traced
        steps serve a trial's samples and its grid alike)."""
        from tunelab.diffusion.sampler import DDIMSampler

        if self._sampler[0] is not classifier or self._sampler[1] is None:
            sampler = DDIMSampler(
                self.denoiser, self.schedule, self.settings.sampling_steps, classifier
            )
            self._sampler = (classifier, sampler)
        return self._sampler[1]

    def sample(self, classifier: Any, weight: float, n: int) -> Samples:
        """`n` samples requesting classes 0, 1, …, C − 1 in turn, scored."""
        classes = np.arange(n) % len(self.data.class_names)
        started = time.perf_counter()
        x = self.sampler(classifier).sample(
            n, self.data.spec.input_shape, self.settings.noise_seed, classes, weight
        )
        seconds = (time.perf_counter() - started) / n
        images = to_unit_range(x)
        return Samples(images, classes, self.scorer.scores(images, final=True), seconds)

    def fit_inputs(self, hp: Any, seed: int) -> dict[str, Any]:
        from tunelab.diffusion.denoiser import noised_batches

        if hp.timesteps != self.schedule.steps:
            raise ValueError(
                f"model.hparams.timesteps ({hp.timesteps}) must equal "
                f"model.task.denoiser.steps ({self.schedule.steps})"
            )
        batch_size = hp.batch_size or len(self.x_train)
        batches = noised_batches(self.schedule, self.x_train, batch_size, seed, self.data.y_train)
        return {"x": batches, "validation_data": self.validation, "shuffle": False}

    def evaluate(self, model: Any, hp: Any) -> Evaluation:
        from tunelab import plots

        metrics = self._accuracies(model)
        samples = self.sample(model, hp.guidance_weight, self.settings.samples)
        metrics.update(samples.metrics())
        self.scorer.final_extras(samples.images, samples.scores, metrics)
        tags = (
            {"tunelab.metric_notes": "; ".join(samples.scores.reasons)}
            if samples.scores.reasons
            else {}
        )
        return Evaluation(
            metrics=metrics,
            artifacts=TrialArtifacts(
                figures={
                    "plots/class_counts.png": (
                        plots.class_counts,
                        {
                            "counts": self.scorer.class_counts(samples.scores),
                            "class_names": self.data.class_names,
                        },
                    )
                },
            ),
            step_images={"guided_samples": self._grid_steps(model, hp.guidance_weight)},
            tags=tags,
            headline={
                k: metrics[k]
                for k in ("fid", "guided_class_accuracy", "inception_score", "clean_val_accuracy")
            },
        )

    def _accuracies(self, model: Any) -> dict[str, float]:
        """The classifier's accuracy on clean validation images (t = 0) and noised at a few t."""
        from tunelab.tasks.classification import predict_classes

        y = self.data.y_val
        zero = np.zeros((len(y), 1), np.int32)
        metrics = {
            "clean_val_accuracy": float(np.mean(predict_classes(model, [self.x_val, zero]) == y))
        }
        for t in self.settings.accuracy_timesteps:
            x_t, ts, _ = fixed_noised(self.schedule, self.x_val, self.seed + t, np.asarray(t))
            metrics[f"val_accuracy_t{t}"] = float(np.mean(predict_classes(model, [x_t, ts]) == y))
        return metrics

    def _grid_steps(self, model: Any, weight: float) -> list[tuple[int, np.ndarray]]:
        """A row of `grid_per_class` samples per class, from the same starting noise in every
        trial, at `grid_snapshots` steps of the denoising (step k: x̂ after k DDIM steps)."""
        from tunelab.tasks.generation import image_grid

        s = self.settings
        n_classes = len(self.data.class_names)
        classes = np.repeat(np.arange(n_classes), s.grid_per_class)
        keep = set(np.linspace(1, s.sampling_steps, s.grid_snapshots).round().astype(int))
        trajectory = self.sampler(model).trajectory(
            len(classes), self.data.spec.input_shape, s.noise_seed + 1, classes, weight, keep
        )
        return [
            (step, image_grid(to_unit_range(x), n_classes, s.grid_per_class))
            for step, x in trajectory
        ]

    def score(
        self, history: list[dict[str, float]], evaluation: Evaluation, objective: Any
    ) -> tuple[float | None, int | None]:
        """The guided samples' value of the objective, or the final epoch's (val_accuracy)."""
        last = history[-1] if history else {}
        value = evaluation.metrics.get(objective.name, last.get(objective.name, math.nan))
        if not math.isfinite(value):
            value = PENALTY[objective.direction]
        return value, int(last["epoch"]) if last else None

    def servable(self, model_cls: Any, hp: Any, weights: Path) -> tuple[Any, Any]:
        """The classifier rebuilt from saved weights, uncompiled; 5 noised validation images."""
        from tunelab.backend import keras
        from tunelab.weights import load_weights

        compiled = model_cls.build(hp, self.data.spec)
        load_weights(compiled, weights)
        model = keras().Model(compiled.inputs, compiled.outputs, name=compiled.name)
        (x_t, t), _ = self.validation
        return model, {"x_t": x_t[:5], "t": t[:5]}

    def conclude(self, model_cls: Any, hp: Any, weights: Path) -> StudyExtras:
        """The guidance trade-off of the best classifier: its samples at every weight of
        `guidance_curve`, scored (sample quality against diversity, Dhariwal & Nichol 2021)."""
        from tunelab import plots
        from tunelab.weights import load_weights

        if not self.settings.guidance_curve:
            return StudyExtras()
        model = model_cls.build(hp, self.data.spec)
        load_weights(model, weights)
        rows = []
        for w in self.settings.guidance_curve:
            samples = self.sample(model, w, self.settings.curve_samples)
            rows.append(
                {
                    "guidance_weight": w,
                    **samples.metrics(),
                    "within_class_spread": within_class_spread(samples),
                }
            )
        columns = list(rows[0])
        lines = [",".join(columns), *(",".join(f"{r[c]:.6g}" for c in columns) for r in rows)]
        return StudyExtras(
            texts={"tables/guidance_curve.csv": "\n".join(lines) + "\n"},
            figures={"plots/guidance_curve.png": (plots.guidance_curve, {"rows": rows})},
        )


def within_class_spread(samples: Samples) -> float:
    """Diversity: the root mean squared distance of each requested class's features to their
    mean, averaged over classes (it falls as guidance narrows each class)."""
    features = samples.scores.features
    spreads = [
        np.sqrt(np.mean(np.sum((f - f.mean(axis=0)) ** 2, axis=1)))
        for c in np.unique(samples.classes)
        if len(f := features[samples.classes == c]) > 1
    ]
    return float(np.mean(spreads)) if spreads else math.nan


def to_unit_range(x: np.ndarray) -> np.ndarray:
    """Samples in [−1, 1] -> images in [0, 1]."""
    return np.clip((x.astype(np.float64) + 1.0) / 2.0, 0.0, 1.0)
