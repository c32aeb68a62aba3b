"""`workers=N` side by side: trials per hour with 1 and 2 workers, and time to quality against
plain KerasTuner Hyperband in one process. Real short trials: the MLP on the embedded MNIST.

1. Throughput: the same TPE study (no pruner; lr, dropout and L2 tuned, so that every trial
   costs about the same) with `workers=1` and `workers=2`, one after the other. Trials per
   hour over the whole command (start-up included) and over the trials (first trial run's
   start to last one's end, from MLflow). Target: ≥ 1.8× with 2 workers on 2 cores.
   Beside it, the machine's own ceiling for the same trials: plain Keras fits of the same MLP
   on the same grid of lr × dropout × L2 (build, fit, predict the test split; no tunelab, no
   tracking, no figures) in 1 process and in 2 processes sharing them, TensorFlow's threads
   sized as tunelab's workers size them. What 2 such processes gain over 1 is what this
   machine's cores give to perfectly parallel trials.
2. Time to quality, to a level fixed beforehand: `TARGET`, the 90th percentile of the best
   validation accuracy of 200 random full-length trials of the default MLP space on the
   embedded MNIST (`--calibrate` measures it; the value and its date are written below). Per
   seed, plain KerasTuner Hyperband (`Tuner.search` in one process, no tracking; three
   Hyperband iterations so that it seldom ends short) and tunelab TPE with an asynchronous
   pruner (`--pruner`: asha, or Optuna's Hyperband; none, to see what pruning gives) and 2
   workers (at most 100 trials) run on the same space, data and epochs; each side's time is
   from its start (after imports: KerasTuner's data loading, tunelab's study run) to the end
   of its first epoch reaching `TARGET` (never: a side that did not). The medians over the
   seeds and their ratio are reported, with the seeds where a side never got there. Target:
   tunelab's median ≤ ½ of KerasTuner's. `--rival kerastuner` times a second KerasTuner
   Hyperband (another oracle seed) in tunelab's place: an equal rival scores 1.

    python benchmarks/workers.py --calibrate --trials 0 --seeds 0  # the target level, once
    python benchmarks/workers.py                           # 16 trials, 10 seeds
    python benchmarks/workers.py --trials 8 --seeds 1 --epochs 3
    python benchmarks/workers.py --trials 32 --seeds 0      # throughput only
    python benchmarks/workers.py --trials 0 --first-seed 5  # time to quality, seeds 5-9
    python benchmarks/workers.py --trials 0 --rival kerastuner  # KerasTuner against itself
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import multiprocessing
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tracking_overhead import mlp_hypermodel  # noqa: E402

from tunelab.config import compose as load_config
from tunelab.seeding import derive  # noqa: E402
from tunelab.server import start_mlflow_server

# The throughput study's space (its trials and the plain fits beside them): only lr, dropout and
# L2 are tuned, so that every trial costs about the same.
THROUGHPUT_SPACE = "model.tune=[lr,dropout,l2]"

# The time-to-quality level, fixed before any side is timed: the 90th percentile of the best
# val_accuracy of 200 random 9-epoch trials of the default MLP space on the embedded MNIST
# (`--calibrate`, seed 0). Measured 2026-12-07 at commit 8ac1c22: median 0.9380, 90th
# percentile 0.9560, max 0.9700 (200 trials, 9 epochs).
TARGET: float | None = 0.956
CALIBRATION_TRIALS = 200


def tunelab_run(overrides: list[str], cwd: Path) -> float:
    """`python -m tunelab` as a user runs it; its wall time."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "tunelab", "quiet=true", *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"tunelab {' '.join(overrides)} failed:\n{out.stderr[-2000:]}")
    return time.perf_counter() - started


def runs_of(uri: str, experiment: str) -> tuple[object, list[object]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    (study,) = client.search_runs([experiment_id], "tags.`tunelab.kind` = 'study'")
    trials = client.search_runs([experiment_id], "tags.`tunelab.kind` = 'trial'", max_results=10000)
    return study, trials


def throughput_study(
    uri: str, scratch: Path, trials: int, epochs: int, workers: int, experiment: str
) -> list[str]:
    """The overrides of the throughput study: TPE without pruning over lr, dropout and L2, so
    that every trial costs about the same."""
    return [
        "strategy=tpe",
        f"strategy.max_trials={trials}",
        "strategy.pruner=none",
        f"workers={workers}",
        THROUGHPUT_SPACE,
        f"model.training.epochs={epochs}",
        f"tracking.uri={uri}",
        f"tracking.experiment={experiment}",
        f"study_name={experiment}",
        f"workdir={scratch / 'work'}",
    ]


def throughput(uri: str, scratch: Path, trials: int, epochs: int, workers: int) -> dict:
    experiment = f"throughput-{workers}"
    wall = tunelab_run(throughput_study(uri, scratch, trials, epochs, workers, experiment), scratch)
    _, runs = runs_of(uri, experiment)
    span = (max(r.info.end_time for r in runs) - min(r.info.start_time for r in runs)) / 1000
    return {"trials": len(runs), "wall": wall, "span": span}


def plain_fits(overrides: list[str], points: list[dict], workers: int) -> tuple[float, float]:
    """Plain Keras trials in this process, as a user without tunelab runs them: seed, build,
    fit with validation, predict the test split, for each point of the search space in turn.
    TensorFlow's threads sized as a tunelab worker's; the wall clock at the first fit's start
    and at the last one's end."""
    from tunelab import local_workers
    from tunelab.data import load_dataset
    from tunelab.seeding import seed_everything

    local_workers.pin_threads(workers)  # before TensorFlow runs its first op
    cfg = load_config(overrides)
    data = load_dataset(cfg.dataset.cls, cfg.dataset.settings, cfg.seed)
    started = time.time()
    for index, values in enumerate(points):
        seed_everything(derive(cfg.seed, f"trial-{index}"))
        hp = cfg.model.hparams_for(values)
        model = cfg.model.cls.build(hp, data.spec)
        model.fit(
            data.x_train,
            data.y_train,
            batch_size=hp.batch_size,
            shuffle=True,
            epochs=cfg.model.training.epochs,
            validation_data=(data.x_val, data.y_val),
            verbose=0,
        )
        model.predict(data.x_test, batch_size=1024, verbose=0)
    return started, time.time()


def ceiling(trials: int, epochs: int, workers: int) -> float:
    """Seconds from the first plain fit's start to the last one's end, `trials` points of the
    throughput study's space shared round-robin by `workers` spawned processes."""
    overrides = [THROUGHPUT_SPACE, f"model.training.epochs={epochs}"]
    grid = load_config(overrides).model.space.grid(points=3)
    random.Random(0).shuffle(grid)
    points = [grid[i % len(grid)] for i in range(trials)]
    spawn = multiprocessing.get_context("spawn")  # a fresh TensorFlow per process
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=spawn) as pool:
        shares = [
            pool.submit(plain_fits, overrides, points[k::workers], workers) for k in range(workers)
        ]
        spans = [share.result() for share in shares]
    return max(end for _, end in spans) - min(start for start, _ in spans)


class _Reached(BaseException):
    """Ends a KerasTuner search from a fit's callback (KerasTuner fails a trial on Exception)."""


def keras_tuner_hyperband(
    seed: int,
    epochs: int,
    workdir: Path,
    oracle: str = "oracle",
    iterations: int = 1,
    stop_at: float = float("inf"),
) -> tuple[float, list, list]:
    """Plain KerasTuner Hyperband (max_epochs `epochs`, factor 3, `iterations` times) on the
    default MLP space, its oracle seeded by `seed` and `oracle`, ended at the first epoch whose
    validation accuracy reaches `stop_at`: its best validation accuracy, (seconds since start,
    best of the fit) per fit and (seconds since start, validation accuracy) per epoch."""
    import keras
    import keras_tuner as kt

    from tunelab.data import load_dataset

    cfg = load_config([f"seed={seed}"])
    started = time.perf_counter()
    data = load_dataset(cfg.dataset.cls, cfg.dataset.settings, cfg.seed)
    fits, epoch_ends = [], []

    class FitClock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            epoch_ends.append((time.perf_counter() - started, logs["val_accuracy"]))
            if logs["val_accuracy"] >= stop_at:
                fits.append(epoch_ends[-1])  # the fit ends here
                raise _Reached

        def on_train_end(self, logs=None):
            best = max(self.model.history.history.get("val_accuracy", [float("nan")]))
            fits.append((time.perf_counter() - started, best))

    tuner = kt.Hyperband(
        mlp_hypermodel(cfg, data),
        max_epochs=epochs,
        factor=3,
        objective="val_accuracy",
        hyperband_iterations=iterations,
        directory=str(workdir),
        overwrite=True,
        project_name=f"kt-{seed}-{oracle}",
        seed=derive(seed, oracle),
    )
    with contextlib.suppress(_Reached):
        tuner.search(
            data.x_train,
            data.y_train,
            epochs=epochs,
            verbose=0,
            validation_data=(data.x_val, data.y_val),
            callbacks=[FitClock()],
        )
    return max(best for _, best in fits), fits, epoch_ends


def kerastuner_to_quality(
    seed: int, epochs: int, workdir: Path, target: float, oracle: str = "oracle"
) -> tuple[float, float]:
    """KerasTuner Hyperband with three iterations (as tunelab gets 100 trials: more never delay
    a first reach), ended at its first epoch reaching `target`: seconds to that epoch's end
    (inf if none did) and its best."""
    best, _, epoch_ends = keras_tuner_hyperband(
        seed, epochs, workdir, oracle=oracle, iterations=3, stop_at=target
    )
    reached = next((t for t, accuracy in epoch_ends if accuracy >= target), float("inf"))
    return reached, best


def calibrate(uri: str, scratch: Path, epochs: int) -> float:
    """The 90th percentile of the best val_accuracy of CALIBRATION_TRIALS random trials."""
    import numpy as np

    tunelab_run(
        [
            "strategy=random",
            f"strategy.max_trials={CALIBRATION_TRIALS}",
            f"model.training.epochs={epochs}",
            f"tracking.uri={uri}",
            "tracking.experiment=calibration",
            "study_name=calibration",
            f"workdir={scratch / 'work'}",
        ],
        scratch,
    )
    _, runs = runs_of(uri, "calibration")
    scores = [
        r.data.metrics["best_val_accuracy"] for r in runs if "best_val_accuracy" in r.data.metrics
    ]
    level = float(np.percentile(scores, 90))
    print(
        f"calibration: {len(scores)} random trials of {epochs} epochs, best val_accuracy "
        f"median {np.median(scores):.4f}, 90th percentile {level:.4f}, max {max(scores):.4f}"
    )
    return level


def tunelab_to_quality(
    uri: str, scratch: Path, seed: int, epochs: int, trials: int, target: float, pruner: str
) -> tuple[float, float, float]:
    """tunelab TPE with `pruner` on 2 workers: seconds from its study run's start to the end
    of the first epoch reaching `target` and to the end of the first trial reaching it (inf
    if none did; epochs by their logged validation accuracy's timestamp), and its best."""
    from mlflow.tracking import MlflowClient

    experiment = f"quality-{seed}"
    tunelab_run(
        [
            "strategy=tpe",
            f"strategy.max_trials={trials}",
            f"strategy.pruner={pruner}",
            "workers=2",
            f"model.training.epochs={epochs}",
            f"seed={seed}",
            f"tracking.uri={uri}",
            f"tracking.experiment={experiment}",
            f"study_name={experiment}",
            f"workdir={scratch / 'work'}",
        ],
        scratch,
    )
    study, runs = runs_of(uri, experiment)
    reaching = [r for r in runs if r.data.metrics.get("best_val_accuracy", 0) >= target]
    best = max(r.data.metrics.get("best_val_accuracy", 0) for r in runs)
    if not reaching:
        return float("inf"), float("inf"), best
    client = MlflowClient(uri)
    epoch_ends = [
        m.timestamp
        for r in reaching
        for m in client.get_metric_history(r.info.run_id, "val_accuracy")
        if m.value >= target
    ]
    trial_ends = [r.info.end_time for r in reaching]
    start = study.info.start_time
    return (min(epoch_ends) - start) / 1000, (min(trial_ends) - start) / 1000, best


def report_throughput(uri: str, scratch: Path, trials: int, epochs: int) -> None:
    """The throughput study with 1 and 2 workers and the plain fits beside them, printed."""
    one = throughput(uri, scratch, trials, epochs, workers=1)
    two = throughput(uri, scratch, trials, epochs, workers=2)
    plain = [{"trials": trials, "plain": ceiling(trials, epochs, n)} for n in (1, 2)]
    print("throughput (trials per hour; target 2 workers ≥ 1.8× 1 worker)")
    lines = (
        ("whole command", "wall", (one, two)),
        ("trials only", "span", (one, two)),
        ("plain Keras", "plain", plain),
    )
    gains = {}
    for name, key, (a, b) in lines:
        rate1, rate2 = (r["trials"] * 3600 / r[key] for r in (a, b))
        gains[name] = rate2 / rate1
        print(
            f"  {name:<14} 1 worker {rate1:7.0f}   2 workers {rate2:7.0f}   "
            f"× {rate2 / rate1:.2f}   ({a['trials']} / {b['trials']} trials, "
            f"{a[key]:.0f} s / {b[key]:.0f} s)"
        )
    print(
        f"  tunelab's gain over the trials is "
        f"{gains['trials only'] / gains['plain Keras']:.0%} of the machine's own "
        f"({gains['plain Keras']:.2f}× for plain Keras fits)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trials", type=int, default=16, help="throughput trials (0: time to quality only)"
    )
    parser.add_argument(
        "--epochs", type=int, default=9, help="epochs per trial (Hyperband: max_epochs)"
    )
    parser.add_argument(
        "--quality-trials",
        type=int,
        default=100,
        help="tunelab's trials in the time-to-quality study (at most)",
    )
    parser.add_argument(
        "--seeds", type=int, default=10, help="time-to-quality seeds (0: throughput only)"
    )
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="the first time-to-quality seed; the others follow it",
    )
    parser.add_argument(
        "--pruner",
        default="asha",
        choices=["asha", "hyperband", "none"],
        help="time to quality: tunelab's Optuna pruner",
    )
    parser.add_argument(
        "--rival",
        default="tunelab",
        choices=["tunelab", "kerastuner"],
        help="time to quality: who is timed against KerasTuner "
        "(kerastuner: a second KerasTuner Hyperband)",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="measure the time-to-quality level (write it into TARGET)",
    )
    args = parser.parse_args()
    if args.seeds and TARGET is None and not args.calibrate:
        raise SystemExit("TARGET is not measured yet: run with --calibrate first")

    rival = "tunelab" if args.rival == "tunelab" else "2nd KT"
    scratch = Path(tempfile.mkdtemp(prefix="tunelab-bench-workers-"))
    server, uri = start_mlflow_server(scratch / "server")
    rows = []
    try:
        if args.calibrate:
            calibrate(uri, scratch, args.epochs)
        if args.trials:
            report_throughput(uri, scratch, args.trials, args.epochs)
        for seed in range(args.first_seed, args.first_seed + args.seeds if TARGET else 0):
            kt, kt_best = kerastuner_to_quality(seed, args.epochs, scratch / "kt", TARGET)
            if args.rival == "kerastuner":
                ours, ours_best = kerastuner_to_quality(
                    seed, args.epochs, scratch / "kt", TARGET, oracle="rival oracle"
                )
            else:
                ours, _, ours_best = tunelab_to_quality(
                    uri, scratch, seed, args.epochs, args.quality_trials, TARGET, args.pruner
                )
            rows.append((seed, kt, kt_best, ours, ours_best))
            print(f"  seed {seed}: KerasTuner {kt:.1f} s, {rival} {ours:.1f} s", file=sys.stderr)
    finally:
        server.terminate()
        shutil.rmtree(scratch, ignore_errors=True)
    if rows:
        report_quality(rows, rival)


def report_quality(rows: list[tuple], rival: str) -> None:
    """Per seed and the medians: seconds to the first epoch reaching TARGET."""
    print(f"time to val_accuracy {TARGET} (fixed beforehand; target: {rival} ≤ ½ KerasTuner)")
    print(f"  {'seed':>4} {'KerasTuner s':>12} {'best':>6} {rival + ' s':>10} {'best':>6}")
    for seed, kt, kt_best, ours, ours_best in rows:
        print(f"  {seed:>4} {kt:>12.1f} {kt_best:>6.4f} {ours:>10.1f} {ours_best:>6.4f}")
    kt_median = statistics.median(r[1] for r in rows)
    ours_median = statistics.median(r[3] for r in rows)
    never = {
        name: [r[0] for r in rows if r[column] == float("inf")]
        for name, column in (("KerasTuner", 1), (rival, 3))
    }
    print(
        f"  median: KerasTuner {kt_median:.1f} s, {rival} {ours_median:.1f} s, ratio "
        f"{ours_median / kt_median:.2f}; never reached: "
        + "; ".join(f"{name} seeds {seeds or 'none'}" for name, seeds in never.items())
    )


if __name__ == "__main__":
    main()
