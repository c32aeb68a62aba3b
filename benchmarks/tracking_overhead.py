"""Plain KerasTuner next to tunelab on the same study, side by side in one process.

For each strategy it runs the same MLP search (the default MLP space of conf/model/mlp.yaml,
batch size included; the same data, trials and epochs) twice:
once with KerasTuner's own `Tuner.search` and no tracking, once as a tunelab study tracked to a
local `mlflow server` over HTTP. It prints, per strategy, the wall time, the time spent inside
epochs, their ratio (the rest is model building, checkpoints, oracle work and, for tunelab,
tracking), and tunelab's extra wall time per trial.

    python benchmarks/tracking_overhead.py                      # default budget, 3 strategies
    python benchmarks/tracking_overhead.py --strategies random --trials 4 --epochs 2
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tunelab.config import compose as load_config
from tunelab.seeding import derive  # noqa: E402
from tunelab.server import start_mlflow_server


def study_overrides(strategy: str, trials: int, epochs: int, workdir: Path) -> list[str]:
    sizes = {
        "random": [f"strategy.max_trials={trials}"],
        "keras_bayesian": [f"strategy.max_trials={trials}", "strategy.num_initial_points=2"],
        "hyperband": [f"strategy.max_epochs={epochs}", "strategy.factor=3"],
    }
    return [
        f"strategy={strategy}",
        *sizes[strategy],
        f"model.training.epochs={epochs}",
        "quiet=true",
        f"workdir={workdir}",
        "tracking.log_model=true",
        f"tracking.experiment=bench-{strategy}",
        f"study_name=bench-{strategy}",
    ]


def mlp_hypermodel(cfg, data):
    """The study's model and space as a KerasTuner HyperModel with its own fit (KerasTuner's
    documented way to tune the batch size)."""
    import keras_tuner as kt

    class MLPHyperModel(kt.HyperModel):
        def build(self, hp):
            cfg.model.space.declare_keras_tuner(hp)
            values = {name: hp.get(name) for name in cfg.model.space.names}
            return cfg.model.cls.build(cfg.model.hparams_for(values), data.spec)

        def fit(self, hp, model, *args, **kwargs):
            return model.fit(*args, batch_size=hp.get("batch_size"), **kwargs)

    return MLPHyperModel()


def plain_keras_tuner(cfg, workdir: Path) -> dict[str, float]:
    """The same search with KerasTuner's own tuner and no tracking (data loading included, as
    it is in a tunelab study)."""
    import keras
    import keras_tuner as kt

    from tunelab.data import load_dataset

    started = time.perf_counter()
    data = load_dataset(cfg.dataset.cls, cfg.dataset.settings, cfg.seed)
    epoch_seconds = []

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.started)

    build = mlp_hypermodel(cfg, data)

    s = cfg.strategy.settings
    common = {  # the oracle seed tunelab uses, so both run the same trials
        "objective": "val_accuracy",
        "directory": str(workdir),
        "overwrite": True,
        "project_name": cfg.strategy.name,
        "seed": derive(cfg.seed, "oracle"),
    }
    tuner = {
        "random": lambda: kt.RandomSearch(build, max_trials=s.max_trials, **common),
        "keras_bayesian": lambda: kt.BayesianOptimization(
            build, max_trials=s.max_trials, num_initial_points=s.num_initial_points, **common
        ),
        "hyperband": lambda: kt.Hyperband(
            build, max_epochs=s.max_epochs, factor=s.factor, **common
        ),
    }[cfg.strategy.name]()
    tuner.search(
        data.x_train,
        data.y_train,
        epochs=cfg.model.training.epochs,
        verbose=0,
        validation_data=(data.x_val, data.y_val),
        callbacks=[EpochClock()],
    )
    wall = time.perf_counter() - started
    return {
        "trials": len(tuner.oracle.trials),
        "epochs": len(epoch_seconds),
        "wall": wall,
        "in_epochs": sum(epoch_seconds),
    }


def tunelab_study(cfg, uri: str) -> dict[str, float]:
    from mlflow.tracking import MlflowClient

    from tunelab.study import Study

    started = time.perf_counter()
    summary = Study(cfg).run()
    wall = time.perf_counter() - started
    client = MlflowClient(uri)
    in_epochs = sum(
        m.value
        for trial in summary.trials
        for m in client.get_metric_history(trial.run_id, "epoch_time")
    )
    return {
        "trials": len(summary.trials),
        "epochs": summary.trials[-1].cumulative_epochs,
        "wall": wall,
        "in_epochs": in_epochs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", default="random,keras_bayesian,hyperband")
    parser.add_argument("--trials", type=int, default=10, help="random/keras_bayesian trials")
    parser.add_argument("--epochs", type=int, default=9, help="epochs (hyperband: max_epochs)")
    args = parser.parse_args()

    import mlflow

    scratch = Path(tempfile.mkdtemp(prefix="tunelab-bench-"))
    server, uri = start_mlflow_server(scratch / "server")
    mlflow.set_tracking_uri(uri)
    rows = []
    try:
        for strategy in args.strategies.split(","):
            cfg = load_config(study_overrides(strategy, args.trials, args.epochs, scratch))
            plain = plain_keras_tuner(cfg, scratch / "kt")
            ours = tunelab_study(cfg, uri)
            rows.append((strategy, plain, ours))
            print(f"{strategy}: done", file=sys.stderr)
    finally:
        server.terminate()
        shutil.rmtree(scratch, ignore_errors=True)

    print(
        "\nstudy wall time / time inside epochs (lower is better; target tunelab <= 1.15 and "
        "<= KerasTuner)"
    )
    print(
        f"{'strategy':<10} {'trials':>11} {'epochs':>11} {'KT wall s':>10} {'KT ratio':>9} "
        f"{'tunelab wall s':>15} {'tunelab ratio':>14} {'extra wall/trial':>17}"
    )
    for strategy, plain, ours in rows:
        per_trial = (ours["wall"] / ours["trials"]) / (plain["wall"] / plain["trials"]) - 1
        print(
            f"{strategy:<10} {plain['trials']:>5}/{ours['trials']:<5} "
            f"{plain['epochs']:>5}/{ours['epochs']:<5} {plain['wall']:>10.1f} "
            f"{plain['wall'] / plain['in_epochs']:>9.2f} {ours['wall']:>15.1f} "
            f"{ours['wall'] / ours['in_epochs']:>14.2f} {per_trial:>+16.1%}"
        )


if __name__ == "__main__":
    main()
