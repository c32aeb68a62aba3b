"""The comparing-optimisers tutorial's pictures, made by running its two commands.

Runs the tutorial's sweep (`python -m tunelab -m strategy=random,tpe seed=1,2,3
tracking.experiment=shootout`, budget default) and `python -m tunelab.compare optimisers
--experiment shootout` in a fresh folder, copies the comparison run's box plot and best-so-far
curves here, and appends their date, commit and wall time to `README.md` here:

    python docs/images/make_comparison_images.py
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]
PLOTS = {
    "optimisers/best_per_study_mlp-mnist.png": "optimisers-best-per-study.png",
    "optimisers/best_so_far_mlp-mnist.png": "optimisers-best-so-far.png",
}


def main() -> None:
    import mlflow

    folder = Path(tempfile.mkdtemp(prefix="tunelab-comparison-"))
    started = time.monotonic()
    sweep = ["tunelab", "-m", "strategy=random,tpe", "seed=1,2,3", "tracking.experiment=shootout"]
    compare = ["tunelab.compare", "optimisers", "--experiment", "shootout"]
    for command in (sweep, compare):
        subprocess.run([sys.executable, "-m", *command], cwd=folder, check=True)
    minutes = (time.monotonic() - started) / 60
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    comparison = mlflow.search_runs(
        experiment_names=["shootout"], filter_string="tags.`tunelab.kind` = 'comparison'"
    ).iloc[0]
    for logged, name in PLOTS.items():
        path = mlflow.artifacts.download_artifacts(
            run_id=comparison.run_id, artifact_path=logged, dst_path=str(folder)
        )
        shutil.copy(path, HERE / name)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True, text=True
    ).stdout.strip()
    with open(HERE / "README.md", "a") as readme:
        readme.write(
            f"\n## Comparing optimisers\n\nMade on {datetime.date.today()} at commit {commit} "
            "by `python docs/images/make_comparison_images.py`, which ran the tutorial's sweep "
            "(random search and TPE, seeds 1, 2, 3, MLP on the 5,000 embedded MNIST digits, "
            f"budget default) and its comparison on this machine's CPU in {minutes:.0f} min:\n\n"
            + "".join(
                f"- `{name}`: the comparison run's `{logged}`, as logged;\n"
                for logged, name in PLOTS.items()
            )
        )
    print(f"wrote {', '.join(PLOTS.values())} in {HERE}")


if __name__ == "__main__":
    main()
