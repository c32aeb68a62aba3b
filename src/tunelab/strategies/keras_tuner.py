"""KerasTuner's own oracles — Hyperband, random search, Bayesian optimisation — as strategies.

The oracle decides which hyperparameters come next and keeps its state in the study's work
folder, so `resume=true` reloads it (`Oracle.reload`) and re-runs only unfinished trials.
"""

from __future__ import annotations

import json
import math
import os
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

from tunelab.files import write_atomically
from tunelab.schema import ConfigError
from tunelab.seeding import derive
from tunelab.strategies.base import Outcome, Proposal, Strategy, StrategyContext

TUNER_ID = "tuner0"
PROJECT = "keras_tuner"


def atomic(oracle_cls: type) -> type:
    """`oracle_cls` writing its state files atomically. KerasTuner writes them in place, so a
    `kill -9` mid-write leaves truncated JSON that `Oracle.reload` cannot read (seen here).

    `oracle.json` is the commit point: `create_trial` writes the new trial's file first, so a
    study stopped between the two writes left a trial the oracle never recorded. Reloaded, it
    would take the trial's id and the next one would get a new id, one trial short (seen in CI
    after a SIGTERM); dropped, the oracle proposes it again, id and values alike. `end_trial`
    saves before it lets go of the ended trial, so it saves once more after."""

    class AtomicOracle(oracle_cls):
        def reload(self) -> None:
            super().reload()
            for trial_id in set(self.trials) - set(self.start_order):
                del self.trials[trial_id]

        def end_trial(self, trial: Any) -> None:
            super().end_trial(trial)
            self.save()

        def save(self) -> None:
            write_atomically(self._get_oracle_fname(), json.dumps(self.get_state()))

        def _save_trial(self, trial: Any) -> None:
            path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
            write_atomically(path, json.dumps(trial.get_state()))

    AtomicOracle.__name__ = oracle_cls.__name__
    return AtomicOracle


class KerasTunerStrategy(Strategy):
    """Drives a `keras_tuner.Oracle` through create_trial / update_trial / end_trial. For a
    model that defines its space, the oracle's space grows as KerasTuner's does: a name the
    model first asks for in a trial takes its default there and is searched from then on."""

    conditional = True

    def __init__(self, settings: Any, context: StrategyContext) -> None:
        super().__init__(settings, context)
        import keras_tuner as kt

        hp = kt.HyperParameters()
        context.space.declare_keras_tuner(hp)
        objective = kt.Objective(context.objective.name, context.objective.direction)
        self.oracle = self.make_oracle(kt, objective, hp, derive(context.seed, "oracle"))
        self.oracle.max_consecutive_failed_trials = None  # failed trials never stop a study
        self.oracle._set_project_dir(str(context.workdir), PROJECT)
        self.oracle.verbose = 0
        if context.resume and (context.workdir / PROJECT / "oracle.json").exists():
            self.oracle.reload()

    @abstractmethod
    def make_oracle(self, kt: Any, objective: Any, hp: Any, seed: int) -> Any:
        """The KerasTuner oracle that proposes the trials (`kt` is the `keras_tuner` module)."""

    def ask(self) -> Proposal | None:
        trial = self.oracle.create_trial(TUNER_ID)
        if trial.status != "RUNNING":  # STOPPED, or IDLE with no other worker to wait for
            return None
        values = dict(trial.hyperparameters.values)
        internals = {
            k.split("/", 1)[1]: values.pop(k) for k in list(values) if k.startswith("tuner/")
        }
        return Proposal(
            trial_id=trial.trial_id,
            values=values,
            epochs=internals.get("epochs"),
            initial_epoch=internals.get("initial_epoch", 0),
            warm_start_from=internals.get("trial_id"),
            tags={f"tuner.{k}": str(v) for k, v in internals.items()},
            handle=trial,
            hp=trial.hyperparameters,
        )

    def tell(self, proposal: Proposal, outcome: Outcome) -> None:
        trial = proposal.handle
        if self.context.define_by_run and proposal.hp is not trial.hyperparameters:
            trial.hyperparameters.merge(proposal.hp.space, overwrite=False)  # names new to it
            trial.hyperparameters.values.update(proposal.hp.values)
        if outcome.status == "FAILED" or outcome.score is None:
            trial.status, trial.message = "FAILED", outcome.message
        else:
            self.oracle.update_trial(trial.trial_id, {self.context.objective.name: outcome.score})
            trial.status = "COMPLETED"
        self.oracle.end_trial(trial)


@dataclass
class HyperbandSettings:
    max_epochs: int = 9
    factor: int = 3
    hyperband_iterations: int = 1

    def check(self, path: str) -> None:
        if self.factor < 2:
            raise ConfigError(f"{path}.factor: must be at least 2, got {self.factor}")
        if self.max_epochs < 1 or self.hyperband_iterations < 1:
            raise ConfigError(f"{path}: max_epochs and hyperband_iterations must be >= 1")


class Hyperband(KerasTunerStrategy):
    """Successive halving over brackets; later rounds continue the best trials' weights.

    >>> # python -m tunelab strategy=hyperband strategy.max_epochs=27 strategy.factor=3
    """

    Settings = HyperbandSettings
    keeps_checkpoints = True
    in_parallel_use = "strategy=tpe strategy.pruner=hyperband (Optuna's Hyperband pruner)"

    def make_oracle(self, kt: Any, objective: Any, hp: Any, seed: int) -> Any:
        s = self.settings
        return atomic(kt.oracles.HyperbandOracle)(
            objective=objective,
            max_epochs=s.max_epochs,
            factor=s.factor,
            hyperband_iterations=s.hyperband_iterations,
            seed=seed,
            hyperparameters=hp,
        )

    @property
    def expected_trials(self) -> int:
        o = self.oracle
        per_iteration = sum(
            o._get_size(b, r) for b in range(o._get_num_brackets()) for r in range(b + 1)
        )
        return per_iteration * self.settings.hyperband_iterations


@dataclass
class RandomSettings:
    max_trials: int = 10

    def check(self, path: str) -> None:
        if self.max_trials < 1:
            raise ConfigError(f"{path}.max_trials: must be at least 1, got {self.max_trials}")


class RandomSearch(KerasTunerStrategy):
    """Independent uniform draws from the space (log-uniform where `log: true`)."""

    Settings = RandomSettings
    in_parallel_use = "strategy=qmc (quasi-random points) or strategy=tpe"

    def make_oracle(self, kt: Any, objective: Any, hp: Any, seed: int) -> Any:
        return atomic(kt.oracles.RandomSearchOracle)(
            objective=objective, max_trials=self.settings.max_trials, seed=seed, hyperparameters=hp
        )

    @property
    def expected_trials(self) -> int:
        return min(self.settings.max_trials, _finite(self.context.space.size()))


@dataclass
class BayesianSettings(RandomSettings):
    num_initial_points: int | None = 3  # null: KerasTuner's (3 per dimension of the space)
    alpha: float = 1e-4
    beta: float = 2.6


class Bayesian(KerasTunerStrategy):
    """Gaussian-process Bayesian optimisation: KerasTuner's upper-confidence-bound oracle,
    proposing exactly what KerasTuner's proposes in about a third of the time
    (`keras_bayesian_oracle`)."""

    Settings = BayesianSettings
    in_parallel_use = "strategy=optuna_gp (Optuna's Gaussian process)"

    def make_oracle(self, kt: Any, objective: Any, hp: Any, seed: int) -> Any:
        from tunelab.strategies.keras_bayesian_oracle import quick_bayesian_oracle

        s = self.settings
        oracle_cls = quick_bayesian_oracle(kt.oracles.BayesianOptimizationOracle)
        return atomic(oracle_cls)(
            objective=objective,
            max_trials=s.max_trials,
            num_initial_points=s.num_initial_points,
            alpha=s.alpha,
            beta=s.beta,
            seed=seed,
            hyperparameters=hp,
        )

    @property
    def expected_trials(self) -> int:
        return min(self.settings.max_trials, _finite(self.context.space.size()))


def _finite(size: float) -> int:
    return int(size) if math.isfinite(size) else 2**31
