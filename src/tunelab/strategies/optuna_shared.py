"""What the processes sharing one Optuna study share: its storage, a lock they take turns on,
each running trial's heartbeat, and retries through a database that restarts. Used by the Optuna
strategy (`optuna_study`), the fixed plans' workers (`plan`) and `tunelab worker` (`joining`)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

from tunelab.files import locked
from tunelab.schema import ConfigError, StudyFailed
from tunelab.tracking.reachability import masked

F = TypeVar("F", bound=Callable[..., Any])
RESTART_SECONDS = 120  # how long a study waits for its database to come back


def outlasting_restarts(function: F) -> F:
    """`function`, called again every second while the study's database cannot be reached (a
    restart, a failover), for up to RESTART_SECONDS; a lock it took is released with the lost
    connection and taken again."""

    @functools.wraps(function)
    def again(*args: Any, **kwargs: Any) -> Any:
        import sqlalchemy

        deadline = time.monotonic() + RESTART_SECONDS
        while True:
            try:
                return function(*args, **kwargs)
            except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as error:
                if time.monotonic() > deadline:
                    reason = str(error.orig).strip().splitlines()[0] if error.orig else error
                    raise StudyFailed(
                        f"the study's database stopped answering for {RESTART_SECONDS} s "
                        f"({reason}); start it again and continue with resume=true"
                    ) from None
                time.sleep(1)

    return cast(F, again)


@contextlib.contextmanager
def told_once() -> Iterator[None]:
    """A tell the database recorded before its connection was lost is not an error when it
    is sent again."""
    import optuna

    with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
        yield


def study_storage(storage: str | None, workdir: Path) -> str:
    """Where a study's Optuna study lives: `strategy.storage`, or the study folder's file."""
    return storage or f"sqlite:///{workdir / 'optuna.db'}"


def start_afresh(storage: Any, name: str, given: bool, continue_with: str = "resume=true") -> None:
    """Make room for a new study `name` (not resumed, not joined): an earlier one in the study
    folder's own file is deleted; one in a storage given by `strategy.storage` is refused in
    one line (a shared storage's studies may be others' work and are never deleted)."""
    import optuna

    if name not in optuna.get_all_study_names(storage):
        return
    if given:
        url = storage if isinstance(storage, str) else storage.url
        raise ConfigError(
            f"strategy.storage: an Optuna study named {name!r} already exists in "
            f"{masked(url)}; continue it with {continue_with}, or give this study another "
            "study_name (a shared storage's studies are never deleted)"
        )
    optuna.delete_study(study_name=name, storage=storage)


def counted(trials: list[Any]) -> int:
    """How many of a shared study's `trials` count towards its total: all but the earlier
    attempts of a retried trial. A retry that died too is in its own retry's history, though
    Optuna's `retried_trial_number` names only the first attempt."""
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    return sum(t.number not in retried for t in trials)


def first_held(held: list[Any], new: Callable[[], Any]) -> Any:
    """The first of `held`; else `new()`, held first (None if it is None)."""
    if not held and (trial := new()) is not None:
        held.insert(0, trial)
    return held[0] if held else None


def trial_number(trial: Any) -> str:
    return str(trial.number)


def waiting(study: Any) -> bool:
    """Whether trials wait in `study`'s queue (enqueued, or a dead worker's, enqueued again)."""
    import optuna

    return bool(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)))


class SharedTrials:
    """What several processes running trials of one Optuna study share: one process at a time
    counts and asks, reports or tells (`lock`, see `storage_lock`), each running trial beats
    its heart, and a trial whose process went silent for 3 heartbeats is failed and enqueued
    again by Optuna's own `RetryFailedTrialCallback`. `trial_id(trial)` names a trial as the
    study does."""

    def __init__(
        self, url: str, seconds: int, workdir: Path, trial_id: Callable[[Any], str]
    ) -> None:
        self.storage = beating_storage(url, seconds, self._retry)
        self.seconds, self.trial_id = seconds, trial_id
        self.lock: Lock = storage_lock(url, workdir)
        self.heartbeats: dict[int, Heartbeat] = {}  # this process's running trials, by number
        self.abandoned_trials: dict[str, str] = {}  # failed for a silent heartbeat: why

    def take(self, study: Any, held: list[Any], new: Callable[[], Any]) -> Any:
        """Under the lock, the trial to propose next, its heartbeat recorded at once: the
        first of `held` (this process's) still RUNNING; else one that an ask the database cut
        short inside Optuna left RUNNING without a heartbeat, which no process runs; else
        `new()` (None if it is None). The caller keeps it first in `held` until proposed."""
        import optuna

        optuna.storages.fail_stale_trials(study)  # a dead worker's: failed, enqueued again
        running = optuna.trial.TrialState.RUNNING
        while held and self.storage.get_trial(held[0]._trial_id).state != running:
            held.pop(0)  # failed as stale while the database was away
        if not held and (orphan := self._unbeaten(study)) is not None:
            held.insert(0, optuna.trial.Trial(study, orphan))
        trial = first_held(held, new)
        if trial is not None:
            self.storage.record_heartbeat(trial._trial_id)
        return trial

    def _unbeaten(self, study: Any) -> int | None:
        """A RUNNING trial of `study` that never had a heartbeat (every trial gets one in the
        lock hold that took it), by Optuna's own tables."""
        import sqlalchemy
        from optuna.storages._rdb import models
        from optuna.trial import TrialState

        trial, beat = models.TrialModel, models.TrialHeartbeatModel
        query = (
            sqlalchemy.select(trial.trial_id)
            .outerjoin(beat, beat.trial_id == trial.trial_id)
            .where(
                trial.study_id == self.storage.get_study_id_from_name(study.study_name),
                trial.state == TrialState.RUNNING,
                beat.trial_id.is_(None),
            )
            .order_by(trial.number)
            .limit(1)
        )
        with self.storage.engine.connect() as connection:
            return connection.execute(query).scalar()

    def started(self, trial: Any) -> None:
        self.heartbeats[trial.number] = Heartbeat(
            self.storage, trial._trial_id, self.seconds, self.lock
        )

    def ended(self, trial: Any) -> None:
        if heartbeat := self.heartbeats.pop(trial.number, None):
            heartbeat.stop()

    def _retry(self, study: Any, trial: Any) -> None:
        """Optuna failed a trial whose worker stopped beating: enqueue it again, and note it
        for the study, which ends its MLflow run."""
        import optuna

        self.abandoned_trials[self.trial_id(trial)] = (
            f"its worker stopped (no heartbeat for {3 * self.seconds} s); Optuna failed the "
            "trial and enqueued it again"
        )
        optuna.storages.RetryFailedTrialCallback(max_retry=3)(study, trial)

    def abandoned(self) -> dict[str, str]:
        found, self.abandoned_trials = self.abandoned_trials, {}
        return found

    def pending_elsewhere(self, study: Any) -> bool:
        """Whether other processes still run trials of `study`, or trials wait in its queue."""
        import optuna

        running = (optuna.trial.TrialState.RUNNING,)
        with self.lock():
            trials = study.get_trials(deepcopy=False, states=running)
            return any(t.number not in self.heartbeats for t in trials) or waiting(study)


Lock = Callable[[], contextlib.AbstractContextManager[Any]]


def storage_lock(url: str, workdir: Path) -> Lock:
    """The lock that processes sharing the study at `url` take turns on, wherever they run: a
    PostgreSQL advisory lock named after the study (released by the server if the process
    dies), a lock file beside a SQLite file, or else a lock file in the study folder (workers
    on this machine only)."""
    if url.startswith("sqlite:///"):
        return partial(locked, f"{url.removeprefix('sqlite:///')}.lock")
    if url.startswith("postgresql"):
        return partial(advisory_lock, url, f"tunelab:{workdir.name}")
    return partial(locked, workdir / "ask.lock")


@contextlib.contextmanager
def advisory_lock(url: str, name: str) -> Iterator[None]:
    """Hold PostgreSQL's session advisory lock on `name` (hashed to 64 bits) in the block."""
    import sqlalchemy

    key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)
    with _engine(url).connect() as connection:
        connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})


@functools.cache
def _engine(url: str) -> Any:
    import sqlalchemy

    return sqlalchemy.create_engine(url, pool_pre_ping=True)


def beating_storage(url: str, seconds: int, on_stale: Callable[[Any, Any], None]) -> Any:
    """An RDB storage whose trials need a heartbeat every `seconds`; one silent for 3 is failed
    by the next `fail_stale_trials` and handed to `on_stale(study, trial)`."""
    import optuna

    # the heartbeat is experimental in Optuna and meant for `optimize`; we drive it
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
    return optuna.storages.RDBStorage(
        url,
        heartbeat_interval=seconds,
        grace_period=3 * seconds,
        heartbeat_stale_trial_callback=on_stale,
        engine_kwargs={"pool_pre_ping": True},  # connections outlive a database restart
    )


class Heartbeat:
    """Records a running trial's heartbeat in `storage` every `seconds` from a thread, under
    `lock`, so that the other workers see it alive (Optuna's heartbeat is driven by `optimize`;
    with ask / tell it is ours to send)."""

    def __init__(self, storage: Any, trial_id: int, seconds: int, lock: Lock) -> None:
        self.storage, self.trial_id, self.seconds, self.lock = storage, trial_id, seconds, lock
        self.stopped = threading.Event()
        self.beat()
        self.thread = threading.Thread(target=self._run, daemon=True, name="tunelab-heartbeat")
        self.thread.start()

    def beat(self) -> None:
        with self.lock():
            self.storage.record_heartbeat(self.trial_id)

    def _run(self) -> None:
        while not self.stopped.wait(self.seconds):
            with contextlib.suppress(Exception):  # a missed beat is not the trial's failure
                self.beat()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()
