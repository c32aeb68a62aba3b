"""Does oneDNN explain results that differ across CPUs, and what would turning it off cost?

Runs the same study (the README's default one unless overrides are given) as separate
processes, side by side, under these settings:

- oneDNN on (TensorFlow's default on x86), at this CPU's best instruction set, twice (the
  second run is the control: one machine repeats itself bit for bit);
- oneDNN on, held to AVX2 (`ONEDNN_MAX_CPU_ISA=AVX2`): what a CPU without AVX-512 computes;
- oneDNN on, one intra-op thread: what a machine with another core count may compute;
- oneDNN off (`TF_ENABLE_ONEDNN_OPTS=0`), and off and held to AVX2.

It prints each study's best objective, which other settings gave bit-for-bit the same trial
scores, and its wall time relative to the first.

    python benchmarks/onednn.py                                   # the default study
    python benchmarks/onednn.py strategy=random strategy.max_trials=5 dataset=digits
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = {
    "oneDNN on": {},
    "oneDNN on, again": {},
    "oneDNN on, AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "oneDNN on, 1 thread": {"TF_NUM_INTRAOP_THREADS": "1", "OMP_NUM_THREADS": "1"},
    "oneDNN off": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "oneDNN off, AVX2": {"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}


def run(overrides: list[str], env: dict[str, str], folder: Path) -> tuple[list, float, float]:
    """Trial scores and the best (from the study's journal), and wall time of one study."""
    args = [
        sys.executable,
        "-m",
        "tunelab",
        *overrides,
        "quiet=true",
        f"workdir={folder}",
        "study_name=onednn",
        f"tracking.uri=sqlite:///{folder / 'mlflow.db'}",
        "tracking.log_model=false",
    ]
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, env={**os.environ, **env})
    wall = time.perf_counter() - started
    (journal,) = folder.glob("*/onednn/trials.jsonl")  # <workdir>/<store>/<study_name>
    records = [json.loads(line) for line in journal.open()]
    return [r["score"] for r in records], records[-1]["best_so_far"], wall


def main() -> None:
    overrides = sys.argv[1:]
    results = {}
    for name, env in SETTINGS.items():
        with tempfile.TemporaryDirectory() as folder:
            results[name] = run(overrides, env, Path(folder))
    reference_wall = results["oneDNN on"][2]
    print(f"study: python -m tunelab {' '.join(overrides)}".rstrip())
    print("| setting | best | the same trial scores as | wall | wall / oneDNN on |")
    print("| --- | --- | --- | --- | --- |")
    for name, (scores, best, wall) in results.items():
        same = [other for other, result in results.items() if other != name and result[0] == scores]
        print(
            f"| {name} | {best:.4f} | {', '.join(same) or 'none'} | {wall:.1f} s "
            f"| {wall / reference_wall:.2f} |"
        )


if __name__ == "__main__":
    main()
