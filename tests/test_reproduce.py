"""`python -m tunelab.reproduce`: the claim checker on made-up run tables whose verdicts are
known, and one reference study reproduced end to end against a real `mlflow server`."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tunelab.reproduce import claims
from tunelab.reproduce.claims import NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, Results
from tunelab.reproduce.references import STUDIES


def made_up(
    parts: dict[str, list[dict]], stages: dict[str, list[str]] | None = None, seed: str = "0"
) -> Results:
    """Results of one study per preset (or per stage) with these trials' params and metrics:
    `{"mnist_mlp/batch_size": [{"params.batch_size": 256, "metrics.test_accuracy": 0.9}]}`."""
    studies, trials = [], []
    for preset, rows in parts.items():
        for stage in (stages or {}).get(preset, [None]):
            study_id = uuid.uuid4().hex[:8]
            best = max((r.get("metrics.test_accuracy", np.nan) for r in rows), default=np.nan)
            studies.append(
                {
                    "run_id": f"s-{study_id}",
                    "tags.tunelab.study_id": study_id,
                    "tags.tunelab.preset": preset,
                    "tags.tunelab.stage": stage,
                    "tags.tunelab.budget": "default",
                    "tags.tunelab.seed": seed,
                    "metrics.best_trial_test_accuracy": best,
                }
            )
            trials += [
                {"run_id": f"t-{study_id}-{i}", "tags.tunelab.study_id": study_id, **row}
                for i, row in enumerate(rows)
            ]
    return Results(pd.DataFrame(studies), pd.DataFrame(trials))


def over_seeds(*seeds: Results) -> Results:
    """One reproduction of several seeds' results."""
    return Results(
        pd.concat([r.studies for r in seeds], ignore_index=True),
        pd.concat([r.trial_runs for r in seeds], ignore_index=True),
    )


def claim(study: str, claim_id: str) -> claims.Claim:
    return next(c for c in STUDIES[study].claims if c.id == claim_id)


def batch_sizes(accuracies: dict[int, float], seed: str = "0") -> Results:
    return made_up(
        {
            "mnist_mlp/batch_size": [
                {"params.batch_size": b, "metrics.test_accuracy": a} for b, a in accuracies.items()
            ]
        },
        seed=seed,
    )


def test_an_ordering_claim_is_reproduced_only_in_the_claimed_order():
    batch_size_order = claim("mnist_mlp", "batch_size_order")
    held = batch_size_order.verdict(batch_sizes({1: 0.96, 256: 0.98, 0: 0.95}))
    assert held == claims.Verdict(REPRODUCED, "256: 98.0 %, 1: 96.0 %, full: 95.0 %")
    broken = batch_size_order.verdict(batch_sizes({1: 0.99, 256: 0.98, 0: 0.95}))
    assert broken.status == NOT_REPRODUCED and "1: 99.0 %" in broken.numbers


def test_over_seeds_a_claim_is_reproduced_only_if_it_holds_in_every_seed():
    batch_size_order = claim("mnist_mlp", "batch_size_order")
    seeds = [
        batch_sizes({1: 0.96, 256: 0.98, 0: 0.95}, "0"),
        batch_sizes({1: 0.95, 256: 0.97, 0: 0.9}, "1"),
    ]
    held = batch_size_order.verdict(over_seeds(*seeds))
    assert held.status == REPRODUCED and held.numbers.endswith("holds in 2 of 2 seeds")
    assert "256: 97.5 %, 1: 95.5 %, full: 92.5 % (means over seeds 0, 1)" in held.numbers
    seeds.append(batch_sizes({1: 0.97, 256: 0.96, 0: 0.5}, "2"))  # on the means it still holds
    mixed = batch_size_order.verdict(over_seeds(*seeds))
    assert mixed.status == NOT_REPRODUCED and mixed.numbers.endswith("holds in 2 of 3 seeds")


def test_the_report_gives_each_part_its_mean_and_spread_over_seeds():
    from tunelab.reproduce import report

    results = over_seeds(
        batch_sizes({1: 0.96, 256: 0.98, 0: 0.95}, "0"),
        batch_sizes({1: 0.94, 256: 0.97, 0: 0.9}, "1"),
    )
    study = STUDIES["mnist_mlp"]
    built = report.build(
        study,
        results,
        claims.check_all(study.claims, results),
        {
            "id": "x",
            "budget": "default",
            "seeds": "0, 1",
            "version": "0",
            "commit": "0" * 10,
            "command": "c",
        },
        read_png=None,
    )
    assert "256: 97.5 ± 0.7 %" in built.markdown and "full: 92.5 ± 3.5 %" in built.markdown
    assert "figures/mnist_mlp-batch_size.png" in built.figures


def test_a_claim_whose_part_did_not_run_or_lacks_a_value_is_not_testable():
    batch_size_order = claim("mnist_mlp", "batch_size_order")
    assert batch_size_order.verdict(batch_sizes({1: 0.96, 256: 0.98})) == claims.Verdict(
        NOT_TESTABLE, "mnist_mlp/batch_size: no trial with the value 0"
    )
    skipped = Results(pd.DataFrame(), pd.DataFrame(), {"mnist_mlp/batch_size": "skipped: why"})
    assert batch_size_order.verdict(skipped) == claims.Verdict(
        NOT_TESTABLE, "mnist_mlp/batch_size skipped: why"
    )


@pytest.mark.parametrize(
    ("accuracy", "share", "status"),
    [
        (0.098, 1.0, REPRODUCED),
        (0.098, 0.5, NOT_REPRODUCED),
        (0.9, 1.0, NOT_REPRODUCED),
    ],
)
def test_the_stuck_initialiser_needs_chance_accuracy_and_one_class(accuracy, share, status):
    results = made_up(
        {
            "mnist_mlp/bad_init": [
                {"metrics.test_accuracy": accuracy, "metrics.test_top_class_share": share}
            ]
        }
    )
    assert claim("mnist_mlp", "bad_init_stuck").verdict(results).status == status


def test_a_cross_study_claim_reads_both_studies():
    cnn_far_above_mlp = claim("cifar_cnn", "cnn_far_above_mlp")
    cnn = [{"metrics.test_accuracy": 0.62}]
    widths = [
        {"params.widths": w, "metrics.test_accuracy": a}
        for w, a in zip(
            ["[128, 64]", "[256, 128, 64]", "[512, 256, 128, 64]"], [0.40, 0.42, 0.45], strict=True
        )
    ]
    verdict = cnn_far_above_mlp.verdict(
        made_up({"cifar_cnn/baseline": cnn, "cifar_mlp/widths": widths})
    )
    assert verdict.status == REPRODUCED and "+17.0 points" in verdict.numbers
    close = made_up(
        {"cifar_cnn/baseline": [{"metrics.test_accuracy": 0.5}], "cifar_mlp/widths": widths}
    )
    assert cnn_far_above_mlp.verdict(close).status == NOT_REPRODUCED
    alone = cnn_far_above_mlp.verdict(made_up({"cifar_cnn/baseline": cnn}))
    assert alone == claims.Verdict(NOT_TESTABLE, "no CIFAR-10 MLP part ran in this reproduction")


def factorial_trials(effect_of_lr: float, effect_of_w: float, seed: int = 0) -> list[dict]:
    """A replicated 2^3 design over lr, dropout and an inert guidance weight."""
    rng = np.random.default_rng(seed)
    rows = []
    for lr, dropout, w, _ in np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1], [0, 1])).T.reshape(
        -1, 4
    ):
        value = 0.8 + effect_of_lr * lr + 0.02 * dropout + effect_of_w * w
        rows.append(
            {
                "params.coded.lr": lr,
                "params.coded.dropout": dropout,
                "params.coded.guidance_weight": w,
                "metrics.best_val_accuracy": value + rng.normal(0, 0.005),
            }
        )
    return rows


def test_design_study_claims_read_the_factorial_stage_anova():
    lr_dominant = claim("cifar_doe", "lr_dominant")
    inert = claim("cifar_doe", "guidance_weight_inert")
    chain = {"cifar_doe": ["factorial"]}
    clear = made_up({"cifar_doe": factorial_trials(0.1, 0.0)}, chain)
    assert lr_dominant.verdict(clear).status == REPRODUCED
    assert inert.verdict(clear).status == REPRODUCED
    dropout_first = made_up({"cifar_doe": factorial_trials(0.001, 0.05)}, chain)
    assert lr_dominant.verdict(dropout_first).status == NOT_REPRODUCED
    assert inert.verdict(dropout_first).status == NOT_REPRODUCED
    no_factorial = made_up({"cifar_doe": factorial_trials(0.1, 0.0)}, {"cifar_doe": ["rsm"]})
    assert lr_dominant.verdict(no_factorial) == claims.Verdict(
        NOT_TESTABLE, "cifar_doe (stage factorial) did not run"
    )


def test_check_flags_claims_reproduced_before_and_not_now():
    before = {"a": REPRODUCED, "b": REPRODUCED, "c": NOT_REPRODUCED, "d": REPRODUCED}
    now = {"a": REPRODUCED, "b": NOT_TESTABLE, "c": REPRODUCED}
    assert claims.regressions(before, now) == ["b", "d"]


def test_a_reproduction_id_that_reads_as_a_number_tags_the_studies_as_written(tmp_path):
    from tunelab import config
    from tunelab.reproduce.runner import Reproduction

    study = STUDIES["mnist_mlp"]
    reproduction = Reproduction(
        id="41270e15",
        budget="smoke",
        seeds=(0,),
        tracking_uri=None,
        experiment_prefix="t",
        workdir=tmp_path,
        cifar10=None,
    )
    (_, argv), *_ = reproduction.commands(study, study.parts[0])
    tags = config.compose(argv[3:]).extra_tags
    assert tags == {"tunelab.reproduction": "41270e15", "tunelab.preset": study.parts[0].preset}


def reproduce(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tunelab.reproduce", *args], capture_output=True, text=True, **kwargs
    )


def test_a_bad_study_name_is_one_line_naming_the_choices(tmp_path):
    out = reproduce("--studies", "mnist_mlp,nope", cwd=tmp_path)
    assert (out.returncode, out.stderr.strip()) == (
        2,
        f"tunelab.reproduce: error: --studies: 'nope' is not valid; valid choices: "
        f"{', '.join(STUDIES)}",
    )
    assert not (tmp_path / "mlflow.db").exists()


def test_a_part_not_of_the_chosen_studies_is_one_line_naming_the_choices(tmp_path):
    out = reproduce("--studies", "mnist_mlp", "--parts", "cifar_mlp/widths", cwd=tmp_path)
    presets = ", ".join(p.preset for p in STUDIES["mnist_mlp"].parts)
    assert (out.returncode, out.stderr.strip()) == (
        2,
        f"tunelab.reproduce: error: --parts: 'cifar_mlp/widths' is not valid; valid choices: "
        f"{presets}",
    )
    assert not (tmp_path / "mlflow.db").exists()


def test_every_part_is_a_preset_and_every_claim_id_is_unique():
    from tunelab.config import CONF_DIR

    for study in STUDIES.values():
        for part in study.parts:
            assert (Path(CONF_DIR) / "experiment" / f"{part.preset}.yaml").exists(), part.preset
        ids = [c.id for c in study.claims]
        assert len(ids) == len(set(ids)) > 0


@pytest.mark.slow
def test_reproduce_one_mnist_study_at_smoke_against_a_server(tracking_uri, tmp_path):
    """Two of the study's six parts (`--parts`): the two claims they carry are checked, the
    third is not testable, and every part has its row in the report."""
    from mlflow.tracking import MlflowClient

    from tunelab.tracking.runs import log_report

    run = ["mnist_mlp/batch_size", "mnist_mlp/hyperband"]
    args = [
        "--studies",
        "mnist_mlp",
        "--budget",
        "smoke",
        "--tracking-uri",
        tracking_uri,
        "--workdir",
        str(tmp_path / "work"),
        "--experiment-prefix",
        "repro-test",
    ]
    out = reproduce(*args, "--parts", ",".join(run), "--check", cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("repro-test-mnist_mlp-smoke")
    (report,) = client.search_runs(
        [experiment.experiment_id], "tags.`tunelab.kind` = 'reproduction'"
    )
    tags = report.data.tags
    reproduction = tags["tunelab.reproduction"]
    markdown = tmp_path / "work" / "reproduction" / reproduction / "mnist_mlp" / "report.md"
    text = markdown.read_text()
    for part in STUDIES["mnist_mlp"].parts:
        assert f"| `{part.preset}` |" in text
    assert "| mnist_mlp/rho not run (not in --parts) |" in text
    verdicts = {c.id: tags[f"tunelab.claim.{c.id}"] for c in STUDIES["mnist_mlp"].claims}
    assert verdicts["bad_init_stuck"] == NOT_TESTABLE
    for tested in ("batch_size_order", "hyperband_beats_hand_set"):
        assert verdicts[tested] in {REPRODUCED, NOT_REPRODUCED}
    for claim_ in STUDIES["mnist_mlp"].claims:
        assert f"| {claim_.text} |" in text
    logged = {f.path for f in client.list_artifacts(report.info.run_id)}
    assert {"report.md", "report.html", "tables", "figures"} <= logged
    figures = {f.path for f in client.list_artifacts(report.info.run_id, "figures")}
    assert {
        "figures/mnist_mlp-batch_size.png",
        "figures/mnist_mlp-hyperband-best_so_far.png",
    } <= figures
    studies = client.search_runs(
        [experiment.experiment_id],
        f"tags.`tunelab.kind` = 'study' AND tags.`tunelab.reproduction` = '{reproduction}'",
    )
    assert sorted(s.data.tags["tunelab.preset"] for s in studies) == run
    assert {s.data.params["data.n_train"] for s in studies} == {"300"}

    # an earlier reproduction at this budget that reproduced a claim this one does not have
    log_report(
        tracking_uri,
        experiment.name,
        "made-up earlier reproduction",
        {},
        {
            "tunelab.kind": "reproduction",
            "tunelab.reproduction": "earlier",
            "tunelab.claim.a_claim_gone": REPRODUCED,
        },
        {},
    )
    again = reproduce(*args, "--reuse", reproduction, "--check", cwd=tmp_path, timeout=300)
    assert again.returncode == 1
    assert again.stderr.strip().endswith("no longer reproduced: mnist_mlp.a_claim_gone")
