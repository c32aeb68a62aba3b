"""What scoring and tracking cost in a generative study, measured side by side in one process.

1. Seconds for FID, KID (100 subsets of min(1000, N)) and IS (10 splits) on (N, 64) float64
   features and (N, 10) logits, N = 1,000 and 5,000; KID against a reference of 3,500 prepared
   once (as a study scores every generated set); the feature extractor's forward pass.
2. One DCGAN random search at the default budget (embedded MNIST) twice: with plain KerasTuner
   (`Tuner.search`, a HyperModel building tunelab's DCGAN, no metrics, no tracking) and as a
   tunelab study tracked to a local `mlflow server`. Printed: wall per trial of each; for
   tunelab the share of its trials' wall time outside the GAN epochs, and the share spent on
   the training thread in scoring (metrics, images) and tracking calls (target <= 10 %).

    python benchmarks/gan_metrics.py                  # 4 trials x 9 epochs (the default's)
    python benchmarks/gan_metrics.py --trials 2 --epochs 2
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from tunelab.config import compose as load_config
from tunelab.seeding import derive  # noqa: E402
from tunelab.server import start_mlflow_server


def seconds(work, repeat: int = 3) -> float:
    """The fastest of `repeat` runs of `work()`."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def metric_timings(cfg) -> list[tuple[str, int, float]]:
    from tunelab.data import load_dataset
    from tunelab.metrics import fid, inception_score, kid
    from tunelab.metrics.kid import KIDReference
    from tunelab.tasks.feature_extractor import trained_extractor

    data = load_dataset(cfg.dataset.cls, cfg.dataset.settings, cfg.seed)
    cache = Path(cfg.workdir) / "feature_extractors"
    extractor = trained_extractor(data, cache, cfg.model.task.extractor_epochs, cfg.seed)
    rng = np.random.default_rng(0)
    rows = []
    for n in (1000, 5000):
        a, b = rng.normal(size=(n, 64)), rng.normal(size=(n, 64))
        logits = rng.normal(size=(n, 10))
        images = np.resize(data.x_train, (n, *data.x_train.shape[1:]))
        reference = KIDReference(np.resize(a, (3500, 64)))  # as in a study: 3,500 real digits
        reference.score(b)  # prepares the reference's subsets once, as a study does
        rows += [
            ("FID", n, seconds(lambda a=a, b=b: fid(a, b))),
            ("KID", n, seconds(lambda a=a, b=b: kid(a, b))),
            ("KID, 3,500 prepared", n, seconds(lambda r=reference, b=b: r.score(b))),
            ("IS", n, seconds(lambda z=logits: inception_score(z))),
            ("extractor forward", n, seconds(lambda x=images: extractor.features_and_logits(x))),
        ]
    return rows


def plain_keras_tuner(cfg, workdir: Path) -> dict[str, float]:
    """The same random search with KerasTuner's own tuner: the GAN trained, nothing scored."""
    import keras_tuner as kt

    from tunelab.data import load_dataset

    data = load_dataset(cfg.dataset.cls, cfg.dataset.settings, cfg.seed)
    x = data.x_train * np.float32(2) - np.float32(1)

    class GANHyperModel(kt.HyperModel):
        def build(self, hp):
            cfg.model.space.declare_keras_tuner(hp)
            values = {name: hp.get(name) for name in cfg.model.space.names}
            return cfg.model.cls.build(cfg.model.hparams_for(values), data.spec)

        def fit(self, hp, model, *args, **kwargs):
            kwargs.pop("validation_data", None)
            history = model.fit(x, batch_size=cfg.model.hparams.batch_size, **kwargs)
            return -float(history.history["g_loss"][-1])  # something to maximise

    started = time.perf_counter()
    tuner = kt.RandomSearch(
        GANHyperModel(),
        objective=kt.Objective("score", "max"),
        max_trials=cfg.strategy.settings.max_trials,
        directory=str(workdir),
        overwrite=True,
        project_name="gan",
        seed=derive(cfg.seed, "oracle"),
    )
    tuner.search(epochs=cfg.model.training.epochs, verbose=0)
    return {"trials": len(tuner.oracle.trials), "wall": time.perf_counter() - started}


def timed(owner: type, names: list[str], spent: dict[str, float]) -> None:
    """Wrap methods of `owner` to add the seconds spent in them (main thread) to `spent`."""
    for name in names:
        method = getattr(owner, name)

        def wrapper(*args, _method=method, _name=name, **kwargs):
            started = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                spent[_name] = spent.get(_name, 0.0) + time.perf_counter() - started

        setattr(owner, name, wrapper)


def tunelab_study(cfg, uri: str) -> dict[str, float]:
    from mlflow.tracking import MlflowClient

    from tunelab.study import Study
    from tunelab.tasks.generation import Generation
    from tunelab.tracking import Tracker

    spent: dict[str, float] = {}
    timed(Generation, ["end_of_epoch", "evaluate"], spent)
    timed(
        Tracker,
        [
            "start_trial",
            "log_params",
            "log_metrics",
            "log_image",
            "set_tags",
            "log_trial_artifacts",
            "end_run",
        ],
        spent,
    )
    started = time.perf_counter()
    summary = Study(cfg).run()
    wall = time.perf_counter() - started
    client = MlflowClient(uri)
    runs = [client.get_run(t.run_id) for t in summary.trials]
    trial_wall = sum(t.wall_time for t in summary.trials)
    in_epochs = sum(
        m.value for r in runs for m in client.get_metric_history(r.info.run_id, "epoch_time")
    )
    scoring = spent.get("end_of_epoch", 0.0) + spent.get("evaluate", 0.0)
    logging = sum(v for k, v in spent.items() if k not in ("end_of_epoch", "evaluate"))
    return {
        "trials": len(summary.trials),
        "wall": wall,
        "trial_wall": trial_wall,
        "in_epochs": in_epochs,
        "scoring": scoring,
        "logging": logging,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=9, help="dcgan's default budget: 9")
    args = parser.parse_args()

    import mlflow

    scratch = Path(tempfile.mkdtemp(prefix="tunelab-gan-bench-"))
    overrides = [
        "model=dcgan",
        "strategy=random",
        f"strategy.max_trials={args.trials}",
        f"model.training.epochs={args.epochs}",
        "quiet=true",
        f"workdir={scratch / 'work'}",
        "tracking.experiment=bench-gan",
        "study_name=bench-gan",
        "tracking.log_model=false",
    ]
    cfg = load_config(overrides)
    timings = metric_timings(cfg)  # also trains and caches the feature extractor
    server, uri = start_mlflow_server(scratch / "server")
    mlflow.set_tracking_uri(uri)
    try:
        plain = plain_keras_tuner(cfg, scratch / "kt")
        ours = tunelab_study(load_config(overrides), uri)
    finally:
        server.terminate()
        shutil.rmtree(scratch, ignore_errors=True)

    print("\nmetric                     N   seconds")
    for name, n, value in timings:
        print(f"{name:<23} {n:>5} {value:>9.3f}")
    outside = 1 - ours["in_epochs"] / ours["trial_wall"]
    per_trial = (ours["trial_wall"] / ours["trials"]) / (plain["wall"] / plain["trials"])
    print(f"\nDCGAN random search, {args.trials} trials x {args.epochs} epochs (default budget)")
    print(
        f"plain KerasTuner, no scoring, no tracking: {plain['wall']:.1f} s "
        f"({plain['wall'] / plain['trials']:.2f} s per trial)"
    )
    print(
        f"tunelab, scored and tracked: {ours['wall']:.1f} s for the study, "
        f"{ours['trial_wall'] / ours['trials']:.2f} s per trial "
        f"({per_trial:.2f} x plain per trial)"
    )
    print(
        f"tunelab trials: {ours['in_epochs']:.1f} s in GAN epochs of {ours['trial_wall']:.1f} s; "
        f"{outside:.1%} outside them (building, metrics, images, logging)"
    )
    share = (ours["scoring"] + ours["logging"]) / ours["trial_wall"]
    print(
        f"of which metrics and images {ours['scoring']:.1f} s and tracking calls "
        f"{ours['logging']:.1f} s on the training thread: {share:.1%} of the trials' wall time "
        "(target <= 10 %)"
    )


if __name__ == "__main__":
    main()
