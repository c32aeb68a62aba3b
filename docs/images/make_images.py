"""The site's and the README's pictures of the default study, made from a real run.

Runs `python -m tunelab` (the default study) in a fresh folder, copies its study run's
`plots/best_so_far.png`, opens the MLflow UI on the same store in Chromium (Debian's, through
Playwright) with the study's trials expanded, takes a screenshot, and writes `README.md` here
with the date, the commit and the study's figures:

    python docs/images/make_images.py
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]
sys.path.insert(0, str(PROJECT / "tests"))

from conftest import free_port  # noqa: E402
from test_ui import CHROMIUM, CHROMIUM_ARGS, TRAINING_VIEW  # noqa: E402


def main() -> None:
    import mlflow

    folder = Path(tempfile.mkdtemp(prefix="tunelab-images-"))
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "tunelab"], cwd=folder, check=True)
    seconds = time.monotonic() - started
    store = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    study = mlflow.search_runs(
        experiment_names=["tunelab"], filter_string="tags.`tunelab.kind` = 'study'"
    ).iloc[0]
    plot = mlflow.artifacts.download_artifacts(
        run_id=study.run_id, artifact_path="plots/best_so_far.png", dst_path=str(folder)
    )
    shutil.copy(plot, HERE / "best-so-far.png")
    screenshot(store, folder, study.experiment_id, study["tags.mlflow.runName"])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True, text=True
    ).stdout.strip()
    trials = len(
        mlflow.search_runs(
            experiment_names=["tunelab"], filter_string="tags.`tunelab.kind` = 'trial'"
        )
    )
    (HERE / "README.md").write_text(
        "# Pictures of the default study\n\n"
        f"Made on {datetime.date.today()} at commit {commit} by "
        "`python docs/images/make_images.py`, which ran `python -m tunelab` (MLP, 5,000 "
        "embedded MNIST digits, Hyperband, budget default, seed 0) on this machine's CPU: "
        f"{trials} trials in {seconds:.0f} s, best validation accuracy "
        f"{study['metrics.best_val_accuracy']:.3f}.\n\n"
        "- `best-so-far.png`: the study run's `plots/best_so_far.png`, as logged;\n"
        "- `ui-study-with-trials.png`: the MLflow UI (1400 × 900 px) on the same store, the "
        "study's trials expanded.\n"
    )
    print(f"wrote {HERE / 'best-so-far.png'}, {HERE / 'ui-study-with-trials.png'}")


def screenshot(store: str, folder: Path, experiment: str, study_name: str) -> None:
    """The experiment page of the MLflow UI, the study's nested trials expanded."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    ui = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store, "--port", str(port)],
        cwd=folder,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{base}/#/experiments/{experiment}?{TRAINING_VIEW}")
            page.get_by_text(study_name, exact=True).first.wait_for(timeout=60_000)
            close = page.get_by_role("button", name="Close")  # the MLflow Assistant's panel
            if close.count():
                close.first.click()
            page.locator("[data-component-id$='runnamecellrenderer.tsx_46']").first.click()
            page.get_by_text("trial-0000", exact=True).first.wait_for(timeout=10_000)
            page.wait_for_timeout(1000)
            page.screenshot(path=HERE / "ui-study-with-trials.png")
            browser.close()
    finally:
        ui.terminate()
        ui.wait(timeout=30)


if __name__ == "__main__":
    main()
