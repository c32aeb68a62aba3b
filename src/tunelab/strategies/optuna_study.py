"""Optuna's samplers as one strategy: an Optuna study driven through ask / report / tell.

The sampler and the pruner are `_target_` mappings that Hydra's `instantiate` builds, so each
Optuna strategy is a YAML (`conf/strategy/tpe.yaml`, `cmaes.yaml`, `qmc.yaml`, `optuna_gp.yaml`)
and any sampler or pruner of Optuna's, or of your own, is one more::

    sampler:
      _target_: optuna.samplers.NSGAIISampler
    pruner:
      _target_: optuna.pruners.PercentilePruner
      percentile: 25.0

Each is given those of `seed`, `study_seed`, `n_startup_trials`, `space` (the sampler) and
`n_startup_trials`, `max_resource` (the pruner) that it takes and its mapping does not set.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tunelab.schema import ConfigError, one_line
from tunelab.seeding import derive
from tunelab.strategies.base import Outcome, Proposal, Strategy, StrategyContext
from tunelab.strategies.optuna_shared import (
    SharedTrials,
    counted,
    first_held,
    outlasting_restarts,
    start_afresh,
    study_storage,
    told_once,
    trial_number,
    waiting,
)

# `pruner: <name>`: Optuna's pruners by the names tunelab has always given them
PRUNERS: dict[str, dict[str, Any]] = {
    "none": {"_target_": "optuna.pruners.NopPruner"},
    "median": {"_target_": "optuna.pruners.MedianPruner"},
    # asynchronous successive halving: never waits for a rung to fill (workers)
    "asha": {
        "_target_": "optuna.pruners.SuccessiveHalvingPruner",
        "min_resource": 1,
        "reduction_factor": 3,
    },
    "hyperband": {"_target_": "optuna.pruners.HyperbandPruner", "min_resource": 1},
}


@dataclass
class OptunaSettings:
    # the sampler that proposes the trials, built by hydra.utils.instantiate
    sampler: dict[str, Any] = field(
        default_factory=lambda: {"_target_": "optuna.samplers.TPESampler"}
    )
    max_trials: int = 20
    n_startup_trials: int = 5  # trials before pruning starts (and the sampler's own warm-up)
    # none | median | asha | hyperband, or an Optuna pruner's `_target_` mapping
    pruner: str | dict[str, Any] = "median"
    # null: a SQLite file in the study's work folder (resumable); "memory": in RAM only;
    # otherwise any SQLAlchemy URL (postgresql://…) shared by workers.
    storage: str | None = None
    # with workers: each trial's heartbeat; one silent for 3 heartbeats is failed and retried
    heartbeat_seconds: int = 10

    def check(self, path: str) -> None:
        if self.max_trials < 1:
            raise ConfigError(f"{path}.max_trials: must be at least 1, got {self.max_trials}")
        if self.heartbeat_seconds < 1:
            raise ConfigError(
                f"{path}.heartbeat_seconds: must be at least 1, got {self.heartbeat_seconds}"
            )
        if not isinstance(self.sampler.get("_target_"), str):
            raise ConfigError(
                f"{path}.sampler._target_: missing; name the sampler's class, e.g. "
                "optuna.samplers.TPESampler"
            )
        if isinstance(self.pruner, str) and self.pruner not in PRUNERS:
            raise ConfigError(
                f"{path}.pruner: {self.pruner!r} is not valid; valid choices: "
                f"{', '.join(PRUNERS)}, or a mapping with an Optuna pruner's _target_"
            )
        if isinstance(self.pruner, dict) and not isinstance(self.pruner.get("_target_"), str):
            raise ConfigError(f"{path}.pruner._target_: missing; name the pruner's class")


def instantiated(config: Mapping[str, Any], path: str, **offered: Any) -> Any:
    """The object `config` (a `_target_` mapping) describes, built by Hydra's `instantiate`,
    given those of `offered` that its target takes and `config` does not set. A target that
    cannot be imported, or arguments it does not take, fail in one line naming `path`."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        made = instantiate(dict(config), _partial_=True)
    except InstantiationException as error:
        raise ConfigError(f"{path}._target_: {one_line(str(error))}") from None
    signature = inspect.signature(made.func)
    extra = {
        k: v for k, v in offered.items() if k in signature.parameters and k not in made.keywords
    }
    try:
        signature.bind(*made.args, **made.keywords, **extra)
    except TypeError as error:
        raise ConfigError(f"{path}: {config['_target_']} {error}") from None
    return made(**extra)


class OptunaStudy(Strategy):
    """An Optuna study driven through ask / report / tell, with its pruner fed by per-epoch
    validation metrics. Trials a killed study left RUNNING are proposed again first, under
    their own numbers (suggesting again returns their stored values), e.g.::

        python -m tunelab strategy=tpe strategy.max_trials=30 strategy.pruner=hyperband
    """

    Settings = OptunaSettings
    parallel = True
    conditional = True  # define-by-run: a parameter is drawn only where the model asks for it

    def __init__(self, settings: OptunaSettings, context: StrategyContext) -> None:
        super().__init__(settings, context)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        sampler = instantiated(
            settings.sampler,
            "strategy.sampler",
            seed=self.process_seed,
            study_seed=self.study_seed,
            n_startup_trials=settings.n_startup_trials,
            space=context.space,
        )
        pruner = instantiated(
            PRUNERS[settings.pruner] if isinstance(settings.pruner, str) else settings.pruner,
            "strategy.pruner",
            n_startup_trials=settings.n_startup_trials,
            max_resource=context.epochs,
        )
        url = study_storage(settings.storage, context.workdir)
        storage: Any = None if url == "memory" else url
        name = context.workdir.name
        if storage and not context.resume and not context.joining:
            start_afresh(storage, name, settings.storage is not None, context.continue_with)
        if context.shared and storage is None:
            raise ConfigError(
                "strategy.storage: memory cannot be shared by workers; leave it null (the "
                "study folder's SQLite file) or give a database URL"
            )
        self.sharing = (
            SharedTrials(storage, settings.heartbeat_seconds, context.workdir, trial_number)
            if context.shared
            else None
        )
        self.study = optuna.create_study(
            study_name=name,
            storage=self.sharing.storage if self.sharing else storage,
            sampler=sampler,
            pruner=pruner,
            direction="maximize" if context.objective.sign > 0 else "minimize",
            load_if_exists=True,
        )
        running = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        if context.shared or context.joining:  # others' (a dead one's is failed and run again)
            running = []
        self.interrupted = [optuna.trial.Trial(self.study, t._trial_id) for t in running]

    @property
    def study_seed(self) -> int:
        """The sampler's seed in a study of one process, and what its workers share."""
        return derive(self.context.seed, self.context.name)

    @property
    def process_seed(self) -> int:
        """The study seed for the coordinator (or the only process); one of its own for each
        worker, whose sampler would otherwise draw what the others draw (a random start-up
        trial in every worker the same)."""
        if self.context.worker == "0":
            return self.study_seed
        return derive(self.context.seed, self.context.name, "worker", self.context.worker)

    def _finished(self) -> int:
        states = self.optuna.trial.TrialState
        done = (states.COMPLETE, states.PRUNED, states.FAIL)
        return len(self.study.get_trials(deepcopy=False, states=done))

    @outlasting_restarts
    def ask(self) -> Proposal | None:
        """The next trial: one a killed study left RUNNING, else a new one. It stays first in
        `interrupted` until its proposal is made, so that an ask the database cut short, sent
        again, proposes it rather than leave it RUNNING with no process to run it (the others
        would wait for it); in a shared study `SharedTrials.take` chooses it."""
        with self._one_at_a_time():
            if self.sharing:
                trial = self.sharing.take(self.study, self.interrupted, self._new_trial)
            else:
                trial = first_held(self.interrupted, self._new_trial)
            if trial is None:
                return None
            if self.context.define_by_run:  # drawn as the model asks for them
                from tunelab.hyperparameters import TrialHyperParameters, optuna_draw

                values, hp = {}, TrialHyperParameters(draw=optuna_draw(trial, self.context.space))
            else:
                values, hp = self.context.space.suggest_optuna(trial), None
        if self.sharing:  # (it takes the lock too)
            self.sharing.started(trial)
        self.interrupted.pop(0)
        return Proposal(trial_id=str(trial.number), values=values, handle=trial, hp=hp)

    def _new_trial(self) -> Any:
        """A new trial of the study, or None once it has all its trials."""
        if self._counted() < self.settings.max_trials or waiting(self.study):
            return self.study.ask()
        return None

    def _counted(self) -> int:
        """Trials that count towards `max_trials`: the finished ones, and with other workers
        the running and waiting ones too (but not a dead worker's trial that was retried), so
        that together they run exactly `max_trials`."""
        if not self.sharing:
            return self._finished()
        return counted(self.study.get_trials(deepcopy=False))

    def abandoned(self) -> dict[str, str]:
        return self.sharing.abandoned() if self.sharing else {}

    @outlasting_restarts
    def pending_elsewhere(self) -> bool:
        return self.sharing is not None and self.sharing.pending_elsewhere(self.study)

    def _one_at_a_time(self) -> Any:
        return self.sharing.lock() if self.sharing else contextlib.nullcontext()

    @outlasting_restarts
    def report(self, proposal: Proposal, epoch: int, value: float) -> bool:
        with warnings.catch_warnings(), self._one_at_a_time():
            # an interrupted trial run again reports its epochs again
            warnings.filterwarnings("ignore", message="The reported value is ignored")
            proposal.handle.report(value, epoch)
            return proposal.handle.should_prune()

    @outlasting_restarts
    def tell(self, proposal: Proposal, outcome: Outcome) -> None:
        states = self.optuna.trial.TrialState
        if self.sharing:
            self.sharing.ended(proposal.handle)
        with self._one_at_a_time(), told_once():
            if outcome.status == "PRUNED":
                self.study.tell(proposal.handle, state=states.PRUNED)
            elif outcome.status == "FAILED" or outcome.score is None:
                self.study.tell(proposal.handle, state=states.FAIL)
            else:
                self.study.tell(proposal.handle, outcome.score)

    @property
    def expected_trials(self) -> int:
        return self.settings.max_trials
