"""Optuna's samplers as strategies: the study, its storage, pruner and resume live here; each
subclass names its sampler (`make_sampler`), e.g. TPE, CMA-ES, Sobol or a Gaussian process."""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any, Literal

from tunelab.files import locked
from tunelab.schema import ConfigError
from tunelab.seeding import derive
from tunelab.strategies.base import Outcome, Proposal, Strategy, StrategyContext
from tunelab.tracking.reachability import masked


@dataclass
class OptunaSettings:
    n_trials: int = 20
    n_startup_trials: int = 5  # trials before pruning starts (and the sampler's own warm-up)
    pruner: Literal["none", "median", "hyperband"] = "median"
    # null: a SQLite file in the study's work folder (resumable); "memory": in RAM only;
    # otherwise any SQLAlchemy URL (postgresql://…) shared by workers.
    storage: str | None = None

    def check(self, path: str) -> None:
        if self.n_trials < 1:
            raise ConfigError(f"{path}.n_trials: must be at least 1, got {self.n_trials}")


class OptunaStrategy(Strategy):
    """An Optuna study driven through ask / report / tell, with its pruner fed by per-epoch
    validation metrics. Trials a killed study left RUNNING are proposed again first, under
    their own numbers (suggesting again returns their stored values)."""

    Settings = OptunaSettings
    parallel = True

    def __init__(self, settings: OptunaSettings, context: StrategyContext) -> None:
        super().__init__(settings, context)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.check_space()
        url = settings.storage or f"sqlite:///{context.workdir / 'optuna.db'}"
        storage = None if url == "memory" else url
        name = context.workdir.name
        if storage and not context.resume:
            if settings.storage is None:  # the study folder's own file: start it afresh
                with contextlib.suppress(KeyError):  # no earlier study of that name
                    optuna.delete_study(study_name=name, storage=storage)
            elif name in optuna.get_all_study_names(storage):  # shared: maybe others' work
                raise ConfigError(
                    f"strategy.storage: an Optuna study named {name!r} already exists in "
                    f"{masked(storage)}; continue it with resume=true, or give this study another "
                    "study_name (a shared storage's studies are never deleted)"
                )
        self.study = optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=self.make_sampler(optuna, derive(context.seed, type(self).__name__.lower())),
            pruner=self._pruner(),
            direction="maximize" if context.objective.sign > 0 else "minimize",
            load_if_exists=True,
        )
        running = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        if context.joining:  # RUNNING trials are other workers' own
            running = []
        self.interrupted = [optuna.trial.Trial(self.study, t._trial_id) for t in running]

    def make_sampler(self, optuna: Any, seed: int) -> Any:
        """The Optuna sampler that proposes the trials."""
        raise NotImplementedError

    def check_space(self) -> None:
        """Refuse, with one line, a search space the sampler cannot handle."""

    def _pruner(self) -> Any:
        pruners = self.optuna.pruners
        if self.settings.pruner == "median":
            return pruners.MedianPruner(n_startup_trials=self.settings.n_startup_trials)
        if self.settings.pruner == "hyperband":
            return pruners.HyperbandPruner(min_resource=1, max_resource=self.context.epochs)
        return pruners.NopPruner()

    def _finished(self) -> int:
        states = self.optuna.trial.TrialState
        done = (states.COMPLETE, states.PRUNED, states.FAIL)
        return len(self.study.get_trials(deepcopy=False, states=done))

    def ask(self) -> Proposal | None:
        with self._one_at_a_time():
            if self.interrupted:
                trial = self.interrupted.pop(0)
            elif self._counted() >= self.settings.n_trials:
                return None
            else:
                trial = self.study.ask()
            values = self.context.space.suggest_optuna(trial)
        return Proposal(trial_id=str(trial.number), values=values, handle=trial)

    def _counted(self) -> int:
        """Trials that count towards `n_trials`: the finished ones, and with other workers
        the running ones too, so that together they run exactly `n_trials`."""
        if not self.context.shared:
            return self._finished()
        return len(self.study.get_trials(deepcopy=False))

    def _one_at_a_time(self) -> Any:
        """With other workers, one process at a time counts and asks, reports or tells (a lock
        file in the study folder, which local workers share; SQLite takes one writer)."""
        if not self.context.shared:
            return contextlib.nullcontext()
        return locked(self.context.workdir / "ask.lock")

    def report(self, proposal: Proposal, epoch: int, value: float) -> bool:
        with warnings.catch_warnings(), self._one_at_a_time():
            # an interrupted trial run again reports its epochs again
            warnings.filterwarnings("ignore", message="The reported value is ignored")
            proposal.handle.report(value, epoch)
            return proposal.handle.should_prune()

    def tell(self, proposal: Proposal, outcome: Outcome) -> None:
        states = self.optuna.trial.TrialState
        with self._one_at_a_time():
            if outcome.status == "PRUNED":
                self.study.tell(proposal.handle, state=states.PRUNED)
            elif outcome.status == "FAILED" or outcome.score is None:
                self.study.tell(proposal.handle, state=states.FAIL)
            else:
                self.study.tell(proposal.handle, outcome.score)

    @property
    def expected_trials(self) -> int:
        return self.settings.n_trials
