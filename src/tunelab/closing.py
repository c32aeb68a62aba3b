"""Closing a study: once no trial is left, its run gets the metrics, the best trial, the
best-so-far table and plot, the best model (and its registry version) and the strategy's
summary, and ends FINISHED; a study whose every trial failed ends FAILED instead.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any, cast

from tunelab import joining, plots
from tunelab.config import StudyConfig
from tunelab.logged import StudyExtras
from tunelab.schema import StudyFailed, one_line
from tunelab.strategies import Strategy
from tunelab.study_folder import StudyFolder, TrialRecord
from tunelab.tasks.base import Task
from tunelab.tracking.models import register
from tunelab.tracking.tracker import Tracker


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


class Closing:
    """Closes one study (whichever process does it: the study's, or the worker that claimed
    it) and makes its summary."""

    def __init__(
        self,
        cfg: StudyConfig,
        folder: StudyFolder,
        strategy: Strategy,
        task: Task,
        tracker: Tracker,
        storage_url: str,
    ) -> None:
        self.cfg, self.folder, self.strategy, self.task = cfg, folder, strategy, task
        self.tracker, self.storage_url = tracker, storage_url

    def finish(self, started: float) -> StudySummary:
        """Close the study: its metrics, best trial, best-so-far table and plot, best model
        (and registry version), the strategy's summary; the run ends FINISHED."""
        cfg, folder, tracker = self.cfg, self.folder, self.tracker
        run_id = folder.meta["run_id"]
        records = folder.records
        if records and all(r.status == "FAILED" for r in records):
            self._fail(records)
        best = self.folder.best_record()
        counts = {s: sum(r.status == s for r in records) for s in ("COMPLETE", "PRUNED", "FAILED")}
        metrics: dict[str, Any] = {
            "trials_completed": counts["COMPLETE"],
            "trials_pruned": counts["PRUNED"],
            "trials_failed": counts["FAILED"],
            "trials": len(records),
            "cumulative_epochs": records[-1].cumulative_epochs if records else 0,
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
            log_extras(self.tracker, run_id, self.task.conclude(cfg.model.cls, hp, weights))
            kept = {r.trial_id for r in folder.top_records(cfg.keep_weights)}
            for file in weights.parent.iterdir():  # earlier bests, beyond `keep_weights`
                if file.name.partition(".")[0] not in kept:
                    file.unlink()
        try:
            log_design(
                self.tracker,
                run_id,
                self.strategy.summary({r.trial_id: r.outcome for r in records}),
            )
        except Exception as error:  # the trials stand even if the closing analysis fails
            tracker.set_tags(run_id, {"tunelab.summary_error": f"{type(error).__name__}: {error}"})
        tracker.drain()  # every figure and request in: the study's work is done
        elapsed = (
            time.time() - tracker.study_started()  # since it began, whichever process closes it
            if cfg.shared
            else folder.meta.get("elapsed", 0.0) + time.perf_counter() - started
        )
        tracker.log_metrics(run_id, {**metrics, "wall_time_s": elapsed})
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
        return self.summary(best, registered)

    def _fail(self, records: list[TrialRecord]) -> None:
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

    def summary(self, best: TrialRecord | None, registered: dict | None) -> StudySummary:
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
        return register(
            self.tracker.client,
            cfg.tracking.model_name,
            uri,
            str(objective.name),
            objective.direction or "max",
            cast(float, best.score),
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


def log_design(tracker: Tracker, run_id: str, design: Any) -> None:
    """A strategy's design (or summary): its params, texts and figures on the study run."""
    tracker.log_params(run_id, design.params)
    for path, text in design.texts.items():
        tracker.log_text(run_id, text, path)
    for path, figure in design.figures.items():
        tracker.log_figure(run_id, figure, path)


def log_extras(tracker: Tracker, run_id: str, extras: StudyExtras) -> None:
    """What a task adds to the study run: metrics, texts and figures."""
    tracker.log_metrics(run_id, extras.metrics)
    for path, text in extras.texts.items():
        tracker.log_text(run_id, text, path)
    for path, (plot, data) in extras.figures.items():
        tracker.log_plot(run_id, path, plot, **data)


def stop_if_every_trial_fails_alike(cfg: StudyConfig, records: list[TrialRecord]) -> None:
    """Raise StudyFailed once the first `stop_after_identical_failures` trials have all failed
    with the same error: the model cannot train, and more trials would only repeat it.
    Studies where some trials fail go on."""
    k = cfg.stop_after_identical_failures
    first = records[:k]
    if (
        k
        and len(records) == k
        and all(r.status == "FAILED" for r in first)
        and len({r.reason for r in first}) == 1
    ):
        raise StudyFailed(
            f"the first {k} trials all failed with the same error, so the study stops: "
            f"{one_line(first[0].reason)} (their MLflow runs are FAILED with it; "
            f"{cfg.spell('stop_after_identical_failures', 0)} goes on regardless)"
        )
