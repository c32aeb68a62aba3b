"""What differs between model families: a task.

A model class names its task (`ModelBuilder.task`); the runner, the trainer and the tracker only
talk to that task. A task declares its valid objectives (checked before TensorFlow is imported),
what `fit` is fed, what it adds to each epoch's metrics, how a finished trial is evaluated and
scored, which artifacts it leaves and what model is served. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

Direction = Literal["max", "min"]


@dataclass
class TrialArtifacts:
    """What a finished trial leaves besides metrics, drawn and uploaded by the artifact worker.

    `figures` maps an artifact path to (a function name in `tunelab.plots`, its keyword data).
    """

    figures: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    dicts: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)  # path -> (H, W[, C]) in [0, 1]


@dataclass
class Evaluation:
    """A finished trial's evaluation: metrics and tags for its run, artifacts, and the few
    `headline` figures the study run repeats for its best trial (as `best_trial_<key>`)."""

    metrics: dict[str, float]
    artifacts: TrialArtifacts = field(default_factory=TrialArtifacts)
    tags: dict[str, str] = field(default_factory=dict)
    headline: dict[str, float] = field(default_factory=dict)
    step_images: dict[str, list[tuple[int, np.ndarray]]] = field(default_factory=dict)  # by key


@dataclass
class EpochExtras:
    """What a task adds at the end of an epoch: metrics, and images logged with the epoch as
    their step (keys without `/`: MLflow stores such image keys unreadably, mlflow#22165)."""

    metrics: dict[str, float] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class SharedModel:
    """A model a task trains once and reuses across trials and studies (a feature extractor, a
    denoiser). The tracker logs it once as its own run, tagged `tunelab.kind=<kind>` and found
    again by `key`, a hash of what it was trained on."""

    kind: str
    key: str
    params: dict[str, Any]
    metrics: dict[str, float]
    model: Any = None  # a Keras model to log with the run, if any


@dataclass
class StudyExtras:
    """What a task adds to the study run: metrics (e.g. a real-data floor), texts, figures (as in
    `TrialArtifacts`), the shared models its trials use (each trial tags their run ids), and
    notices for the user."""

    metrics: dict[str, float] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    figures: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    shared: list[SharedModel] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # one line each, printed for the user


@dataclass
class NoSettings:
    """A task without settings of its own."""


class Task:
    """Base of every task. Subclasses set `objectives` and implement what differs.

    A task is made once per study (`Task(settings, data, seed, workdir)`) after the data is
    loaded; `prepare()` then does the study's one-off work (e.g. training a feature extractor).
    """

    Settings: ClassVar[type] = NoSettings
    objectives: ClassVar[dict[str, Direction]]  # valid objectives; the first is the default
    loss_metrics: ClassVar[tuple[str, ...]] = ("loss",)  # non-finite: the trial fails
    curves: ClassVar[dict[str, list[str]]] = {}  # learning-curve panels: title -> metrics

    def __init__(self, settings: Any, data: Any, seed: int, workdir: Path) -> None:
        self.settings = settings
        self.data = data
        self.seed = seed
        self.workdir = workdir

    @classmethod
    def direction(cls, objective: str) -> Direction:
        return cls.objectives[objective]

    @classmethod
    def accepts(cls, objective: str) -> bool:
        """Whether `objective` is valid for this task (checked before TensorFlow loads)."""
        return objective in cls.objectives

    def prepare(self) -> StudyExtras:
        """One-off work before the first trial; what the study run should record about it."""
        return StudyExtras()

    def fit_inputs(self, hp: Any, seed: int) -> dict[str, Any]:
        """Keyword arguments of `model.fit` for a trial with hyperparameters `hp`."""
        raise NotImplementedError

    def callbacks(self, hp: Any) -> list[Any]:
        """Keras callbacks of the task, run after tunelab's epoch tracker."""
        return []

    def end_of_epoch(self, model: Any, epoch: int, last: bool) -> EpochExtras:
        """Metrics (and images) to add to `epoch`'s; `last` is the trial's final epoch."""
        return EpochExtras()

    def evaluate(self, model: Any, hp: Any) -> Evaluation:
        raise NotImplementedError

    def score(
        self, history: list[dict[str, float]], evaluation: Evaluation, objective: Any
    ) -> tuple[float | None, int | None]:
        """A trial's score and the epoch it comes from: by default its best epoch."""
        scored = [h for h in history if math.isfinite(h.get(objective.name, math.nan))]
        if not scored:
            return None, None
        top = objective.best_of(scored, key=lambda h: h[objective.name])
        return top[objective.name], int(top["epoch"])

    def servable(self, model_cls: Any, hp: Any, weights: Path) -> tuple[Any, np.ndarray]:
        """The model to log for serving, rebuilt from saved weights, and its input example."""
        raise NotImplementedError

    def companions(self, model_cls: Any, hp: Any, weights: Path) -> dict[str, tuple[Any, Any]]:
        """Further models of the best trial to log beside the served one (name -> model and
        input example), e.g. a GAN's discriminator."""
        return {}

    def conclude(self, model_cls: Any, hp: Any, weights: Path) -> StudyExtras:
        """What the study run adds about its best trial at the end (e.g. a guidance curve)."""
        return StudyExtras()
