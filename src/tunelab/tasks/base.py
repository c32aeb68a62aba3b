"""What differs between model families: a task.

A model class names its task (`ModelBuilder.task`); the runner, the trainer and the tracker only
talk to that task. A task declares its valid objectives (checked before TensorFlow is imported),
what `fit` is fed, what it adds to each epoch's metrics, how a finished trial is evaluated and
scored, which artifacts it leaves and what model is served. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tunelab.logged import EpochExtras, Evaluation, StudyExtras
from tunelab.objective import Direction


@dataclass
class NoSettings:
    """A task without settings of its own."""


class Task(ABC):
    """Base of every task. Subclasses set `objectives` and implement what differs.

    A task is made once per study (`Task(settings, data, seed, workdir)`) after the data is
    loaded; `prepare()` then does the study's one-off work (e.g. training a feature extractor).
    A model family names its task (`ModelBuilder.task`); the runner, the trainer and the
    tracker only call the methods below.

    Args:
        settings: the task's settings from the model YAML's `task`, an instance of `Settings`.
        data: the study's loaded data (`tunelab.data.base.Dataset` for the image datasets).
        seed: the study's seed.
        workdir: the study's private folder.

    Examples:
        An autoencoder's task: images in, the same images out, scored by test error:

        >>> from pathlib import Path
        >>> import numpy as np
        >>> from tunelab.backend import keras
        >>> from tunelab.data.digits import Digits, DigitsSettings
        >>> from tunelab.models.common import TrainHParams
        >>> from tunelab.tasks.base import Evaluation, Task
        >>> class Reconstruction(Task):
        ...     objectives = {"val_loss": "min", "loss": "min"}  # the first is the default
        ...     def fit_inputs(self, hp, seed):
        ...         d = self.data
        ...         return {"x": d.x_train, "y": d.x_train, "batch_size": hp.batch_size,
        ...                 "validation_data": (d.x_val, d.x_val), "shuffle": True}
        ...     def evaluate(self, model, hp):
        ...         x = self.data.x_test
        ...         error = float(np.mean((model.predict(x, verbose=0) - x) ** 2))
        ...         return Evaluation(metrics={"test_mse": error}, headline={"test_mse": error})
        ...     def servable(self, model_cls, hp, weights):
        ...         model = model_cls.build(hp, self.data.spec)
        ...         model.load_weights(weights)
        ...         return model, self.data.x_test[:5]
        >>> data = Digits.load(DigitsSettings(), seed=0)
        >>> task = Reconstruction(None, data, seed=0, workdir=Path("."))
        >>> task.fit_inputs(TrainHParams(batch_size=64), seed=0)["y"].shape
        (1197, 8, 8, 1)
        >>> identity = keras().Sequential([keras().Input((8, 8, 1)), keras().layers.Identity()])
        >>> task.evaluate(identity, TrainHParams()).metrics
        {'test_mse': 0.0}
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

    def check_objective(self, model_cls: Any, hp: Any, objective: Any) -> None:  # noqa: B027
        """Refuse, before any run is logged, an objective a model built with `hp` cannot
        report (raise `ModelError` in one line). An optional hook: for most tasks `accepts` said
        all there is."""

    def prepare(self) -> StudyExtras:
        """One-off work before the first trial; what the study run should record about it."""
        return StudyExtras()

    @abstractmethod
    def fit_inputs(self, hp: Any, seed: int) -> dict[str, Any]:
        """Keyword arguments of `model.fit` for a trial with hyperparameters `hp`.

        Args:
            hp: the trial's hyperparameters (the model family's `HParams`).
            seed: the trial's seed, for shuffling and augmentation.

        Returns:
            `x`, `y`, `batch_size`, `validation_data`, ... as `keras.Model.fit` takes them
            (tunelab adds `epochs` and the callbacks).
        """

    def callbacks(self, hp: Any) -> list[Any]:
        """Keras callbacks of the task, run after tunelab's epoch tracker."""
        return []

    def end_of_epoch(self, model: Any, epoch: int, last: bool) -> EpochExtras:
        """Metrics (and images) to add to `epoch`'s; `last` is the trial's final epoch."""
        return EpochExtras()

    @abstractmethod
    def evaluate(self, model: Any, hp: Any) -> Evaluation:
        """A trained trial's evaluation on held-out data.

        Args:
            model: the trained Keras model.
            hp: the trial's hyperparameters.

        Returns:
            Its test metrics, the artifacts to log (figures, tables, images) and the
            `headline` metrics the study run repeats for its best trial.
        """

    def score(
        self, history: list[dict[str, float]], evaluation: Evaluation, objective: Any
    ) -> tuple[float | None, int | None]:
        """A trial's score and the epoch it comes from: by default its best epoch."""
        scored = [h for h in history if math.isfinite(h.get(objective.name, math.nan))]
        if not scored:
            return None, None
        top = objective.best_of(scored, key=lambda h: h[objective.name])
        return top[objective.name], int(top["epoch"])

    @abstractmethod
    def servable(self, model_cls: Any, hp: Any, weights: Path) -> tuple[Any, Any]:
        """The model to log for serving, rebuilt from saved weights, and its input example.

        Args:
            model_cls: the model family (`ModelBuilder` subclass) of the best trial.
            hp: that trial's hyperparameters.
            weights: its saved weights (`.weights.h5`).

        Returns:
            The Keras model to log and serve, and a few inputs as its input example.
        """

    def companions(self, model_cls: Any, hp: Any, weights: Path) -> dict[str, tuple[Any, Any]]:
        """Further models of the best trial to log beside the served one (name -> model and
        input example), e.g. a GAN's discriminator."""
        return {}

    def conclude(self, model_cls: Any, hp: Any, weights: Path) -> StudyExtras:
        """What the study run adds about its best trial at the end (e.g. a guidance curve)."""
        return StudyExtras()
