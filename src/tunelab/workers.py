"""N local worker processes on one study (`workers=N`).

The study's process (the coordinator) creates everything shared before any worker starts: the
strategy's Optuna study, the MLflow experiment and the study run, and the study folder with its
resolved config. It then starts N − 1 workers, `python -m tunelab.workers <study folder>`, and
runs trials itself too. Each worker joins the shared Optuna study, asks it for trials (one
process at a time counts and asks, so that together they run exactly `n_trials`), logs each
trial as a child of the study run and journals it; the coordinator waits for all of them and
then finishes the study. Each process pins TensorFlow to cores / N threads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tunelab.schema import ConfigError, StudyFailed

CONFIG = "config.yaml"  # the resolved config in the study folder, which workers load
WORKER = "TUNELAB_WORKER"  # the worker's number (tag tunelab.worker; 0 is the coordinator)
LOG_TAIL = 3


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def pin_threads(workers: int) -> None:
    """TensorFlow's thread pools sized for `workers` processes sharing the cores; before
    TensorFlow runs its first op (later, it keeps the pools it has)."""
    if workers == 1:
        return
    import tensorflow as tf

    threads = threads_per_worker(workers)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already started in this process (tests, a chain)
        pass


@contextmanager
def started(folder: Path, workers: int) -> Iterator[list[subprocess.Popen]]:
    """Start `workers - 1` worker processes on the study in `folder`; on leaving, wait for
    them (StudyFailed if one failed), or, if the coordinator stopped, stop them too (their
    open runs end KILLED)."""
    processes = []
    for index in range(1, workers):
        log = open(folder / f"worker-{index}.log", "w")  # noqa: SIM115 (kept for the process)
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "tunelab.workers", str(folder)], stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, WORKER: str(index)},
        ))  # fmt: skip
    try:
        yield processes
    except BaseException:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait()
        raise
    for index, process in enumerate(processes, start=1):
        code = process.wait()
        if code < 0:  # killed: its trial was failed and run again (the strategy's heartbeat)
            print(f"tunelab: worker {index} was killed (signal {-code}); the others finished "
                  "its trials", file=sys.stderr)  # fmt: skip
        elif code != 0:
            lines = (folder / f"worker-{index}.log").read_text().strip().splitlines()
            tail = " / ".join(lines[-LOG_TAIL:])
            raise StudyFailed(f"worker {index} of {workers} failed (exit {code}): {tail}")


def main(argv: list[str] | None = None) -> int:
    """`python -m tunelab.workers <study folder>`: run trials of that study until its strategy
    has none left."""
    import yaml

    from tunelab import config
    from tunelab.study import Study

    signal.signal(signal.SIGTERM, _raise_interrupt)
    (folder,) = argv if argv is not None else sys.argv[1:]
    try:
        raw = yaml.safe_load((Path(folder) / CONFIG).read_text())
        cfg = config.load({**raw, "resume": True, "quiet": True})
        Study(cfg).work()
    except (ConfigError, StudyFailed) as error:
        print(f"tunelab.workers: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    sys.exit(main())
