"""The MLflow UI, opened in a real Chromium (Debian's, driven by Playwright) after a smoke study
and a comparison: what a user clicks through, with screenshots in test-output/ui/."""

from __future__ import annotations

import shutil

import pytest
from conftest import PROJECT, run_study

SCREENSHOTS = PROJECT / "test-output" / "ui"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium on a closed network: no background connections that would be refused (README)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TRAINING_VIEW = "workflowType=machine_learning"  # else MLflow 3.17 opens its GenAI view


@pytest.fixture()
def browser():
    from playwright.sync_api import sync_playwright

    assert shutil.which("chromium"), "the UI test needs Debian's chromium: apt-get install chromium"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = chromium.new_page(viewport={"width": 1400, "height": 900})
        yield page
        chromium.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png")


def open_page(page, url: str, expect: str) -> None:
    page.goto(url)
    page.get_by_text(expect, exact=True).first.wait_for(timeout=30_000)
    close = page.get_by_role("button", name="Close")  # the MLflow Assistant's side panel
    if close.count():
        close.first.click()


@pytest.mark.slow
def test_a_study_its_trials_artifacts_comparison_and_champion_in_the_ui(
    tracking_uri, tmp_path, browser
):
    from mlflow.tracking import MlflowClient

    from tunelab.compare import reports

    summary = run_study(
        [
            "strategy=full_factorial",
            "model.tune=[lr,dropout]",
            "dataset=digits",
            "budget=smoke",
            "tracking.experiment=ui-check",
            "tracking.register=true",
            "tracking.model_name=ui-check-model",
        ],
        tmp_path,
    )
    query = reports.Query(
        experiment="ui-check",
        tracking_uri=tracking_uri,
        study=summary.study_id,
        filter="tags.`tunelab.kind` = 'trial'",
        cache_dir=tmp_path / "cache",
    )
    reports.factorial(query, ["coded.lr", "coded.dropout"], order=1)
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("ui-check").experiment_id
    runs = {r.info.run_name: r.info.run_id for r in client.search_runs([experiment])}
    study_name = "mlp-digits-full_factorial-seed0"
    page, base = browser, f"{tracking_uri}/#/experiments/{experiment}"

    open_page(page, f"{base}?{TRAINING_VIEW}", study_name)
    assert page.get_by_text("factorial-analysis", exact=True).count() == 1
    assert page.get_by_text("trial-0", exact=True).count() == 0  # nested: collapsed
    page.locator("[data-component-id$='runnamecellrenderer.tsx_46']").first.click()  # expand
    page.get_by_text("trial-0", exact=True).first.wait_for(timeout=10_000)
    assert all(page.get_by_text(f"trial-{i}", exact=True).count() == 1 for i in range(4))
    shot(page, "1-experiment-with-nested-trials")

    open_page(page, f"{base}/runs/{runs['trial-0']}/artifacts?{TRAINING_VIEW}", "plots")
    assert page.get_by_text("confusion_matrix.png", exact=True).count() == 0  # in a folder
    page.get_by_text("plots", exact=True).first.click()
    page.get_by_text("confusion_matrix.png", exact=True).first.click()
    page.locator("img[src^='blob:'], img[src^='data:image/png']").first.wait_for(timeout=10_000)
    shot(page, "2-trial-confusion-matrix")

    open_page(
        page, f"{base}/runs/{runs['factorial-analysis']}/artifacts?{TRAINING_VIEW}", "factorial"
    )
    page.get_by_text("factorial", exact=True).first.click()
    for name in ("anova.csv", "effects.md", "main_effects.png", "half_normal.png"):
        page.get_by_text(name, exact=True).first.wait_for(timeout=10_000)
    page.get_by_text("anova.md", exact=True).first.click()
    for role, name in [
        ("columnheader", "sum_sq"),
        ("columnheader", "PR(>F)"),
        ("cell", "coded.lr"),
        ("cell", "coded.dropout"),
    ]:  # rendered Markdown
        page.get_by_role(role, name=name, exact=True).first.wait_for(timeout=10_000)
    shot(page, "3-comparison-anova")
    page.get_by_text("main_effects.png", exact=True).first.click()
    page.locator("img[src^='blob:'], img[src^='data:image/png']").first.wait_for(timeout=10_000)
    shot(page, "4-comparison-main-effects")

    open_page(page, f"{tracking_uri}/#/models/ui-check-model", "ui-check-model")
    page.get_by_text("Version 1", exact=True).first.wait_for(timeout=10_000)
    page.get_by_text("champion").first.wait_for(timeout=10_000)
    shot(page, "5-registered-model-champion")
