"""Where one worker's CPU goes: the ceiling of `workers=2` on this machine.

Runs the throughput study of `benchmarks/workers.py` with `workers=1`, once with TensorFlow's
default threads and once with one thread, against a local `mlflow server`, and reads every
process's CPU time (psutil) every 0.2 s. Reports CPU seconds per kind of process (the trainer,
its figure worker, the MLflow server) beside the wall time. If one worker keeps c cores busy,
two workers on 2 cores reach at most about 2 / c times its throughput.

    python benchmarks/worker_cpu.py                 # 16 trials
    python benchmarks/worker_cpu.py --trials 8
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from workers import throughput_study  # benchmarks/workers.py, beside this script

from tunelab.server import start_mlflow_server

KINDS = (
    ("multiprocessing", "figure worker"),
    ("-m tunelab", "trainer"),
    ("mlflow", "MLflow server"),
    ("uvicorn", "MLflow server"),
)


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """Every live process: (command line, user + system CPU seconds so far)."""
    found = {}
    for process in psutil.process_iter(["cmdline", "cpu_times"]):
        times = process.info["cpu_times"]
        if times is not None:  # None: gone or not ours to read
            found[process.pid] = (
                " ".join(process.info["cmdline"] or []),
                times.user + times.system,
            )
    return found


def kind(command: str) -> str:
    return next((name for key, name in KINDS if key in command), "other")


def measured(argv: list[str], env: dict[str, str]) -> tuple[float, dict[str, float]]:
    """Run `argv`; its wall time and the CPU seconds every kind of process used meanwhile."""
    before = cpu_seconds()
    last: dict[int, tuple[str, float]] = {}
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while process.poll() is None:
        for pid, (command, cpu) in cpu_seconds().items():
            if command:  # an exiting process loses its command line; keep the last one seen
                last[pid] = (command, cpu)
        time.sleep(0.2)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed (exit {process.returncode})")
    used: dict[str, float] = collections.Counter()
    for pid, (command, cpu) in last.items():
        used[kind(command)] += cpu - before.get(pid, (command, 0.0))[1]
    return wall, dict(used)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=9)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="tunelab-bench-worker-cpu-"))
    server, uri = start_mlflow_server(scratch / "server")
    threads = {"default": {}, "1": {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}}
    try:
        print(f"workers=1, TPE, {args.trials} trials of {args.epochs} epochs: CPU seconds")
        for label, env in threads.items():
            study = throughput_study(uri, scratch, args.trials, args.epochs, 1, f"cpu-{label}")
            wall, used = measured([sys.executable, "-m", "tunelab", "quiet=true", *study], env)
            busy = sum(used.values())
            parts = ", ".join(f"{k} {v:.1f}" for k, v in sorted(used.items(), key=lambda x: -x[1]))
            print(
                f"  TensorFlow threads {label:>7}: wall {wall:.1f} s; {parts}; "
                f"{busy / wall:.2f} cores busy"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
