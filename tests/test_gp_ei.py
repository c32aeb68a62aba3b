"""GP + expected improvement: the acquisition, the unit-cube mapping, and that it learns."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import run_study
from mlflow.tracking import MlflowClient
from scipy.stats import norm

from tunelab.objective import Objective
from tunelab.space import SearchSpace
from tunelab.strategies import Outcome, StrategyContext
from tunelab.strategies.gp_ei import GPEI, GPEISettings, expected_improvement, from_unit, to_unit

SPACE = SearchSpace.from_config(
    {
        "lr": "tag(log, interval(1e-4, 1e-1))",
        "batch_size": "choice(32, 64, 128, 256)",
        "depth": {"type": "int", "low": 1, "high": 5},
    }
)


def test_expected_improvement_formula():
    ei = expected_improvement(np.array([1.0, 0.0, 0.2]), np.array([1.0, 0.0, 0.0]), 0.5, 0.0)
    assert ei[0] == pytest.approx(0.5 * norm.cdf(0.5) + norm.pdf(0.5))
    assert ei[1] == 0 and ei[2] == 0  # no uncertainty, no improvement


@pytest.mark.parametrize(("name", "value"), [("lr", 1e-3), ("batch_size", 128), ("depth", 4)])
def test_unit_cube_round_trip(name, value):
    param = SPACE.params[name]
    assert from_unit(param, to_unit(param, value)) == pytest.approx(value)
    assert to_unit(SPACE.params["lr"], 1e-4) == 0 and to_unit(SPACE.params["lr"], 1e-1) == 1


def gp(
    tmp_path: Path, settings: GPEISettings, direction: str = "max", resume: bool = False
) -> GPEI:
    context = StrategyContext(
        space=SPACE,
        objective=Objective("val_loss", direction),
        seed=3,
        workdir=tmp_path,
        resume=resume,
        epochs=1,
    )
    return GPEI(settings, context)


def test_a_resumed_gp_ei_proposes_what_the_uninterrupted_one_would(tmp_path):
    settings = GPEISettings(n_initial=3, max_trials=5)
    (tmp_path / "whole").mkdir(), (tmp_path / "cut").mkdir()
    whole, interrupted = gp(tmp_path / "whole", settings), gp(tmp_path / "cut", settings)
    for strategy in (whole, interrupted):
        for _ in range(2):
            proposal = strategy.ask()
            strategy.tell(proposal, Outcome("COMPLETE", objective(proposal.values), 1))
    resumed = gp(tmp_path / "cut", settings, resume=True)
    for _ in range(3):  # the last initial draw, then two EI proposals
        expected, got = whole.ask(), resumed.ask()
        assert got.trial_id == expected.trial_id
        assert got.values == expected.values
        for strategy, proposal in ((whole, expected), (resumed, got)):
            strategy.tell(proposal, Outcome("COMPLETE", objective(proposal.values), 1))


def objective(values: dict) -> float:
    """A smooth bowl with its best at lr = 3e-3, depth = 3 (batch size does not matter)."""
    return -((math.log10(values["lr"]) - math.log10(3e-3)) ** 2) - 0.1 * (values["depth"] - 3) ** 2


def test_gp_ei_homes_in_on_the_optimum_of_a_known_function(tmp_path):
    strategy = gp(tmp_path, GPEISettings(n_initial=4, max_trials=16))
    scores = []
    while (proposal := strategy.ask()) is not None:
        score = objective(proposal.values)
        scores.append(score)
        strategy.tell(proposal, Outcome("COMPLETE", score, 1))
    assert len(scores) == 16
    assert max(scores[4:]) > max(scores[:4])  # the GP improved on its random start
    assert max(scores) > -0.05  # within ~0.2 decades of lr = 3e-3 and at depth 3
    assert strategy.history and {"mean", "std", "ei", "observed"} <= set(strategy.history[0])


def test_minimising_and_grid_candidates(tmp_path):
    strategy = gp(tmp_path, GPEISettings(n_initial=2, max_trials=5, grid_points=5), "min")
    losses = []
    while (proposal := strategy.ask()) is not None:
        losses.append(-objective(proposal.values))  # a loss: lower is better
        strategy.tell(proposal, Outcome("COMPLETE", losses[-1], 1))
        if proposal.params["gp.phase"] == "ei":  # a grid point: lr on a 5-point log grid
            assert any(math.isclose(proposal.values["lr"], 10**e) for e in np.linspace(-4, -1, 5))
    assert strategy.y == [-loss for loss in losses]  # minimising = maximising the negative


def test_refining_random_candidates_climbs_expected_improvement(tmp_path):
    chosen = {}
    for refine in (0, 3):  # the same seed: the same initial points and random candidates
        (tmp_path / str(refine)).mkdir()
        strategy = gp(
            tmp_path / str(refine),
            GPEISettings(n_initial=4, max_trials=5, candidates=20, refine=refine),
        )
        for _ in range(4):
            proposal = strategy.ask()
            strategy.tell(proposal, Outcome("COMPLETE", objective(proposal.values), 1))
        chosen[refine] = strategy.ask().params["gp.ei"]
    assert chosen[3] > chosen[0] > 0


@pytest.mark.slow
def test_gp_ei_study_logs_the_posterior(tracking_uri, tmp_path):
    summary = run_study(
        ["dataset=digits", "budget=smoke", "strategy=gp_ei", "model.tune=[lr,dropout]"], tmp_path
    )
    client = MlflowClient(tracking_uri)
    assert len(summary.trials) == 4
    phases = [client.get_run(t.run_id).data.params["gp.phase"] for t in summary.trials]
    assert phases == ["initial", "initial", "ei", "ei"]
    last = client.get_run(summary.trials[-1].run_id).data.params
    best_before = max(t.score for t in summary.trials[:-1])
    mean, std = float(last["gp.mean"]), float(last["gp.std"])
    assert std > 0
    assert float(last["gp.ei"]) == pytest.approx(
        expected_improvement(np.array([mean]), np.array([std]), best_before, xi=0.01)[0]
    )
    assert "gp_ei/posterior.png" in {f.path for f in client.list_artifacts(summary.run_id, "gp_ei")}
