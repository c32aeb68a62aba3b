"""How good the DCGAN the shoot-out picks becomes with a longer training, against the targets.

Reads the best GAN study of an experiment (lowest `best_fid`), takes its best hyperparameters
(`best.*` params) and seed, trains them once for `--epochs` epochs as a one-trial tunelab study
(experiment `gan_quality`, same tracking URI), and prints its final scores next to the real-data
floor of the same study: IS >= 0.8 x the real IS, FID <= 10 x the real FID, every class >= 5 %.

    python benchmarks/gan_quality.py --tracking-uri sqlite:///mlflow.db --experiment gan_shootout
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import load_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--experiment", default="gan_shootout")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--workdir", default=".tunelab")
    args = parser.parse_args()

    from mlflow.tracking import MlflowClient

    from tunelab.study import Study
    from tunelab.tracking.runs import runs_frame

    studies = runs_frame(
        args.tracking_uri,
        args.experiment,
        "tags.`tunelab.kind` = 'study' AND tags.`tunelab.model` = 'dcgan'",
    )
    best = studies.dropna(subset=["metrics.best_fid"]).sort_values("metrics.best_fid").iloc[0]
    values = {c.split(".", 2)[2]: v for c, v in best.items()
              if c.startswith("params.best.") and v == v}  # fmt: skip
    seed = int(best["tags.tunelab.seed"])
    overrides = [
        "model=dcgan", "strategy=grid", "model.tune=[]", f"seed={seed}",
        f"model.training.epochs={args.epochs}", "model.task.every=10", "quiet=true",
        f"tracking.uri={args.tracking_uri}", "tracking.experiment=gan_quality",
        f"workdir={args.workdir}", f"study_name=gan-quality-{best['tags.tunelab.study_id']}",
        *(f"model.hparams.{k}={str(v).lower() if str(v) in ('True', 'False') else v}"
          for k, v in values.items()),
    ]  # fmt: skip
    print(
        f"best study {best['tags.tunelab.study_id']} ({best['tags.tunelab.strategy']}, "
        f"best_fid {best['metrics.best_fid']:.1f}): {values}, seed {seed}"
    )
    summary = Study(load_config(overrides)).run()
    client = MlflowClient(args.tracking_uri)
    trial = client.get_run(summary.trials[0].run_id).data.metrics
    study = client.get_run(summary.run_id).data.metrics
    real_is, real_fid = study["real_inception_score"], study["real_fid"]
    checks = [
        ("IS", trial["final_inception_score"], f">= 0.8 x real {real_is:.2f}",
         trial["final_inception_score"] >= 0.8 * real_is),
        ("FID", trial["final_fid"], f"<= 10 x real {real_fid:.2f}",
         trial["final_fid"] <= 10 * real_fid),
        ("rarest class share", trial["min_class_share"], ">= 0.05",
         trial["min_class_share"] >= 0.05),
    ]  # fmt: skip
    print(
        f"\n{args.epochs} epochs, {int(trial['final_metric_samples'])} generated images "
        f"(trial run {summary.trials[0].run_id})"
    )
    for name, value, target, met in checks:
        print(f"{name:<20} {value:>9.3f}   target {target:<22} {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
