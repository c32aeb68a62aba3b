"""Extensions that leave an abstract method out: the config refuses each with one line."""

from __future__ import annotations

from tunelab.data.base import DatasetSource
from tunelab.data.digits import DigitsSettings
from tunelab.models.common import ModelBuilder
from tunelab.models.mlp import MLPHParams
from tunelab.strategies import Proposal, Strategy
from tunelab.strategies.keras_tuner import RandomSettings
from tunelab.tasks.base import Task
from tunelab.tasks.classification import Classification


class AskOnly(Strategy):
    Settings = RandomSettings

    def ask(self) -> Proposal | None:
        return None


class NoBuild(ModelBuilder):
    HParams = MLPHParams
    task = Classification


class TrainsOnly(Task):
    objectives = {"val_accuracy": "max"}

    def fit_inputs(self, hp, seed):
        return {}


class BuildsForAnIncompleteTask(NoBuild):
    task = TrainsOnly

    @staticmethod
    def build(hp, spec):
        return None


class NoArrays(DatasetSource):
    Settings = DigitsSettings
    class_names = ["0"]
