"""The runner: ask the strategy, run the proposal (`tunelab.trial`), tell the strategy; repeat,
then close the study (`tunelab.closing`).

A study keeps a private work folder (`tunelab.study_folder`) with its resolved config, a journal
of finished trials, the strategy's own state and checkpoints, so that `resume=true` continues an
interrupted study exactly where it stopped.

A trial is written in this order: its MLflow run ends (and every request of it has reached the
server), then its journal line, then the strategy is told. Interrupted before the journal line
(kill -9, SIGTERM, the tracking server gone), the strategy has not heard of the trial either and
proposes it again on resume; its unfinished run is deleted and it runs afresh. Interrupted
between the journal line and the strategy's record, the strategy proposes a trial the journal
already has: it is told the journaled outcome and the trial is not run again.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from tunelab import __version__, interrupts, joining, local_workers
from tunelab.closing import (
    Closing,
    StudySummary,
    log_design,
    log_extras,
    stop_if_every_trial_fails_alike,
)
from tunelab.config import StudyConfig
from tunelab.progress import TrialProgress
from tunelab.schema import ConfigError
from tunelab.strategies import Proposal, Strategy, StrategyContext
from tunelab.study_folder import StudyFolder, TrialRecord, flatten, study_folder, trial_count
from tunelab.tasks.base import Task
from tunelab.tracking.cleanup import SHARED
from tunelab.tracking.datasets import dataset_inputs
from tunelab.tracking.reachability import TrackingOutage
from tunelab.tracking.tracker import Tracker, start_artifact_worker
from tunelab.trial import TrialRunner

__all__ = ["Study", "StudySummary", "study_folder"]


@contextmanager
def collector_off_long_lived_objects() -> Iterator[None]:
    """Keep Python's garbage collector off the objects that exist when the trials start.

    Importing TensorFlow, Keras, KerasTuner and MLflow leaves hundreds of thousands of
    long-lived objects, and every full collection walks them all. `gc.freeze` sets them aside
    for the study (garbage among them waits until it ends); `gc.unfreeze` hands them back.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def git_commit() -> str:
    """The commit of tunelab's own source tree ("unknown" for an installed wheel)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class Study:
    """One configured study. `run()` trains every trial the strategy proposes."""

    def __init__(self, cfg: StudyConfig) -> None:
        self.cfg = cfg
        self.folder = StudyFolder(cfg)  # refuses a changed config before anything is logged
        self.storage_url = joining.portable_uri(
            joining.storage_url(cfg.strategy.settings, self.folder.path)
        )

    def run(self, started: float | None = None) -> StudySummary | None:
        """Create (or resume) the study and run trials; the summary once the study is closed,
        by this process or another worker. None with `workers=0`: the study then waits for
        workers from other machines (`tunelab worker`). `started`: when the caller's call
        began (`time.perf_counter()`), which the study's `wall_time_s` counts from."""
        started = time.perf_counter() if started is None else started
        cfg, folder = self.cfg, self.folder
        if folder.closed_before and not folder.extended:
            count = trial_count(cfg)
            more = f"extend it with a larger {count}, or " if count else ""
            raise ConfigError(
                f"resume: study {cfg.study_name!r} already finished (run {folder.meta['run_id']}); "
                f"{more}start a new one with {cfg.spell('resume', False)} or another study_name"
            )
        with local_workers.crew(folder.path, cfg.workers, self.storage_url) as crew:
            self._set_up()
            shared = {SHARED: "true"} if cfg.shared else {}  # its workers close it
            run_id = self.tracker.start_study(
                cfg.study_name,
                {**self.tags, "tunelab.kind": "study", **shared},
                flatten(cfg.fingerprint()),
                resume_run_id=folder.meta.get("run_id") if folder.resuming else None,
            )
            folder.save(run_id=run_id)
            if cfg.shared:  # what a worker on any machine joins with
                identity = {
                    "config": cfg.resolved,
                    "run_id": run_id,
                    "study_id": folder.meta["study_id"],
                    "tracking_uri": joining.portable_uri(self.tracker.tracking_uri),
                    "data": joining.data_fingerprint(self.data_path),
                }
                joining.publish(self.storage_url, folder.path.name, identity)
            try:
                if folder.resuming:
                    if cfg.shared:  # other workers' trials too
                        folder.reload_records(self.tracker.recorded_trials())
                    self.tracker.keep_only_trial_runs({r.run_id for r in folder.records})
                else:
                    self.tracker.log_text(
                        run_id, yaml.safe_dump(cfg.resolved), "config/resolved.yaml"
                    )
                    self.tracker.log_text(
                        run_id,
                        yaml.safe_dump(
                            {name: p.described() for name, p in self.space.params.items()},
                            sort_keys=False,
                        ),
                        "config/space.yaml",
                    )
                    self.tracker.log_params(run_id, self.data.sizes)  # beside the configured
                    self.tracker.log_inputs(run_id, self.data_inputs)
                    log_design(self.tracker, run_id, self.strategy.describe())
                self._prepare_task(run_id)
                crew.go()
                if cfg.workers == 0:  # the study waits for workers from other machines
                    self.tracker.leave()
                    return None
                summary = self._work_then_close(started)
                crew.wait()
                return summary or self._closed_elsewhere()
            except BaseException as error:
                self._end_runs_after(error)
                raise

    def work(self, identity: dict[str, Any], close: bool = False) -> StudySummary | None:
        """As a worker: run trials of the study `identity` names (read from its storage; this
        process's study folder is its own scratch) until none is left to start or running
        anywhere; the summary if this worker then closed the study. `close`: close it even if
        another worker claimed that and died."""
        self.folder.save(run_id=identity["run_id"], study_id=identity["study_id"])
        self._set_up(as_worker=True)
        self.tracker.join_study(self.folder.meta["run_id"])
        started = time.perf_counter()
        try:
            self._prepare_task(self.folder.meta["run_id"])
            summary = self._work_then_close(started, force=close)
            if summary is None:
                self.tracker.leave()
            return summary
        except BaseException as error:
            self._end_runs_after(error)
            raise

    def _work_then_close(self, started: float, force: bool = False) -> StudySummary | None:
        """Run trials; then, in a shared study, close it if this process is the first to
        claim that (every process tries once nothing is left anywhere; one wins)."""
        self._run_trials()
        if self.cfg.shared:
            if not joining.claim_close(self.storage_url, self.folder.path, force):
                return None
            self.folder.reload_records(self.tracker.recorded_trials())  # every worker's
        return self.closing.finish(started)

    def _closed_elsewhere(self) -> StudySummary:
        """The summary of this shared study once another worker has closed it."""
        closed = joining.wait_until_closed(self.storage_url, self.folder.path.name)
        self.tracker.leave()
        self.folder.reload_records(self.tracker.recorded_trials())
        self.folder.save(finished=True, registered=closed["registered"])
        return self.closing.summary(self.folder.best_record(), closed["registered"])

    def _run_trials(self) -> None:
        """Ask, run, record, tell until the strategy has no trial left, then wait while
        other workers still run trials, taking over any a dead worker left (the strategy
        proposes those again)."""
        cfg, folder = self.cfg, self.folder
        progress = TrialProgress(cfg, self.strategy.expected_trials, folder.records)
        with collector_off_long_lived_objects(), progress as bar:
            while True:
                interrupts.check()
                proposal = self.strategy.ask()
                self._end_abandoned_runs()
                if proposal is None:
                    if not self.strategy.pending_elsewhere():
                        break
                    time.sleep(1)
                    continue
                if recorded := folder.recorded(proposal.trial_id):
                    self._tell_recorded(proposal, recorded)
                    continue
                bar.advance(self.trials.run(proposal))
                stop_if_every_trial_fails_alike(self.cfg, self.folder.records)

    def _end_abandoned_runs(self) -> None:
        """The MLflow runs of trials a dead worker left RUNNING become KILLED, with why."""
        study_id = self.folder.meta["study_id"]
        for trial_id, reason in self.strategy.abandoned().items():
            self.tracker.kill_trial(f"{study_id}/{trial_id}", reason)

    def _end_runs_after(self, error: BaseException) -> None:
        """The open runs end KILLED (Ctrl-C, SIGTERM) or FAILED; a tracking server that stopped
        answering is left alone and named in one line."""
        if isinstance(error, KeyboardInterrupt):
            self.tracker.end_all("KILLED")
            return
        if outage := self.tracker.outage_in(error):
            self.tracker.abandon()
            raise TrackingOutage(
                f"{outage}; {len(self.folder.records)} trials are saved. Start the server "
                f"again and continue with {self.cfg.spell('resume', True)}"
            ) from None
        self.tracker.end_all("FAILED")

    def _set_up(self, as_worker: bool = False) -> None:
        """The strategy (a design it cannot make fails here, fast), the data, the task and the
        tracker; `as_worker`: as a worker on a study another process created."""
        cfg, folder = self.cfg, self.folder
        from tunelab.backend import quiet_tensorflow

        quiet_tensorflow()
        local_workers.pin_threads(cfg.workers)
        self.space = cfg.model.cls.searched_space(cfg.model.space)  # a user's model: built here
        self.strategy: Strategy = cfg.strategy.cls(
            cfg.strategy.settings,
            StrategyContext(
                space=self.space,
                objective=cfg.objective,
                seed=cfg.seed,
                workdir=folder.path,
                resume=folder.resuming,
                epochs=cfg.model.training.epochs,
                shared=cfg.shared or as_worker,
                joining=as_worker,
                worker=local_workers.label(),
                define_by_run=cfg.model.cls.defines_space,
                continue_with=cfg.spell("resume", True),
                name=cfg.strategy.name,
            ),
        )
        artifacts = start_artifact_worker(cfg.tracking)  # its imports overlap TensorFlow's
        try:
            from tunelab import train  # noqa: F401  (TensorFlow, imported while the worker starts)
            from tunelab.data import load_dataset

            self.data = load_dataset(cfg.dataset.cls, cfg.dataset.settings, cfg.seed)
            for notice in self.data.notices:
                print(f"tunelab: {notice}", file=sys.stderr)
            self.task: Task = cfg.model.cls.task(
                cfg.model.task, self.data, cfg.seed, Path(cfg.workdir).resolve()
            )
            self.task.check_objective(cfg.model.cls, cfg.model.hparams_for({}), cfg.objective)
            self.tracker = Tracker(cfg.tracking, artifacts)
            self.data_path = joining.data_path(cfg.dataset.settings)
            self.data_inputs = dataset_inputs(self.data, cfg.dataset.name, self.data_path)
        except BaseException:
            artifacts.terminate()
            raise
        self.tags = study_tags(self.cfg, self.folder.meta["study_id"])
        self.trials = TrialRunner(
            cfg, folder, self.strategy, self.task, self.tracker, self.data_inputs, self.tags
        )
        self.closing = Closing(
            cfg, folder, self.strategy, self.task, self.tracker, self.storage_url
        )

    def finished_summary(self) -> StudySummary | None:
        """With `resume=true`, the summary of this study if it had already finished (a chain's
        earlier stage); None if it still has to run."""
        meta = self.folder.meta
        if not self.folder.closed_before or self.folder.extended:
            return None
        best = self.folder.best_record()
        return StudySummary(
            study_id=meta["study_id"],
            run_id=meta["run_id"],
            best_score=best.score if best else None,
            best_values=best.values if best else None,
            trials=self.folder.records,
            registered=meta.get("registered"),
            ui_link=meta.get("ui_link", ""),
            tracking_uri=meta.get("tracking_uri", ""),
        )

    def _tell_recorded(self, proposal: Proposal, record: TrialRecord) -> None:
        """The strategy proposes a trial the journal has: the study stopped after the journal
        line and before the strategy's record. Tell it the journaled outcome; do not re-run."""
        self.strategy.tell(replace(proposal, values=record.values), record.outcome)

    def _prepare_task(self, run_id: str) -> None:
        """The task's one-off work; its shared models' runs are tagged on the study and on
        every trial."""
        extras = self.task.prepare()
        for notice in extras.notices:
            print(f"tunelab: {notice}", file=sys.stderr)
        shared_tags = {}
        for shared in extras.shared:
            shared_tags[f"tunelab.{shared.kind}.run_id"] = self.tracker.shared_model_run(shared)
            shared_tags[f"tunelab.{shared.kind}.key"] = shared.key
        if shared_tags:
            self.tags.update(shared_tags)
            self.tracker.set_tags(run_id, shared_tags)
        if not self.folder.resuming:
            log_extras(self.tracker, run_id, extras)


def study_tags(cfg: StudyConfig, study_id: str) -> dict[str, str]:
    """What every run of the study is tagged with: what it is, and what made it."""
    return {
        "tunelab.study_id": study_id,
        "tunelab.study_name": cfg.study_name,
        "tunelab.strategy": cfg.strategy.name,
        "tunelab.model": cfg.model.name,
        "tunelab.dataset": cfg.dataset.name,
        "tunelab.seed": str(cfg.seed),
        "tunelab.repetition": str(cfg.repetition),
        "tunelab.budget": cfg.budget,
        "tunelab.objective": f"{cfg.objective.name} ({cfg.objective.direction})",
        "tunelab.git_commit": git_commit(),
        "tunelab.version": __version__,
        **cfg.extra_tags,
    }
