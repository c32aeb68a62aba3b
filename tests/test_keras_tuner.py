"""KerasTuner's Bayesian oracle, with the Gaussian process that predicts single points quickly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import MOVE_THE_BOUND, load_config
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, Matern

from tunelab.seeding import derive
from tunelab.strategies import Outcome, StrategyContext
from tunelab.strategies.keras_bayesian_oracle import STEP, UCB_STARTS, QuickGPR


@pytest.mark.parametrize("kernel", [Matern(nu=2.5), RBF()], ids=["keras-tuner-matern", "other"])
@pytest.mark.parametrize("target", ["noise", "smooth"])
def test_quick_gp_predicts_bit_for_bit_what_sklearn_predicts(kernel, target):
    rng = np.random.default_rng(0)
    x = rng.random((8, 5))
    y = rng.random(8) if target == "noise" else np.sin(3 * x).sum(axis=1)
    settings = {
        "kernel": kernel,
        "n_restarts_optimizer": 20,
        "normalize_y": True,
        "alpha": 1e-4,
        "random_state": 1,
    }  # KerasTuner's settings
    plain, quick = GaussianProcessRegressor(**settings).fit(x, y), QuickGPR(**settings).fit(x, y)
    points = [rng.random((1, 5)) for _ in range(200)] + [x[:1], rng.random((7, 5))]
    for point in points:
        for got, want in zip(
            quick.predict(point, return_std=True),
            plain.predict(point, return_std=True),
            strict=True,
        ):
            assert np.array_equal(got, want), f"QuickGPR differs from sklearn's; {MOVE_THE_BOUND}"
    assert np.array_equal(quick.predict(points[0]), plain.predict(points[0]))  # sklearn's path
    rows = np.vstack([rng.random((6, 5)), x[:2]])  # a point on a training point too
    means, stds = quick.predict_rows(rows)
    for row, mean, std in zip(rows, means, stds, strict=True):
        want_mean, want_std = plain.predict(row[None], return_std=True)
        assert mean == want_mean[0] and std == want_std[0]


def landscape(values: dict) -> float:
    """A validation accuracy a Gaussian process can learn: best near lr 3e-3, dropout 0.15."""
    return (
        0.95
        - 0.05 * (math.log10(values["lr"]) + 2.5) ** 2
        - 0.3 * (values["dropout"] - 0.15) ** 2
        + 0.01 * values["depth"]
        + 0.02 * (values["activation"] == "relu")
    )


@pytest.mark.slow
def test_bayesian_strategy_proposes_what_keras_tuners_own_oracle_proposes(tmp_path):
    import keras_tuner as kt

    cfg = load_config(
        [
            "strategy=keras_bayesian",
            "strategy.max_trials=7",
            "strategy.num_initial_points=2",
            "model.tune=[lr,dropout,depth,activation]",
        ]
    )
    s = cfg.strategy.settings
    context = StrategyContext(
        space=cfg.model.space,
        objective=cfg.objective,
        seed=cfg.seed,
        workdir=tmp_path / "ours",
        resume=False,
        epochs=1,
    )
    context.workdir.mkdir()
    ours = cfg.strategy.cls(s, context)
    climbed = {"steps": 0, "at_upper_bound": 0}
    ucb_and_gradient = ours.oracle._ucb_and_gradient

    def counted(x: np.ndarray):
        climbed["steps"] += 1
        climbed["at_upper_bound"] += bool(np.any(x + STEP > 1.0))
        return ucb_and_gradient(x)

    ours.oracle._ucb_and_gradient = counted
    hp = kt.HyperParameters()
    cfg.model.space.declare_keras_tuner(hp)
    theirs = kt.oracles.BayesianOptimizationOracle(
        objective=kt.Objective(cfg.objective.name, cfg.objective.direction),
        max_trials=s.max_trials,
        num_initial_points=s.num_initial_points,
        alpha=s.alpha,
        beta=s.beta,
        seed=derive(cfg.seed, "oracle"),
        hyperparameters=hp,
    )
    theirs.verbose = 0
    theirs._set_project_dir(str(tmp_path / "theirs"), "kt")
    for _ in range(s.max_trials):  # five of the seven proposals come from the Gaussian process
        proposal = ours.ask()
        trial = theirs.create_trial("tuner0")
        assert proposal.values == trial.hyperparameters.values, (  # floats too, bit for bit
            f"the quick Bayesian oracle proposes otherwise than KerasTuner's; {MOVE_THE_BOUND}"
        )
        score = landscape(proposal.values)
        ours.tell(proposal, Outcome("COMPLETE", score, 1))
        theirs.update_trial(trial.trial_id, {cfg.objective.name: score})
        trial.status = "COMPLETED"
        theirs.end_trial(trial)
    assert ours.ask() is None
    # the climbs were real (a flat fit stops each at its start), some at the upper bound
    assert climbed["steps"] > 2 * 5 * UCB_STARTS and climbed["at_upper_bound"] > 0


@pytest.mark.parametrize("name", ["random", "hyperband"])
def test_a_trial_the_oracle_never_recorded_is_proposed_again_on_resume(name, tmp_path):
    """A study stopped inside `create_trial`, after the new trial's file and before oracle.json
    (a SIGTERM did this in CI): resumed, the oracle proposes that trial again, id and values."""
    cfg = load_config([f"strategy={name}", "budget=smoke"])

    def strategy(resume: bool):
        context = StrategyContext(
            space=cfg.model.space,
            objective=cfg.objective,
            seed=0,
            workdir=tmp_path,
            resume=resume,
            epochs=2,
        )
        return cfg.strategy.cls(cfg.strategy.settings, context)

    first = strategy(resume=False)
    done = first.ask()
    first.tell(done, Outcome("COMPLETE", 0.5, 2))
    oracle_file = tmp_path / "keras_tuner" / "oracle.json"
    committed = oracle_file.read_text()
    lost = first.ask()
    oracle_file.write_text(committed)  # as if stopped before create_trial saved the oracle
    again = strategy(resume=True).ask()
    assert (again.trial_id, again.values) == (lost.trial_id, lost.values)
