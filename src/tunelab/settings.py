"""A study's top-level settings as Hydra's structured config: each key's type and default,
written once here. `conf/config.yaml` extends it (`defaults: [tunelab_schema, ...]`), Hydra
checks every override against it, `tunelab.config.load` fills a stored config's missing keys
from it, and the configuration reference lists its fields with the comments beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tunelab.tracking.settings import TrackingSettings

SCHEMA = "tunelab_schema"  # its name in Hydra's ConfigStore


@dataclass
class ObjectiveSettings:
    # the metric optimised, e.g. val_accuracy, val_macro_f1, fid; null: the model's
    name: str | None = None
    direction: str | None = None  # max or min; null: the objective's own (min for losses, FID)


def _tracking() -> TrackingSettings:
    return TrackingSettings(model_name="tunelab-${model.name}-${dataset.name}")


@dataclass
class StudySettings:
    seed: int = 0  # seeds the split, the strategy and every trial (reproducible)
    repetition: int = 0  # which repetition of a design this study is (a tag)
    # smoke (seconds), default (minutes on 2 CPUs) or full (the reference scale)
    budget: str = "default"
    objective: ObjectiveSettings = field(default_factory=ObjectiveSettings)
    study_name: str | None = None  # null: <model>-<dataset>-<strategy>-seed<seed>
    resume: bool = False  # true: continue the interrupted study of the same name
    quiet: bool = False  # true: no progress bar (CI, logs)
    workdir: str = ".tunelab"  # strategy state, checkpoints and journals of each study
    stages: list[Any] = field(default_factory=list)  # a chain of studies (how-to/chains.md)
    # stop when the first N trials all fail alike; 0 = never
    stop_after_identical_failures: int = 3
    # MLflow tags on the study run, e.g. tags.owner=ana
    tags: dict[str, Any] = field(default_factory=dict)
    workers: int = 1  # N local processes share the study's trials (how-to/workers.md)
    # the best N trials' weights stay in the study folder (get_best_models)
    keep_weights: int = 1
    tracking: TrackingSettings = field(default_factory=_tracking)
    model: Any = None  # the group: model=<option> (conf/model/)
    dataset: Any = None  # the group: dataset=<option> (conf/dataset/)
    strategy: Any = None  # the group: strategy=<option> (conf/strategy/)


def register_schema() -> None:
    """Store `StudySettings` in Hydra's ConfigStore, where conf/config.yaml extends it."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=SCHEMA, node=StudySettings)


def defaults() -> dict[str, Any]:
    """Every top-level key's default (the groups' None), as a composed config holds them."""
    from dataclasses import asdict

    return asdict(StudySettings())
