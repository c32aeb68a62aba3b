"""One trial: build and train the proposal, evaluate it, log everything it leaves, then write
it down in order: its MLflow run ends (every request of it has reached the server), then its
journal line, then the strategy is told.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any, Literal

from tunelab import faults, interrupts, local_workers, plots, weights
from tunelab.config import StudyConfig
from tunelab.files import write_atomically
from tunelab.schema import ModelError
from tunelab.seeding import derive
from tunelab.strategies import Outcome, Proposal, Strategy
from tunelab.study_folder import StudyFolder, TrialRecord
from tunelab.tasks.base import Task
from tunelab.tracking.tracker import Run, Tracker, run_id

if TYPE_CHECKING:  # train imports TensorFlow
    from tunelab.train import Fit


class TrialRunner:
    """Runs one proposal after another for a study: `run(proposal)` -> its journaled record."""

    def __init__(
        self,
        cfg: StudyConfig,
        folder: StudyFolder,
        strategy: Strategy,
        task: Task,
        tracker: Tracker,
        data_inputs: list[Any],
        tags: dict[str, str],
    ) -> None:
        self.cfg, self.folder, self.strategy, self.task = cfg, folder, strategy, task
        self.tracker, self.data_inputs = tracker, data_inputs
        self.tags = tags  # the study's, shared: a task's shared models add theirs later

    def run(self, proposal: Proposal) -> TrialRecord:
        """Train `proposal`, record it (its run ends, then its journal line) and tell the
        strategy; a failing trial is FAILED with its reason."""
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

            from tunelab import train  # TensorFlow: the study imported it as it set up

            fit = train.fit(
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
        if list(values) != list(proposal.values):  # drawn as the model asked (define-by-run)
            self.tracker.set_tags(run, {"tunelab.tuned": ",".join(values)})
        return replace(proposal, values=values, hp=hp)

    def _record_fit(self, run: Run, fit: Fit, proposal: Proposal, hp: Any) -> Outcome:
        """Evaluate the trained model (the task says how) and log everything a trial leaves."""
        cfg, tracker = self.cfg, self.tracker
        evaluation = self.task.evaluate(fit.model, hp)
        score, best_epoch = self.task.score(fit.history, evaluation, cfg.objective)
        after = weights.weight_snapshot(fit.model)
        last = fit.history[-1] if fit.history else {}
        again = {k: v for k, v in evaluation.metrics.items() if k in last}  # no test split
        if again:  # the final evaluation on validation data: at the last epoch, not step 0
            changed = {k: v for k, v in again.items() if not math.isclose(v, last[k], rel_tol=1e-5)}
            if changed:  # weights other than the last epoch's (e.g. restored by a callback)
                tracker.log_metrics(run, changed, step=int(last["epoch"]))
        metrics: dict[str, Any] = {
            **{k: v for k, v in evaluation.metrics.items() if k not in again},
            "epochs_trained": len(fit.history),
            "param_count": weights.parameter_count(fit.model),
        }
        if score is not None:
            metrics[f"best_{cfg.objective.name}"] = score
            metrics["best_epoch"] = best_epoch
        for when, snapshot in (("before", fit.weights_before), ("after", after)):
            for layer, values in snapshot.items():
                for stat, value in weights.weight_stats(values).items():
                    metrics[f"weights/{layer}/{stat}.{when}"] = value  # grouped in the UI
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
            weights.save_weights(fit.model, self.folder.checkpoint(proposal.trial_id))
        top = self.folder.top_records(cfg.keep_weights)  # the best so far, best first
        if score is not None and (  # among the best `keep_weights` so far: its weights kept
            len(top) < cfg.keep_weights or cfg.objective.better(score, top[-1].score)
        ):
            best_file = self.folder.best_weights(proposal.trial_id)
            headline = self.folder.best_headline(proposal.trial_id)
            weights.save_weights(fit.model, best_file)
            write_atomically(headline, json.dumps(evaluation.headline))
            new_best = not top or cfg.objective.better(score, top[0].score)
            if cfg.shared and new_best:  # for whichever worker closes the study
                tracker.log_best_weights(run, best_file, headline)
        return Outcome(status, score, len(fit.history))
