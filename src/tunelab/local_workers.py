"""The N − 1 local worker processes a study starts (`workers=N`), and each process's label.

The study's process creates everything shared before any worker joins: the strategy's Optuna
study (with the study's identity in it), the MLflow experiment and the study run. Its N − 1
workers, `python -m tunelab.workers --wait --study NAME --storage URL`, start first and import
TensorFlow meanwhile, then join when it says `go`, exactly as `tunelab worker` joins from
another machine, each with its own scratch folder. Every process runs trials (one at a time
counts and asks, so that together they run exactly `max_trials`); the last one out closes the
study. Each process pins TensorFlow to cores / N threads.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tunelab.schema import StudyFailed

WORKER = "TUNELAB_WORKER"  # the worker's label (tag tunelab.worker; 0 is the coordinator)
GPU = "TUNELAB_GPU"  # the GPU workers=N gave this process (tag tunelab.gpu)
LOG_TAIL = 3
GO = b"go\n"  # the coordinator's word to its waiting workers that the study is ready


def label() -> str:
    """This process's worker label: $TUNELAB_WORKER, or 0 for the coordinator (or the only
    process)."""
    return os.environ.get(WORKER, "0")


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def pin_threads(workers: int) -> None:
    """TensorFlow's thread pools sized for `workers` processes sharing the cores; before
    TensorFlow runs its first op (later, it keeps the pools it has)."""
    if workers <= 1:  # one process, or workers=0 (which runs no trial)
        return
    import tensorflow as tf

    threads = threads_per_worker(workers)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already started in this process (tests, a chain)
        pass


def gpus() -> list[str]:
    """This machine's GPUs as CUDA numbers them, without importing TensorFlow: those in
    $CUDA_VISIBLE_DEVICES if it is set, else what `nvidia-smi -L` lists (none without it)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return re.findall(r"^GPU (\d+):", listing, re.M)


def gpu_environment(index: int, devices: list[str]) -> dict[str, str]:
    """What worker `index` of a study runs with on a machine with `devices`: one GPU each,
    round robin, its memory taken as needed (so that two workers can share one); nothing
    without GPUs."""
    if not devices:
        return {}
    device = devices[index % len(devices)]
    return {"CUDA_VISIBLE_DEVICES": device, "TF_FORCE_GPU_ALLOW_GROWTH": "true", GPU: device}


class Crew:
    """The `workers - 1` worker processes of a study, started before the coordinator sets the
    study up: each imports TensorFlow, MLflow and the rest meanwhile (seconds), then waits for
    `go`, the coordinator's word that the Optuna study, the study run and the task are ready."""

    def __init__(self, folder: Path, workers: int, storage: str) -> None:
        self.folder, self.workers = folder, workers
        self.processes: list[subprocess.Popen] = []
        devices = gpus() if workers > 1 else []
        for index in range(1, workers):
            log = open(folder / f"worker-{index}.log", "w")  # noqa: SIM115 (kept for the process)
            self.processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tunelab.workers",
                        "--wait",
                        "--study",
                        folder.name,
                        "--storage",
                        storage,
                        "--workdir",
                        str(folder / f"worker-{index}"),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.PIPE,
                    env={**os.environ, WORKER: str(index), **gpu_environment(index, devices)},
                )
            )
        os.environ.update(gpu_environment(0, devices))  # the study's own process: worker 0

    def go(self) -> None:
        """Let the workers join the study (one that has already exited is left to `wait`)."""
        for process in self.processes:
            assert process.stdin is not None
            with contextlib.suppress(BrokenPipeError), process.stdin:
                process.stdin.write(GO)

    def wait(self) -> None:
        """Wait for every worker; StudyFailed if one failed."""
        for index, process in enumerate(self.processes, start=1):
            code = process.wait()
            if code < 0:  # killed: its trial was failed and run again (the strategy's heartbeat)
                print(
                    f"tunelab: worker {index} was killed (signal {-code}); the others "
                    "finished its trials",
                    file=sys.stderr,
                )
            elif code != 0:
                lines = (self.folder / f"worker-{index}.log").read_text().strip().splitlines()
                tail = " / ".join(lines[-LOG_TAIL:])
                raise StudyFailed(f"worker {index} of {self.workers} failed (exit {code}): {tail}")

    def stop(self) -> None:
        """Stop every worker now (their open runs end KILLED) and wait for them."""
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            process.wait()


@contextmanager
def crew(folder: Path, workers: int, storage: str) -> Iterator[Crew]:
    """The study's other workers on this machine (none for `workers=1`), which join it through
    its Optuna storage as a worker on any machine does; if the coordinator stops, they stop
    too."""
    started = Crew(folder, workers, storage)
    try:
        yield started
    except BaseException:
        started.stop()
        raise
