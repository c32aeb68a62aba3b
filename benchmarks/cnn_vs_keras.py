"""tunelab's `cnn` against a plain Keras CNN of the same architecture, on the same split.

Loads the data of `experiment=cifar_cnn/baseline` at the default budget with tunelab's own
loader (the CIFAR-10 file given), then trains side by side:

- tunelab's `cnn` as a one-trial study of that preset, once per `--variant` (config overrides,
  comma-separated, so that one candidate cause changes at a time);
- the plain twin, once per `--twin` batch-norm momentum (`none`: no batch norm): 3 blocks of
  Conv2D (32, 64, 128) → (BatchNormalization) → ReLU → MaxPool, Flatten, Dense 64, Dropout 0.3,
  softmax; Adam 1e-3, batch 64, horizontal flips and 0.1 shifts in a `tf.data` map.

It prints each one's test accuracy, its validation accuracy over the last 5 epochs and its wall
time, and the ratio of each to the best twin.

    python benchmarks/cnn_vs_keras.py --cifar10 cifar10_subset.npz \
        --variant baseline: --variant no-bn:model.hparams.batch_norm=false --twin none 0.99
"""

from __future__ import annotations

import argparse
import tempfile
import time

from tunelab.config import compose as load_config

PRESET = ["experiment=cifar_cnn/baseline", "budget=default", "quiet=true"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cifar10", required=True, help="CIFAR-10 .npz or batches folder")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="a tunelab run with these overrides (repeatable)",
    )
    parser.add_argument(
        "--twin",
        nargs="*",
        default=["none", "0.99", "0.9"],
        help="batch-norm momenta of the twins ('none': no batch norm)",
    )
    args = parser.parse_args()
    variants = [v.split(":", 1) for v in args.variant] or [["baseline", ""]]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        base = [
            *PRESET,
            f"dataset.path={args.cifar10}",
            f"seed={args.seed}",
            f"model.training.epochs={args.epochs}",
            f"workdir={folder}/wd",
            f"tracking.uri=sqlite:///{folder}/mlflow.db",
        ]
        for name, extra in variants:
            overrides = [o for o in extra.split(",") if o]
            rows.append((f"tunelab cnn {name}", *tunelab_run(base, overrides)))
        data = load_data(base)
        for momentum in args.twin:
            rows.append((f"plain Keras, BN {momentum}", *twin_run(data, momentum, args)))
    best_twin = max(r[1] for r in rows if r[0].startswith("plain"))
    print(
        f"\nCIFAR-10 {len(data.y_train)} / {len(data.y_val)} / {len(data.y_test)} images, "
        f"{args.epochs} epochs, seed {args.seed}"
    )
    print(f"{'run':38} {'test acc':>8} {'/ best twin':>11} {'val acc, last 5':>16} {'s':>6}")
    for name, test, val, seconds in rows:
        print(
            f"{name:38} {test:8.3f} {test / best_twin:11.2f} "
            f"{min(val[-5:]):7.3f}–{max(val[-5:]):.3f} {seconds:6.0f}"
        )


def load_data(base: list[str]):
    from tunelab.data.base import load_dataset

    cfg = load_config(base)
    return load_dataset(cfg.dataset.cls, cfg.dataset.settings, cfg.seed)


def tunelab_run(base: list[str], extra: list[str]) -> tuple[float, list[float], float]:
    """A one-trial study of the preset: its test accuracy, validation accuracies, seconds."""
    from mlflow.tracking import MlflowClient

    from tunelab.study import Study

    cfg = load_config([*base, *extra, f"study_name=cnn-vs-keras-{time.time_ns()}"])
    start = time.perf_counter()
    summary = Study(cfg).run()
    seconds = time.perf_counter() - start
    client = MlflowClient(cfg.tracking.uri)
    run_id = summary.trials[0].run_id
    val = [
        m.value
        for m in sorted(client.get_metric_history(run_id, "val_accuracy"), key=lambda m: m.step)
    ]
    return client.get_run(run_id).data.metrics["test_accuracy"], val, seconds


def twin_run(data, momentum: str, args: argparse.Namespace) -> tuple[float, list[float], float]:
    """The plain Keras CNN: its test accuracy, validation accuracies, seconds."""
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(args.seed)
    layers = keras.layers
    model = keras.Sequential([keras.Input(data.x_train.shape[1:])])
    for filters in (32, 64, 128):
        model.add(layers.Conv2D(filters, 3, padding="same"))
        if momentum != "none":
            model.add(layers.BatchNormalization(momentum=float(momentum)))
        model.add(layers.Activation("relu"))
        model.add(layers.MaxPooling2D())
    model.add(layers.Flatten())
    model.add(layers.Dense(64, activation="relu"))
    model.add(layers.Dropout(0.3))
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(
        keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    augment = keras.Sequential(
        [layers.RandomFlip("horizontal"), layers.RandomTranslation(0.1, 0.1)]
    )
    batches = (
        tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
        .shuffle(len(data.y_train), seed=args.seed)
        .batch(64)
        .map(lambda x, y: (augment(x, training=True), y))
        .prefetch(tf.data.AUTOTUNE)
    )
    start = time.perf_counter()
    history = model.fit(
        batches,
        validation_data=(data.x_val, data.y_val),
        epochs=args.epochs,
        shuffle=False,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    predicted = np.argmax(model.predict(data.x_test, verbose=0), axis=1)
    return float(np.mean(predicted == data.y_test)), history.history["val_accuracy"], seconds


if __name__ == "__main__":
    main()
