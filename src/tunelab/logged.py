"""What a trial and a study leave in MLflow besides their params and metrics, as plain
containers: a task fills them, the tracker logs them. Nothing here imports anything of
tunelab's, so every layer may use them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Plot = Callable[..., Any]  # keyword data -> a matplotlib Figure


@dataclass
class TrialArtifacts:
    """What a finished trial leaves besides metrics, drawn and uploaded by the artifact worker.

    `figures` maps an artifact path to (a plot function, its keyword data): a module-level
    function (those of `tunelab.plots`), so that the artifact worker can unpickle it.
    """

    figures: dict[str, tuple[Plot, dict[str, Any]]] = field(default_factory=dict)
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
    figures: dict[str, tuple[Plot, dict[str, Any]]] = field(default_factory=dict)
    shared: list[SharedModel] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # one line each, printed for the user
