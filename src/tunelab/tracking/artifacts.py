"""Trial figures and tables, drawn and uploaded by a low-priority worker process.

Drawing and uploading a classifier trial's three figures and two tables costs a good part of a
second of CPU; in a thread it would hold the GIL against the training loop. A separate process
at idle priority uses what CPU training leaves idle (SCHED_IDLE beat nice 19; docs/benchmarks.md,
"Measured while building" has the figures). On a machine busy with other work that process gets
no CPU at all, so at the study's end, what it has not done within a few seconds is done by the
study's own process.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from multiprocessing.pool import AsyncResult
from typing import Any

import numpy as np

from tunelab import plots
from tunelab.logged import Plot, TrialArtifacts
from tunelab.tracking.reachability import RetryCounter


def log_trial_artifacts(
    tracking_uri: str,
    run_id: str,
    artifacts: TrialArtifacts,
    history: list[dict[str, float]],
    curves: dict[str, list[str]],
    weights_before: dict[str, np.ndarray],
    weights_after: dict[str, np.ndarray],
) -> None:
    """Learning curves and weight violins (every trial), then what its task evaluated."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    client.log_figure(run_id, plots.learning_curves(history, curves), "plots/learning_curves.png")
    for path, (plot, data) in artifacts.figures.items():
        client.log_figure(run_id, plot(**data), path)
    client.log_figure(
        run_id, plots.weight_distributions(weights_before, weights_after), "plots/weights.png"
    )
    for path, text in artifacts.texts.items():
        client.log_text(run_id, text, path)
    for path, content in artifacts.dicts.items():
        client.log_dict(run_id, content, path)
    for path, image in artifacts.images.items():
        client.log_image(run_id, image, artifact_file=path)


def log_plot(tracking_uri: str, run_id: str, path: str, plot: Plot, **data: Any) -> None:
    """The figure `plot(**data)`, uploaded to `path`."""
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri).log_figure(run_id, plot(**data), path)


def _worker_setup() -> None:
    if hasattr(os, "SCHED_IDLE"):  # Linux: idle CPU only, preempted as soon as training wakes
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    else:
        os.nice(19)  # training comes first
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    RetryCounter.installed()  # urllib3's retry warnings stay off the terminal
    for module in ("mlflow.tracking", "matplotlib.backends.backend_agg"):  # the first job's
        importlib.import_module(module)  # imports, done while the trainer is still starting


def _reported(job: Callable[[], Any]) -> None:
    """Run `job`; report, but survive, its failure: an artifact is lost, the study is not."""
    try:
        job()
    except Exception as error:
        warnings.warn(f"tunelab: logging trial artifacts failed: {error!r}", stacklevel=3)


@contextlib.contextmanager
def _main_script_hidden() -> Iterator[None]:
    """Keep a spawned process from running the user's script again.

    `spawn` imports the parent's `__main__` in the child: by module name after `python -m`
    (harmless), by path for a script, where a script without `if __name__ == "__main__":` (a
    notebook-style `tunelab.tune(...)` call) would start the study again in the worker, which
    then hangs or fails. The worker's jobs live in tunelab's modules and need nothing of it.
    """
    main = sys.modules["__main__"]
    script = getattr(main, "__spec__", None) is None and hasattr(main, "__file__")
    path = main.__dict__.pop("__file__") if script else None
    try:
        yield
    finally:
        if path is not None:
            main.__file__ = path


PATIENCE_SECONDS = 3.0  # at the end, a job the worker has not done by then is done here
Job = Callable[..., None]


class ArtifactWorker:
    """One spawned process that runs jobs (`log_trial_artifacts`, `log_plot`) in order."""

    def __init__(self) -> None:
        self._pool: Any = None
        self._pending: list[tuple[AsyncResult, Job, tuple[str, str], dict[str, Any]]] = []

    def start(self) -> ArtifactWorker:
        """Spawn the process now (else at the first job). Started before TensorFlow is
        imported, it is ready by the first trial's end instead of delaying the study's."""
        if self._pool is None:
            context = multiprocessing.get_context("spawn")  # never fork a TensorFlow process
            with _main_script_hidden():
                self._pool = context.Pool(1, initializer=_worker_setup)
        return self

    def submit(self, job: Job, tracking_uri: str, run_id: str, **data: Any) -> None:
        """Run `job(tracking_uri, run_id, **data)` in the worker."""
        self.start()
        waiting = []
        for pending in self._pending:  # those done leave the list; a failure is told now
            if pending[0].ready():
                _reported(pending[0].get)
            else:
                waiting.append(pending)
        self._pending = waiting
        args = (tracking_uri, run_id)
        self._pending.append((self._pool.apply_async(job, args, data), job, args, data))

    def drain(self) -> None:
        """Wait for every job; report, but survive, one that failed. A job the worker has not
        done within PATIENCE_SECONDS is done here, with the rest: on a busy machine a process
        at idle priority gets no CPU, and the study, which waits for it, would wait for the
        machine to fall idle."""
        pending, self._pending = self._pending, []
        for index, (result, *_) in enumerate(pending):
            result.wait(PATIENCE_SECONDS)
            if not result.ready():
                self.terminate()
                for _, job, args, data in pending[index:]:
                    _reported(partial(job, *args, **data))
                return
            _reported(result.get)

    def close(self) -> None:
        """Stop the worker once every job is done. It is terminated, not joined: with nothing
        left to do, its interpreter's exit (MLflow's atexit hooks) is pure waiting."""
        self.drain()
        self.terminate()

    def terminate(self) -> None:
        """Stop the worker now, whatever it is doing."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None
