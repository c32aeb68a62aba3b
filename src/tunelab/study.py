"""The runner: ask the strategy, train the proposal, record it, tell the strategy; repeat.

A study keeps a private work folder (`<workdir>/<study_name>/`) with its resolved config, a
journal of finished trials, the strategy's own state and checkpoints, so that `resume=true`
continues an interrupted study exactly where it stopped.

A trial is written in this order: its MLflow run ends (and every request of it has reached the
server), then its journal line, then the strategy is told. Interrupted before the journal line
(kill -9, SIGTERM, the tracking server gone), the strategy has not heard of the trial either and
proposes it again on resume; its unfinished run is deleted and it runs afresh. Interrupted
between the journal line and the strategy's record, the strategy proposes a trial the journal
already has: it is told the journaled outcome and the trial is not run again.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import yaml

from tunelab import __version__, faults, interrupts, joining, local_workers, plots
from tunelab.config import StudyConfig, TrackingSettings
from tunelab.files import write_atomically
from tunelab.progress import TrialProgress
from tunelab.schema import ConfigError, ModelError, StudyFailed, one_line
from tunelab.seeding import derive
from tunelab.strategies import Outcome, Proposal, Strategy, StrategyContext
from tunelab.tasks.base import StudyExtras, Task
from tunelab.tracking.cleanup import SHARED
from tunelab.tracking.datasets import dataset_inputs
from tunelab.tracking.reachability import TrackingOutage, masked
from tunelab.tracking.tracker import Run, Tracker, run_id, start_artifact_worker

if TYPE_CHECKING:  # train imports TensorFlow; the study imports it only in run()
    from tunelab.train import Fit


@dataclass
class TrialRecord:
    """One finished trial, as the journal and the best-so-far table keep it."""

    trial_index: int
    trial_id: str
    run_id: str
    status: Literal["COMPLETE", "PRUNED", "FAILED"]
    score: float | None
    epochs_trained: int
    cumulative_epochs: int
    best_so_far: float | None
    wall_time: float
    values: dict[str, Any]
    reason: str = ""  # why a FAILED trial failed

    @property
    def outcome(self) -> Outcome:
        return Outcome(self.status, self.score, self.epochs_trained, self.reason)


@dataclass
class StudySummary:
    study_id: str
    run_id: str
    best_score: float | None
    best_values: dict[str, Any] | None
    trials: list[TrialRecord]
    registered: dict[str, Any] | None
    ui_link: str
    tracking_uri: str


TRIAL_COUNTS = ("strategy.max_trials", "strategy.n_trials")  # a resumed study may raise them


def study_folder(workdir: str | Path, study_name: str, tracking: TrackingSettings) -> Path:
    """`<workdir>/<store>/<study_name>`: the folder of the study of that name in its tracking
    store and experiment (`<store>` a hash of both, its `store.json` saying which), so that
    same-named studies in two stores keep apart."""
    import mlflow

    uri = joining.portable_uri(tracking.uri or mlflow.get_tracking_uri())
    key = hashlib.sha256(f"{uri}\n{tracking.experiment}".encode()).hexdigest()[:12]
    store = Path(workdir).resolve() / key
    if not (store / "store.json").exists():
        store.mkdir(parents=True, exist_ok=True)
        described = {"tracking_uri": masked(uri), "experiment": tracking.experiment}
        write_atomically(store / "store.json", json.dumps(described, indent=1))
    return store / study_name


class StudyFolder:
    """The study's work folder (`study_folder`): `study.json` (identity, config),
    `trials.jsonl` (journal)."""

    def __init__(self, cfg: StudyConfig) -> None:
        self.path = study_folder(cfg.workdir, cfg.study_name, cfg.tracking)
        self.meta_file = self.path / "study.json"
        self.journal_file = self.path / "trials.jsonl"
        self.meta: dict[str, Any] = {}
        self.objective = cfg.objective
        self.records: list[TrialRecord] = []
        self.resuming = cfg.resume and self.meta_file.exists()
        self.extended = False  # resumed with more trials than it had
        self.closed_before = False  # resumed after it had finished (extended, or refused)
        if self.resuming:
            self.meta = json.loads(self.meta_file.read_text())
            self.closed_before = bool(self.meta.get("finished"))
            self.extended = _refuse_changed_config(self.meta["fingerprint"], cfg)
            self.meta["fingerprint"] = cfg.fingerprint()
            if self.journal_file.exists():
                lines = self.journal_file.read_text().splitlines()
                self.records = [TrialRecord(**json.loads(line)) for line in lines if line]
        else:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path.mkdir(parents=True)
            self.meta = {
                "study_id": f"{cfg.study_name}-{uuid.uuid4().hex[:8]}",
                "config_hash": cfg.config_hash(),
                "fingerprint": cfg.fingerprint(),
                "finished": False,
            }

    def save(self, **updates: Any) -> None:
        self.meta.update(updates)
        write_atomically(self.meta_file, json.dumps(self.meta, indent=1, default=str))

    def journal(self, record: TrialRecord) -> None:
        self.records.append(record)
        with self.journal_file.open("a") as f:
            f.write(json.dumps(asdict(record), default=str) + "\n")

    def recorded(self, trial_id: str) -> TrialRecord | None:
        return next((r for r in self.records if r.trial_id == trial_id), None)

    def checkpoint(self, trial_id: str) -> Path:
        folder = self.path / "checkpoints"
        folder.mkdir(exist_ok=True)
        return folder / f"{trial_id}.weights.npz"

    def best_weights(self, trial_id: str) -> Path:
        """The weights of a trial that was the best when it finished (the last one of them is
        the study's best; with several workers, any of them may be)."""
        folder = self.path / "best"
        folder.mkdir(exist_ok=True)
        return folder / f"{trial_id}.weights.npz"

    def best_headline(self, trial_id: str) -> Path:
        return self.path / "best" / f"{trial_id}.headline.json"

    def reload_records(self, lines: list[dict[str, Any]]) -> None:
        """Every worker's journal lines, in the order they were written, renumbered and with
        the running best and epochs counted over them all."""
        self.records = [TrialRecord(**line) for line in lines]
        best, epochs = None, 0
        for index, record in enumerate(self.records):
            epochs += record.epochs_trained
            if record.score is not None and self.objective.better(record.score, best):
                best = record.score
            record.trial_index, record.best_so_far, record.cumulative_epochs = index, best, epochs


def _refuse_changed_config(before: dict[str, Any], cfg: StudyConfig) -> bool:
    """Refuse, naming the keys, a resumed study whose config differs from the one it started
    with; True where the only change is a larger trial count (the study is extended)."""
    a, b = _flatten(before), _flatten(cfg.fingerprint())
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    raised = [k for k in changed if k in TRIAL_COUNTS and _more(b.get(k), a.get(k))]
    refused = [k for k in changed if k not in raised]
    if refused:
        details = "; ".join(f"{cfg.name_of(k)}: {a.get(k)!r} -> {b.get(k)!r}" for k in refused[:8])
        counts = sorted({cfg.name_of(k) for k in TRIAL_COUNTS if k in b}) or ["the trial count"]
        raise ConfigError(
            f"resume: refused, the config differs from the earlier study at {details}. "
            f"Resume with the same settings (only {counts[0]} may grow), "
            f"or start afresh with {cfg.spell('resume', False)}."
        )
    return bool(raised)


def _more(now: Any, before: Any) -> bool:
    return isinstance(now, int) and isinstance(before, int) and now > before


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


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

    def run(self) -> StudySummary | None:
        """Create (or resume) the study and run trials; the summary once the study is closed,
        by this process or another worker. None with `workers=0`: the study then waits for
        workers from other machines (`tunelab worker`)."""
        cfg, folder = self.cfg, self.folder
        if folder.closed_before and not folder.extended:
            counts = [cfg.name_of(k) for k in TRIAL_COUNTS if k in _flatten(cfg.fingerprint())]
            more = f"extend it with a larger {counts[0]}, or " if counts else ""
            raise ConfigError(
                f"resume: study {cfg.study_name!r} already finished (run {folder.meta['run_id']}); "
                f"{more}start a new one with {cfg.spell('resume', False)} or another study_name"
            )
        with local_workers.crew(folder.path, cfg.workers, self.storage_url) as crew:
            self._set_up()
            started = time.perf_counter()
            shared = {SHARED: "true"} if cfg.shared else {}  # its workers close it
            run_id = self.tracker.start_study(
                cfg.study_name,
                {**self.tags, "tunelab.kind": "study", **shared},
                _flatten(cfg.fingerprint()),
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
                    self._log_design(self.strategy.describe())
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
        return self._finish(started)

    def _closed_elsewhere(self) -> StudySummary:
        """The summary of this shared study once another worker has closed it."""
        closed = joining.wait_until_closed(self.storage_url, self.folder.path.name)
        self.tracker.leave()
        self.folder.reload_records(self.tracker.recorded_trials())
        self.folder.save(finished=True, registered=closed["registered"])
        return self._summary(self._best_record(), closed["registered"])

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
                bar.advance(self._run_trial(proposal))
                self._stop_if_every_trial_fails_alike()

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
            ),
        )
        artifacts = start_artifact_worker(cfg.tracking)  # its imports overlap TensorFlow's
        try:
            from tunelab import train
            from tunelab.data import load_dataset

            self.train = train
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
        self.tags = self._tags()

    def finished_summary(self) -> StudySummary | None:
        """With `resume=true`, the summary of this study if it had already finished (a chain's
        earlier stage); None if it still has to run."""
        meta = self.folder.meta
        if not self.folder.closed_before or self.folder.extended:
            return None
        best = self._best_record()
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

    def _tags(self) -> dict[str, str]:
        cfg = self.cfg
        return {
            "tunelab.study_id": self.folder.meta["study_id"],
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

    def _stop_if_every_trial_fails_alike(self) -> None:
        """Raise StudyFailed once the first `stop_after_identical_failures` trials have all
        failed with the same error: the model cannot train, and more trials would only repeat
        it. Studies where some trials fail go on."""
        k = self.cfg.stop_after_identical_failures
        first = self.folder.records[:k]
        if (
            k
            and len(self.folder.records) == k
            and all(r.status == "FAILED" for r in first)
            and len({r.reason for r in first}) == 1
        ):
            raise StudyFailed(
                f"the first {k} trials all failed with the same error, so the "
                f"study stops: {one_line(first[0].reason)} (their MLflow runs are FAILED "
                f"with it; {self.cfg.spell('stop_after_identical_failures', 0)} goes on "
                "regardless)"
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
            self._log_extras(run_id, extras)

    def _log_extras(self, run_id: str, extras: StudyExtras) -> None:
        self.tracker.log_metrics(run_id, extras.metrics)
        for path, text in extras.texts.items():
            self.tracker.log_text(run_id, text, path)
        for path, (plot, data) in extras.figures.items():
            self.tracker.log_plot(run_id, path, plot, **data)

    # --- one trial -----------------------------------------------------------------------
    def _run_trial(self, proposal: Proposal) -> TrialRecord:
        cfg, folder, tracker = self.cfg, self.folder, self.tracker
        index = len(folder.records)  # this process's; the coordinator renumbers at the end
        epochs = proposal.epochs or cfg.model.training.epochs
        tags = {
            **self.tags,
            **proposal.tags,
            "tunelab.kind": "trial",
            "tunelab.trial_id": proposal.trial_id,
            "tunelab.tuned": ",".join(proposal.values),
        }
        if not cfg.shared:  # with workers, the journal's order numbers them at the end
            tags["tunelab.trial_index"] = str(index)
        else:
            tags["tunelab.worker"] = local_workers.label()
        if local_workers.GPU in os.environ:
            tags["tunelab.gpu"] = os.environ[local_workers.GPU]
        started = time.perf_counter()
        key = f"{folder.meta['study_id']}/{proposal.trial_id}"
        run = tracker.start_trial(f"trial-{proposal.trial_id}", key, tags)
        tracker.log_inputs(run, self.data_inputs)
        history: list[dict[str, float]] = []
        family, hp, logged = cfg.model.cls, None, {}
        try:
            hp = cfg.model.hparams_for(proposal.values, proposal.hp)
            logged = {
                **family.tuned_values(hp, proposal.values),
                **family.logged_params(hp),
                "epochs": epochs,
                "initial_epoch": proposal.initial_epoch,  # inert values too
                "early_stopping_patience": cfg.model.training.early_stopping_patience,
                **proposal.params,
            }
            tracker.log_params(run, logged)
            warm = folder.checkpoint(proposal.warm_start_from) if proposal.warm_start_from else None

            def on_epoch(epoch: int, metrics: dict[str, float], images: dict) -> bool:
                faults.reached("epoch", index + 1)
                interrupts.check()
                tracker.log_metrics(run, metrics, epoch)
                for key, image in images.items():
                    tracker.log_image(run, image, key, epoch)
                value = metrics.get(str(cfg.objective.name))
                return value is not None and self.strategy.report(proposal, epoch, value)

            fit = self.train.fit(
                cfg.model,
                hp,
                self.task,
                epochs=epochs,
                initial_epoch=proposal.initial_epoch,
                seed=derive(cfg.seed, "trial", proposal.trial_id if cfg.shared else index),
                objective=cfg.objective,
                on_epoch=on_epoch,
                warm_start=warm,
            )
            history = fit.history
            if fit.stop_reason == "nan":
                last = history[-1]
                loss = next(k for k in self.task.loss_metrics if not math.isfinite(last[k]))
                raise FloatingPointError(
                    f"{loss} became {last[loss]} (not finite) at epoch {last['epoch']}"
                )
            proposal = self._drawn(proposal, hp, run, logged)
            outcome = self._record_fit(run, fit, proposal, hp)
        except KeyboardInterrupt:
            raise
        except Exception as error:  # the trial fails; the study goes on, unless MLflow is gone
            if tracker.outage_in(error) or isinstance(error, ModelError):
                raise
            interrupts.check()  # a SIGTERM a library turned into this error
            if hp is not None:
                proposal = self._drawn(proposal, hp, run, logged)
            reason = f"{type(error).__name__}: {error}"[:4000]
            tracker.set_tags(
                run, {"tunelab.trial_status": "FAILED", "tunelab.failure_reason": reason}
            )
            tracker.end_run(run, "FAILED")
            outcome = Outcome("FAILED", None, len(history), reason)
        previous = folder.records[-1] if folder.records else None
        best = previous.best_so_far if previous else None
        if outcome.score is not None and cfg.objective.better(outcome.score, best):
            best = outcome.score
        record = TrialRecord(
            trial_index=index,
            trial_id=proposal.trial_id,
            run_id=run_id(run),
            status=outcome.status,
            score=outcome.score,
            epochs_trained=outcome.epochs_trained,
            cumulative_epochs=(previous.cumulative_epochs if previous else 0)
            + outcome.epochs_trained,
            best_so_far=best,
            wall_time=time.perf_counter() - started,
            values=proposal.values,
            reason=outcome.message,
        )
        tracker.record_trial(run, {**asdict(record), "reason": record.reason[:1000]})
        tracker.settle()  # the run has ended in MLflow, and says so, before the journal does
        folder.journal(record)
        faults.reached("journaled", len(folder.records))
        self.strategy.tell(proposal, outcome)
        return record

    def _drawn(self, proposal: Proposal, hp: Any, run: Run, logged: dict[str, Any]) -> Proposal:
        """The proposal with the values the trial was trained with (a model that defines its
        space asks for them as it builds), the ones not logged yet logged now."""
        values = self.cfg.model.cls.tuned_values(hp, proposal.values)
        self.tracker.log_params(run, {k: v for k, v in values.items() if k not in logged})
        return replace(proposal, values=values, hp=hp)

    def _record_fit(self, run: Run, fit: Fit, proposal: Proposal, hp: Any) -> Outcome:
        """Evaluate the trained model (the task says how) and log everything a trial leaves."""
        cfg, tracker, train = self.cfg, self.tracker, self.train
        evaluation = self.task.evaluate(fit.model, hp)
        score, best_epoch = self.task.score(fit.history, evaluation, cfg.objective)
        after = train.weight_snapshot(fit.model)
        metrics = {
            **evaluation.metrics,
            "epochs_trained": len(fit.history),
            "param_count": train.parameter_count(fit.model),
        }
        if score is not None:
            metrics[f"best_{cfg.objective.name}"] = score
            metrics["best_epoch"] = best_epoch
        for when, snapshot in (("before", fit.weights_before), ("after", after)):
            for layer, values in snapshot.items():
                for stat, value in train.weight_stats(values).items():
                    metrics[f"weights.{layer}.{stat}.{when}"] = value
        status: Literal["COMPLETE", "PRUNED"] = (
            "PRUNED" if fit.stop_reason == "pruned" else "COMPLETE"
        )
        tags = {
            "tunelab.trial_status": status,
            "tunelab.stop_reason": fit.stop_reason,
            **evaluation.tags,
        }
        tracker.log_metrics(run, metrics, tags=tags)
        for key, images in evaluation.step_images.items():
            for step, image in images:
                tracker.log_image(run, image, key, step)
        tracker.log_trial_artifacts(
            run,
            evaluation.artifacts,
            history=fit.history,
            curves=self.task.curves,
            weights_before=plots.subsample_weights(fit.weights_before),
            weights_after=plots.subsample_weights(after),
        )
        tracker.end_run(run, "FINISHED")
        if self.strategy.keeps_checkpoints:
            train.save_weights(fit.model, self.folder.checkpoint(proposal.trial_id))
        best = self._best_record()
        if score is not None and cfg.objective.better(score, best.score if best else None):
            weights = self.folder.best_weights(proposal.trial_id)
            headline = self.folder.best_headline(proposal.trial_id)
            train.save_weights(fit.model, weights)
            write_atomically(headline, json.dumps(evaluation.headline))
            if cfg.shared:  # for whichever worker closes the study
                tracker.log_best_weights(run, weights, headline)
        return Outcome(status, score, len(fit.history))

    def _best_record(self) -> TrialRecord | None:
        scored = [r for r in self.folder.records if r.score is not None]
        if not scored:
            return None
        return self.cfg.objective.best_of(scored, key=lambda r: cast(float, r.score))

    # --- the end of the study ------------------------------------------------------------
    def _finish(self, started: float) -> StudySummary:
        cfg, folder, tracker = self.cfg, self.folder, self.tracker
        run_id = folder.meta["run_id"]
        records = folder.records
        elapsed = (
            time.time() - tracker.study_started()  # since it began, whichever process closes it
            if cfg.shared
            else folder.meta.get("elapsed", 0.0) + time.perf_counter() - started
        )
        if records and all(r.status == "FAILED" for r in records):
            self._fail_study(records)
        best = self._best_record()
        counts = {s: sum(r.status == s for r in records) for s in ("COMPLETE", "PRUNED", "FAILED")}
        metrics = {
            "trials_completed": counts["COMPLETE"],
            "trials_pruned": counts["PRUNED"],
            "trials_failed": counts["FAILED"],
            "trials": len(records),
            "cumulative_epochs": records[-1].cumulative_epochs if records else 0,
            "wall_time_s": elapsed,
        }
        registered = None
        if best is not None:
            if not folder.best_headline(best.trial_id).exists():  # another worker's trial
                tracker.best_weights(best.run_id, folder.path)
            metrics[f"best_{cfg.objective.name}"] = best.score
            headline = json.loads(folder.best_headline(best.trial_id).read_text())
            metrics.update({f"best_trial_{key}": value for key, value in headline.items()})
            best_values = {f"best.{k}": v for k, v in best.values.items()}
            if folder.closed_before:  # logged when it first closed: params cannot change, tags can
                tracker.set_tags(run_id, best_values)
            else:
                tracker.log_params(run_id, best_values)
            tracker.set_tags(
                run_id,
                {"tunelab.best_trial_run_id": best.run_id, "tunelab.best_trial_id": best.trial_id},
            )
        tracker.keep_only_trial_runs({r.run_id for r in records})  # no twin outlives the study
        self._log_best_so_far(run_id, records)  # drawn by the artifact worker meanwhile
        if best is not None:
            registered = self._log_best_model(best)
            hp, weights = cfg.model.hparams_for(best.values), folder.best_weights(best.trial_id)
            self._log_extras(run_id, self.task.conclude(cfg.model.cls, hp, weights))
            for file in weights.parent.iterdir():  # earlier bests: no longer needed
                if not file.name.startswith(f"{best.trial_id}."):
                    file.unlink()
        tracker.log_metrics(run_id, metrics)
        try:
            self._log_design(self.strategy.summary({r.trial_id: r.outcome for r in records}))
        except Exception as error:  # the trials stand even if the closing analysis fails
            tracker.set_tags(run_id, {"tunelab.summary_error": f"{type(error).__name__}: {error}"})
        tracker.end_run(run_id, "FINISHED")
        folder.save(
            finished=True,
            elapsed=elapsed,
            registered=registered,
            ui_link=tracker.ui_link(),
            tracking_uri=tracker.tracking_uri,
        )
        if cfg.shared:  # for the study's other processes
            joining.closed(self.storage_url, folder.path.name, registered)
        return self._summary(best, registered)

    def _fail_study(self, records: list[TrialRecord]) -> None:
        """A study whose every trial failed is an error, not a result: its run ends FAILED
        with the first trial's reason (a shared study's other processes are told it closed),
        and StudyFailed says that reason in one line."""
        first = records[0]
        reason = (
            f"all {len(records)} trials failed; the first with {one_line(first.reason)} "
            f"(its MLflow run {first.run_id})"
        )
        self.tracker.set_tags(self.folder.meta["run_id"], {"tunelab.failure_reason": reason})
        self.folder.save(finished=True)
        if self.cfg.shared:
            joining.closed(self.storage_url, self.folder.path.name, None)
        raise StudyFailed(reason)

    def _summary(self, best: TrialRecord | None, registered: dict | None) -> StudySummary:
        return StudySummary(
            study_id=self.folder.meta["study_id"],
            run_id=self.folder.meta["run_id"],
            best_score=best.score if best else None,
            best_values=best.values if best else None,
            trials=self.folder.records,
            registered=registered,
            ui_link=self.tracker.ui_link(),
            tracking_uri=self.tracker.tracking_uri,
        )

    def _log_design(self, design: Any) -> None:
        run_id = self.folder.meta["run_id"]
        self.tracker.log_params(run_id, design.params)
        for path, text in design.texts.items():
            self.tracker.log_text(run_id, text, path)
        for path, figure in design.figures.items():
            self.tracker.log_figure(run_id, figure, path)

    def _log_best_model(self, best: TrialRecord) -> dict[str, Any] | None:
        cfg = self.cfg
        if not (cfg.tracking.log_model or cfg.tracking.register):
            return None
        hp, weights = cfg.model.hparams_for(best.values), self.folder.best_weights(best.trial_id)
        model, example = self.task.servable(cfg.model.cls, hp, weights)
        uri = self.tracker.log_model(model, example)
        for name, (companion, companion_example) in self.task.companions(
            cfg.model.cls, hp, weights
        ).items():
            self.tracker.log_model(companion, companion_example, name=name)
        if not cfg.tracking.register:
            return None
        objective = cfg.objective  # resolved: name and direction set
        return self.tracker.register(
            uri, str(objective.name), objective.direction or "max", cast(float, best.score)
        )

    def _log_best_so_far(self, run_id: str, records: list[TrialRecord]) -> None:
        if not records:
            return
        columns = [
            "trial_index",
            "trial_id",
            "status",
            "score",
            "best_so_far",
            "epochs_trained",
            "cumulative_epochs",
            "wall_time",
            "run_id",
        ]
        lines = [",".join(columns)]
        lines += [",".join(str(getattr(r, c)) for c in columns) for r in records]
        self.tracker.log_text(run_id, "\n".join(lines) + "\n", "best_so_far.csv")
        scored = [asdict(r) for r in records if r.score is not None]
        if scored:
            self.tracker.log_plot(
                run_id,
                "plots/best_so_far.png",
                plots.best_so_far,
                trials=scored,
                objective=self.cfg.objective.name,
            )
