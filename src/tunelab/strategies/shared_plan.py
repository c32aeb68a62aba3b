"""A fixed plan's points shared by `workers=N` processes: each point waits once in an Optuna
study (the study folder's SQLite file), and every worker's ask takes the next one. Optuna hands
each waiting trial to one process only, beats each running trial's heart and fails a silent one,
which is enqueued again; the plan itself stays the strategy's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.files import locked
from tunelab.strategies.optuna_base import Heartbeat, beating_storage

POINT = "point"  # the user attribute holding a queued trial's index in the plan
HEARTBEAT_SECONDS = 10  # one silent for 3 heartbeats is failed and queued again


class SharedPlan:
    """The queue of the plan's points not done yet. The coordinator (not `joining`) fills it
    afresh from `todo`, in run order; workers that join take from it."""

    def __init__(self, workdir: Path, todo: list[int], joining: bool) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna, self.lock_file = optuna, workdir / "ask.lock"
        self.storage = beating_storage(
            f"sqlite:///{workdir / 'plan_queue.db'}", HEARTBEAT_SECONDS, self._retry
        )
        self.heartbeats: dict[int, Heartbeat] = {}  # point -> this process's running trial
        self.abandoned_points: dict[int, str] = {}
        with self.lock():
            if not joining and "plan" in optuna.get_all_study_names(self.storage):
                optuna.delete_study(study_name="plan", storage=self.storage)  # rebuilt: resume
            self.study = optuna.create_study(
                study_name="plan", storage=self.storage, load_if_exists=True
            )
            if not joining:
                for index in todo:
                    self.study.enqueue_trial({}, user_attrs={POINT: index})

    def lock(self) -> Any:
        return locked(self.lock_file)

    def take(self) -> tuple[int, Any] | None:
        """The next waiting point and its trial, or None when none waits."""
        with self.lock():
            self.optuna.storages.fail_stale_trials(self.study)
            if not self._waiting():
                return None
            trial = self.study.ask()
        index = trial.user_attrs[POINT]
        self.heartbeats[index] = Heartbeat(
            self.storage, trial._trial_id, HEARTBEAT_SECONDS, self.lock
        )
        return index, trial

    def finish(self, index: int, trial: Any, score: float | None) -> None:
        """The point's trial ended, with its objective (None: it failed)."""
        if heartbeat := self.heartbeats.pop(index, None):
            heartbeat.stop()
        with self.lock():
            if score is None:
                self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(trial, score)

    def _waiting(self) -> bool:
        waiting = (self.optuna.trial.TrialState.WAITING,)
        return bool(self.study.get_trials(deepcopy=False, states=waiting))

    def _retry(self, study: Any, trial: Any) -> None:
        silent = 3 * HEARTBEAT_SECONDS
        self.abandoned_points[trial.user_attrs[POINT]] = (
            f"its worker stopped (no heartbeat for {silent} s); the design point was queued "
            "again")  # fmt: skip
        self.optuna.storages.RetryFailedTrialCallback(max_retry=3)(study, trial)

    def abandoned(self) -> dict[int, str]:
        found, self.abandoned_points = self.abandoned_points, {}
        return found

    def pending_elsewhere(self) -> bool:
        running = (self.optuna.trial.TrialState.RUNNING,)
        with self.lock():
            trials = self.study.get_trials(deepcopy=False, states=running)
            return self._waiting() or any(t.user_attrs[POINT] not in self.heartbeats
                                          for t in trials)  # fmt: skip
