"""FID and IS over the epochs of `gan_quality.py` runs, against the real-data targets.

Reads each trial run's `fid` and `inception_score` histories (every `model.task.every` epochs,
on the study's sample of generated images) and its study's real-data floor, and draws both
with the targets (FID <= 10 x the real FID, IS >= 0.8 x the real IS) as dashed lines.

    python benchmarks/gan_quality_curves.py --tracking-uri sqlite:///gan.db --out gan.png \
        width=1:<trial run id> width=0.25:<trial run id>
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--out", required=True, help="the PNG to write")
    parser.add_argument("runs", nargs="+", metavar="LABEL:RUN_ID")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mlflow.tracking import MlflowClient

    client = MlflowClient(args.tracking_uri)
    figure, (fid_axis, is_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for label, run_id in (run.split(":", 1) for run in args.runs):
        run = client.get_run(run_id)
        parent = client.get_run(run.data.tags["mlflow.parentRunId"]).data.metrics
        for axis, key, target in (
            (fid_axis, "fid", 10 * parent["real_fid"]),
            (is_axis, "inception_score", 0.8 * parent["real_inception_score"]),
        ):
            history = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
            (line,) = axis.plot(
                [m.step + 1 for m in history], [m.value for m in history], marker="o", label=label
            )
            axis.axhline(target, linestyle="--", color=line.get_color(), linewidth=1)
    fid_axis.set(
        title="FID, classifier features (dashed: target, 10 × real)",
        xlabel="epoch",
        ylabel="FID",
        yscale="log",
    )
    is_axis.set(
        title="Inception Score, classifier (dashed: target, 0.8 × real)",
        xlabel="epoch",
        ylabel="IS",
    )
    for axis in (fid_axis, is_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
