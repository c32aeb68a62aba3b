"""Strategies whose trials are all known up front: a grid or a designed experiment."""

from __future__ import annotations

import json
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from tunelab.files import write_atomically
from tunelab.seeding import derive
from tunelab.strategies.base import Outcome, Proposal, Strategy, StrategyContext
from tunelab.strategies.optuna_shared import (
    SharedTrials,
    outlasting_restarts,
    start_afresh,
    study_storage,
    told_once,
    waiting,
)

POINT = "point"  # the user attribute holding a queued trial's index in the plan
HEARTBEAT_SECONDS = 10  # a worker silent for 3 heartbeats has its point failed and queued again


class PlanSettings(Protocol):
    """What every fixed plan's settings hold."""

    randomize: bool  # run the points in a seeded random order instead of the standard one


@dataclass
class PlannedTrial:
    values: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)


class FixedPlan(Strategy):
    """A strategy whose trials are all known up front: a grid or a designed experiment.

    Subclasses implement `plan()`. Points run in plan order, or in a seeded random order when
    `settings.randomize` is true; finished points are remembered in the work folder so a resumed
    study runs only the rest. With `workers=N` the points not done wait, enqueued once, in the
    study's Optuna study, and every worker's ask takes the next; Optuna hands each to one
    process, and a dead worker's point is failed and enqueued again (`SharedTrials`).
    """

    parallel = True

    def __init__(self, settings: PlanSettings, context: StrategyContext) -> None:
        super().__init__(settings, context)
        self.points = self.plan()
        self.order = list(range(len(self.points)))
        if settings.randomize:
            np.random.default_rng(derive(context.seed, "run order")).shuffle(self.order)
        self.state_file = context.workdir / "plan_done.json"
        resumed = context.resume and self.state_file.exists()
        self.done: set[int] = set(json.loads(self.state_file.read_text())) if resumed else set()
        self.sharing: SharedTrials | None = None
        self.held: list[Any] = []  # the queue's trial this process took, until proposed
        if context.shared:
            self._enqueue([index for index in self.order if index not in self.done])

    def _enqueue(self, todo: list[int]) -> None:
        """The shared queue, which the study's process fills with `todo`, in run order, when
        it creates it; workers that join take from it, and a resumed study goes on with it."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        name = self.context.workdir.name
        url = study_storage(self.settings.storage, self.context.workdir)
        self.sharing = SharedTrials(
            url,
            HEARTBEAT_SECONDS,
            self.context.workdir,
            lambda trial: self._trial_id(trial.user_attrs[POINT]),
        )
        with self.sharing.lock():
            if not (self.context.resume or self.context.joining):
                start_afresh(
                    self.sharing.storage,
                    name,
                    self.settings.storage is not None,
                    self.context.continue_with,
                )
            created = name not in optuna.get_all_study_names(self.sharing.storage)
            self.queue = optuna.create_study(
                study_name=name, storage=self.sharing.storage, load_if_exists=True
            )
            if created and not self.context.joining:
                for index in todo:
                    self.queue.enqueue_trial({}, user_attrs={POINT: index})

    @abstractmethod
    def plan(self) -> list[PlannedTrial]:
        """Every trial of the study, in standard order."""

    @outlasting_restarts
    def ask(self) -> Proposal | None:
        if self.sharing is None:
            return next((self._proposal(i) for i in self.order if i not in self.done), None)
        with self.sharing.lock():
            trial = self.sharing.take(self.queue, self.held, self._next_point)
        if trial is None:
            return None
        self.sharing.started(trial)
        self.held.pop(0)
        return self._proposal(trial.user_attrs[POINT], trial)

    def _next_point(self) -> Any:
        return self.queue.ask() if waiting(self.queue) else None

    def _proposal(self, index: int, handle: Any = None) -> Proposal:
        point = self.points[index]
        params = {**point.params, "standard_order": index, "run_order": self.order.index(index)}
        return Proposal(self._trial_id(index), point.values, params=params, handle=handle)

    def _trial_id(self, index: int) -> str:
        return f"{index:0{len(str(len(self.points)))}d}"

    @outlasting_restarts
    def tell(self, proposal: Proposal, outcome: Outcome) -> None:
        if self.sharing is None:
            self.done.add(int(proposal.trial_id))
            write_atomically(self.state_file, json.dumps(sorted(self.done)))
            return
        from optuna.trial import TrialState

        self.sharing.ended(proposal.handle)
        with self.sharing.lock(), told_once():
            if outcome.status == "COMPLETE" and outcome.score is not None:
                self.queue.tell(proposal.handle, outcome.score)
            else:
                self.queue.tell(proposal.handle, state=TrialState.FAIL)

    def abandoned(self) -> dict[str, str]:
        return self.sharing.abandoned() if self.sharing else {}

    @outlasting_restarts
    def pending_elsewhere(self) -> bool:
        return self.sharing is not None and self.sharing.pending_elsewhere(self.queue)

    @property
    def expected_trials(self) -> int:
        return len(self.points)
