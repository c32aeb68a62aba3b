"""The only place tunelab talks to MLflow: a study is a parent run, each trial a child run.

Runs are created with `MlflowClient` and an explicit parent run id, so nesting survives worker
processes. Everything about a trial's run (creating it, params, metrics, tags, texts, ending it)
is queued on one background thread that sends the requests in order while training goes on;
timestamps are taken when a request is queued, and a failed request is raised by the next one
queued or by `drain`. (MLflow's own asynchronous logging was measured slower here: shutting its
queue down costs most of a second per run.) Trial figures are drawn and uploaded by a separate
process.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from tunelab.logged import Plot, SharedModel, TrialArtifacts
from tunelab.tracking.artifacts import ArtifactWorker, log_plot, log_trial_artifacts
from tunelab.tracking.cleanup import PROCESS, REASON, this_process
from tunelab.tracking.models import log_model_into, shared_model_run
from tunelab.tracking.reachability import RetryCounter, TrackingOutage, retry_environment
from tunelab.tracking.runs import mlflow_params
from tunelab.tracking.sender import Sender
from tunelab.tracking.settings import TrackingSettings

Run = str | Future  # a run id, or the future id of a trial run the sender thread is creating
TRIAL_KEY = "tunelab.trial_key"  # <study id>/<trial id>: one run per trial
ABANDONED = "tunelab.abandoned"  # a trial whose worker died; its trial ran again
RECORD = "tunelab.record"  # a finished trial's journal line, which any worker can read back
BEST_WEIGHTS = "best"  # a trial run's folder of weights, when it was the study's best so far


def run_id(run: Run) -> str:
    """The id of a run, waiting for the server if it is still being created."""
    return run if isinstance(run, str) else run.result()


def _set_environment(settings: TrackingSettings) -> None:
    """MLflow's settings for this process and the artifact worker it spawns."""
    # MLflow would print two links (and fetch the run again) each time a run ends over HTTP;
    # the progress bar and the closing summary already say where to look.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # nor a "Downloading artifacts" bar when the best model is logged (unless asked for)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if settings.retry_seconds is not None:
        os.environ.update(retry_environment(settings.retry_seconds))


def start_artifact_worker(settings: TrackingSettings) -> ArtifactWorker:
    """The artifact worker for a `Tracker` of these settings, spawned now: started before
    TensorFlow is imported, it is ready by the first trial's end."""
    _set_environment(settings)  # before the worker inherits the environment
    return ArtifactWorker().start()


class Tracker:
    """Records one study: `start_study`, per trial `start_trial` … `end_run`, then the study."""

    def __init__(self, settings: TrackingSettings, artifacts: ArtifactWorker | None = None) -> None:
        _set_environment(settings)
        self.retries = RetryCounter.installed()  # urllib3's retries, counted, not printed
        if settings.uri:
            mlflow.set_tracking_uri(settings.uri)
        self.settings = settings
        self.client = MlflowClient()
        experiment = self.client.get_experiment_by_name(settings.experiment)
        self.experiment_id = (
            experiment.experiment_id
            if experiment
            else self.client.create_experiment(settings.experiment)
        )
        self.study_run_id: str | None = None
        self.owns_study = True  # False in a worker: other processes' trials are not ours
        self.open_runs: list[Run] = []
        self.artifacts = artifacts or ArtifactWorker()
        self.sender = Sender(lambda: self.tracking_uri)

    def _send(self, request: Callable[..., Any], run: Run, *args: Any, **kwargs: Any) -> Future:
        """Queue `request(run_id, ...)` on the sender thread."""
        return self.sender.queue(lambda: request(run_id(run), *args, **kwargs))

    @property
    def outage(self) -> TrackingOutage | None:
        """Set once the server stopped answering."""
        return self.sender.outage

    def outage_in(self, error: BaseException) -> TrackingOutage | None:
        """The outage `error` means (or the one already seen), None if it is another error."""
        return self.sender.outage_in(error)

    def abandon(self) -> None:
        """Give up on a server that stopped answering: drop what is queued and stop the
        artifact worker, without waiting for either."""
        self.sender.abandon()
        self.artifacts.terminate()

    def log_trial_artifacts(self, run: Run, artifacts: TrialArtifacts, **data: Any) -> None:
        """Figures and tables of a finished trial, drawn while the next trial trains."""
        self.artifacts.submit(
            log_trial_artifacts, self.tracking_uri, run_id(run), artifacts=artifacts, **data
        )

    def log_plot(self, run_id: str, path: str, plot: Plot, **data: Any) -> None:
        """The figure `plot(**data)`, drawn and uploaded by the artifact worker."""
        self.artifacts.submit(log_plot, self.tracking_uri, run_id, path=path, plot=plot, **data)

    def settle(self) -> None:
        """Wait until every request queued so far is sent; raise the first that failed."""
        self.sender.settle()

    def drain(self) -> None:
        """`settle`, and wait until every trial's artifacts are uploaded."""
        try:
            self.settle()
        finally:
            self.artifacts.drain()

    @property
    def study_run(self) -> str:
        """The study run's id (`start_study` sets it)."""
        if self.study_run_id is None:
            raise RuntimeError("Tracker.start_study comes first")
        return self.study_run_id

    def study_started(self) -> float:
        """When the study run started (seconds since the epoch)."""
        return self.client.get_run(self.study_run).info.start_time / 1000

    @property
    def tracking_uri(self) -> str:
        return mlflow.get_tracking_uri()

    def ui_link(self) -> str:
        """Where to look: the experiment's runs, in the UI's model-training view."""
        uri = self.tracking_uri
        base = uri.rstrip("/") if uri.startswith("http") else "http://127.0.0.1:5000"
        return f"{base}/#/experiments/{self.experiment_id}?workflowType=machine_learning"

    # --- the study run -------------------------------------------------------------------
    def start_study(
        self,
        name: str,
        tags: Mapping[str, str],
        params: Mapping[str, Any],
        resume_run_id: str | None,
    ) -> str:
        launched = os.environ.pop("MLFLOW_RUN_ID", None)  # set by `mlflow run` for its run
        tags = {**tags, PROCESS: this_process()}  # who writes it (tunelab cleanup)
        if resume_run_id:
            self.client.update_run(resume_run_id, status="RUNNING")
            self.set_tags(resume_run_id, {PROCESS: tags[PROCESS]})
            self.study_run_id = resume_run_id
            self.experiment_id = self.client.get_run(resume_run_id).info.experiment_id
        elif launched:  # the project run becomes the study run; trials nest in its experiment
            self.study_run_id = launched
            self.experiment_id = self.client.get_run(launched).info.experiment_id
            self.set_tags(launched, {**tags, "mlflow.runName": name})
            self.log_params(launched, params)
        else:  # with MLflow's context tags: the entry point, its git commit, the user
            from mlflow.tracking.context.registry import resolve_tags

            run = self.client.create_run(
                self.experiment_id, run_name=name, tags=resolve_tags(dict(tags))
            )
            self.study_run_id = run.info.run_id
            self.log_params(self.study_run_id, params)
        self.open_runs.append(self.study_run_id)
        return self.study_run_id

    def join_study(self, run_id: str) -> None:
        """Log trials as children of a study run another process owns (a worker of
        `workers=N`); that run is not this tracker's to end."""
        self.study_run_id = run_id
        self.experiment_id = self.client.get_run(run_id).info.experiment_id
        self.owns_study = False

    def leave(self) -> None:
        """A worker's end: every request and artifact sent; the study run stays open."""
        self.drain()
        self.artifacts.close()

    def keep_only_trial_runs(self, journaled_run_ids: set[str]) -> int:
        """Delete the study's child runs that are not in its journal: runs that never finished
        (left RUNNING by kill -9 or an outage, KILLED by Ctrl-C), whose trials run again, and
        twins made by a retried CreateRun. Each trial keeps exactly one run. The runs of trials
        a dead worker left (`kill_trial`) stay, KILLED with the reason."""
        runs = [r.info.run_id for r in self._trial_runs() if ABANDONED not in r.data.tags]
        stale = [run_id for run_id in runs if run_id not in journaled_run_ids]
        for run_id in stale:
            self.client.delete_run(run_id)
        return len(stale)

    def _trial_runs(self, only_running: bool = False) -> list[Any]:
        """The study's child runs as the server has them."""
        running = " AND attributes.status = 'RUNNING'" if only_running else ""
        return self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self.study_run_id}'{running}",
            max_results=50000,
        )

    def record_trial(self, run: Run, record: Mapping[str, Any]) -> None:
        """The trial's journal line, as a tag of its (ended) run."""
        self.set_tags(run, {RECORD: json.dumps(record, default=str)})

    def recorded_trials(self) -> list[dict[str, Any]]:
        """Every worker's journal lines of this study, in the order their runs ended."""
        runs = [r for r in self._trial_runs() if RECORD in r.data.tags]
        runs.sort(key=lambda r: r.info.end_time or 0)
        return [json.loads(r.data.tags[RECORD]) for r in runs]

    def log_best_weights(self, run: Run, *files: Path) -> None:
        """Weights and headline of a trial that was the study's best when it ended, for the
        worker that closes the study (`best_weights`)."""
        for file in files:
            self._send(self.client.log_artifact, run, str(file), BEST_WEIGHTS)

    def best_weights(self, run_id: str, folder: Path) -> None:
        """Download what `log_best_weights` logged into `folder`/best."""
        self.client.download_artifacts(run_id, BEST_WEIGHTS, str(folder))

    def kill_trial(self, key: str, reason: str) -> None:
        """A trial run another process left (it died) ends KILLED, with the reason, and is
        kept; one `tunelab cleanup` ended already keeps its reason."""
        for run in self._trial_runs():
            if run.data.tags.get(TRIAL_KEY) != key or run.info.status == "FINISHED":
                continue
            if run.info.status == "RUNNING":
                self.set_tags(run.info.run_id, {REASON: reason, ABANDONED: "true"})
                self.end_run(run.info.run_id, "KILLED")
            else:
                self.set_tags(run.info.run_id, {ABANDONED: "true"})

    # --- trials --------------------------------------------------------------------------
    def log_inputs(self, run: Run, inputs: list[Any]) -> None:
        """Record the datasets a run used (`tunelab.tracking.datasets.dataset_inputs`)."""
        if inputs:
            self._send(self.client.log_inputs, run, datasets=inputs)

    def start_trial(self, name: str, key: str, tags: Mapping[str, str]) -> Future:
        """Queue the creation of a trial run under the study, tagged `tunelab.trial_key=key`
        (unique to the trial); its id comes as a Future, which every method here accepts in
        place of a run id."""
        run = self._send(self._create_child_run, self.study_run, name, key, tags)
        self.open_runs.append(run)
        return run

    def _create_child_run(
        self, parent_run_id: str, name: str, key: str, tags: Mapping[str, str]
    ) -> str:
        """Create the run; if the request was retried, delete any twin the server made of it
        (MLflow's client retries POSTs, so one CreateRun can make two runs: mlflow#8238)."""
        retried = self.retries.retries
        tags = {
            MLFLOW_PARENT_RUN_ID: parent_run_id,
            TRIAL_KEY: key,
            PROCESS: this_process(),
            **tags,
        }
        created = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        if self.retries.retries != retried:
            twins = self.client.search_runs([self.experiment_id], f"tags.`{TRIAL_KEY}` = '{key}'")
            for twin in twins:
                if twin.info.run_id != created.info.run_id:
                    self.client.delete_run(twin.info.run_id)
        return created.info.run_id

    def log_metrics(
        self, run: Run, metrics: Mapping[str, float], step: int = 0, tags: Mapping | None = None
    ) -> None:
        """Metrics at one step (an epoch, or 0 for summaries), with `tags` in the same request
        (`MlflowClient.log_batch` splits what one request cannot hold)."""
        now = int(time.time() * 1000)
        self._send(
            self.client.log_batch,
            run,
            metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )

    def log_params(self, run: Run, params: Mapping[str, Any]) -> None:
        self._send(self.client.log_batch, run, params=mlflow_params(params))

    def set_tags(self, run: Run, tags: Mapping[str, Any]) -> None:
        self._send(self.client.log_batch, run, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_figure(self, run_id: str, figure: Any, path: str) -> None:
        self.client.log_figure(run_id, figure, path)

    def log_text(self, run: Run, text: str, path: str) -> None:
        self._send(self.client.log_text, run, text, path)

    def log_image(self, run: Run, image: Any, key: str, step: int) -> None:
        """An image at a step: the UI's image view has a step slider over them."""
        self._send(lambda rid: self.client.log_image(rid, image, key=key, step=step), run)

    def shared_model_run(self, shared: SharedModel) -> str:
        """The run that holds `shared` (a model trained once), found or logged now, once."""
        return shared_model_run(self.client, self.experiment_id, shared)

    def end_run(self, run: Run, status: str = "FINISHED") -> None:
        """End a run: FINISHED, FAILED or KILLED, after everything queued for it. The study run
        ends last, once every request and artifact is in."""
        if run == self.study_run_id:
            self.drain()
        self._send(self.client.set_terminated, run, status, end_time=int(time.time() * 1000))
        if run in self.open_runs:
            self.open_runs.remove(run)
        if run == self.study_run_id:
            self.drain()
            self.artifacts.close()

    def end_all(self, status: str) -> None:
        """End every run still open, innermost first (on Ctrl-C, SIGTERM or a crash).

        The server is asked too: a signal landing while a trial run was being created leaves a
        RUNNING run this process never heard back about (seen in CI). After an outage nothing is
        asked: resuming tidies up."""
        if self.outage is not None:
            self.abandon()
            return
        with contextlib.suppress(Exception):  # the server may be gone; nothing more to do
            self.drain()
            if self.study_run_id and self.owns_study:
                known = {
                    r if isinstance(r, str) else r.result()
                    for r in self.open_runs
                    if isinstance(r, str) or (r.done() and not r.exception())
                }
                self.open_runs += [
                    r.info.run_id
                    for r in self._trial_runs(only_running=True)
                    if r.info.run_id not in known
                ]
        for run in reversed(list(self.open_runs)):
            with contextlib.suppress(Exception):
                self.end_run(run, status)
        with contextlib.suppress(Exception):
            self.drain()

    # --- the best model ----------------------------------------------------------------
    def log_model(self, model: Any, input_example: Any, name: str = "model") -> str:
        """Log a Keras model (or a pyfunc `PythonModel` wrapping one, which saves its own
        artifacts) to the study run with signature and input example, tag the run with its URI
        (`tunelab.model_uri.<name>`) and return it."""
        import keras
        import mlflow.pyfunc
        from mlflow.models import infer_signature

        keras.config.disable_interactive_logging()  # MLflow predicts on the example
        if isinstance(model, mlflow.pyfunc.PythonModel):
            output = model.predict(None, input_example)
        else:
            output = keras.ops.convert_to_numpy(model(input_example, training=False))
        info = log_model_into(
            self.study_run,
            model,
            name=name,
            input_example=input_example,
            signature=infer_signature(input_example, output),
        )
        self.client.update_run(self.study_run, status="RUNNING")
        self.set_tags(self.study_run, {f"tunelab.model_uri.{name}": info.model_uri})
        return info.model_uri
