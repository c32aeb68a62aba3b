"""How good the DCGAN the shoot-out picks becomes with a longer training, against the targets.

Reads the best GAN study of an experiment (lowest `best_fid`), takes its best hyperparameters
(`best.*` params) and seed, trains them once for `--epochs` epochs as a one-trial tunelab study
(experiment `gan_quality`, same tracking URI), and prints its final scores next to the real-data
floor of the same study: IS >= 0.8 x the real IS, FID <= 10 x the real FID, every class >= 5 %.

    python benchmarks/gan_quality.py --tracking-uri sqlite:///mlflow.db --experiment gan_shootout

`--hparams` names the hyperparameters and seed instead of reading a shoot-out, and any trailing
`KEY=VALUE` is one more config override, e.g. the reference's full width:

    python benchmarks/gan_quality.py --tracking-uri sqlite:///gan.db --seed 1 \
        --hparams dropout_rate=0.26 batch_normalization=true activation=leaky_relu \
        -- model.hparams.width=1
"""

from __future__ import annotations

import argparse

from tunelab.config import compose as load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--experiment", default="gan_shootout")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--workdir", default=".tunelab")
    parser.add_argument(
        "--hparams",
        nargs="+",
        metavar="NAME=VALUE",
        help="the hyperparameters to train (default: the shoot-out's best)",
    )
    parser.add_argument("--seed", type=int, default=1, help="with --hparams")
    parser.add_argument("overrides", nargs="*", help="more config overrides, KEY=VALUE")
    args = parser.parse_args()

    from mlflow.tracking import MlflowClient

    from tunelab.study import Study

    if args.hparams:
        values = dict(pair.split("=", 1) for pair in args.hparams)
        seed, origin = args.seed, "given"
    else:
        values, seed, origin = shootout_best(args.tracking_uri, args.experiment)
    overrides = [
        "model=dcgan",
        "strategy=grid",
        "model.tune=[]",
        f"seed={seed}",
        f"model.training.epochs={args.epochs}",
        "model.task.every=10",
        "quiet=true",
        f"tracking.uri={args.tracking_uri}",
        "tracking.experiment=gan_quality",
        f"workdir={args.workdir}",
        f"study_name=gan-quality-seed{seed}",
        *(
            f"model.hparams.{k}={str(v).lower() if str(v) in ('True', 'False') else v}"
            for k, v in values.items()
        ),
        *args.overrides,
    ]
    print(f"{origin}: {values}, seed {seed}, overrides {args.overrides}")
    summary = Study(load_config(overrides)).run()
    client = MlflowClient(args.tracking_uri)
    trial = client.get_run(summary.trials[0].run_id).data.metrics
    study = client.get_run(summary.run_id).data.metrics
    real_is, real_fid = study["real_inception_score"], study["real_fid"]
    checks = [
        (
            "IS",
            trial["final_inception_score"],
            f">= 0.8 x real {real_is:.2f}",
            trial["final_inception_score"] >= 0.8 * real_is,
        ),
        (
            "FID",
            trial["final_fid"],
            f"<= 10 x real {real_fid:.2f}",
            trial["final_fid"] <= 10 * real_fid,
        ),
        (
            "rarest class share",
            trial["min_class_share"],
            ">= 0.05",
            trial["min_class_share"] >= 0.05,
        ),
    ]
    print(
        f"\n{args.epochs} epochs, {int(trial['final_metric_samples'])} generated images "
        f"(trial run {summary.trials[0].run_id})"
    )
    for name, value, target, met in checks:
        print(f"{name:<20} {value:>9.3f}   target {target:<22} {'met' if met else 'NOT met'}")


def shootout_best(tracking_uri: str, experiment: str) -> tuple[dict, int, str]:
    """The best (lowest `best_fid`) DCGAN study's `best.*` params, its seed and a description."""
    from tunelab.tracking.runs import runs_frame

    studies = runs_frame(
        tracking_uri, experiment, "tags.`tunelab.kind` = 'study' AND tags.`tunelab.model` = 'dcgan'"
    )
    best = studies.dropna(subset=["metrics.best_fid"]).sort_values("metrics.best_fid").iloc[0]
    values = {
        c.split(".", 2)[2]: v for c, v in best.items() if c.startswith("params.best.") and v == v
    }
    origin = (
        f"best study {best['tags.tunelab.study_id']} ({best['tags.tunelab.strategy']}, "
        f"best_fid {best['metrics.best_fid']:.1f})"
    )
    return values, int(best["tags.tunelab.seed"]), origin


if __name__ == "__main__":
    main()
