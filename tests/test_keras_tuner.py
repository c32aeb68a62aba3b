"""KerasTuner's Bayesian oracle, with the Gaussian process that predicts single points quickly."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_config
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, Matern

from tunelab.seeding import derive
from tunelab.strategies import Outcome, StrategyContext
from tunelab.strategies.quick_gp import QuickGPR


@pytest.mark.parametrize("kernel", [Matern(nu=2.5), RBF()], ids=["keras-tuner-matern", "other"])
@pytest.mark.parametrize("target", ["noise", "smooth"])
def test_quick_gp_predicts_bit_for_bit_what_sklearn_predicts(kernel, target):
    rng = np.random.default_rng(0)
    x = rng.random((8, 5))
    y = rng.random(8) if target == "noise" else np.sin(3 * x).sum(axis=1)
    settings = {"kernel": kernel, "n_restarts_optimizer": 20, "normalize_y": True,
                "alpha": 1e-4, "random_state": 1}  # fmt: skip  (KerasTuner's settings)
    plain, quick = GaussianProcessRegressor(**settings).fit(x, y), QuickGPR(**settings).fit(x, y)
    points = [rng.random((1, 5)) for _ in range(200)] + [x[:1], rng.random((7, 5))]
    for point in points:
        for got, want in zip(quick.predict(point, return_std=True),
                             plain.predict(point, return_std=True), strict=True):  # fmt: skip
            assert np.array_equal(got, want)
    assert np.array_equal(quick.predict(points[0]), plain.predict(points[0]))  # sklearn's path


def test_bayesian_strategy_proposes_what_keras_tuners_own_oracle_proposes(tmp_path):
    import keras_tuner as kt

    cfg = load_config(["strategy=bayesian", "strategy.max_trials=7",
                       "strategy.num_initial_points=2"])  # fmt: skip
    s = cfg.strategy.settings
    context = StrategyContext(space=cfg.model.space, objective=cfg.objective, seed=cfg.seed,
                              workdir=tmp_path / "ours", resume=False, epochs=1)  # fmt: skip
    context.workdir.mkdir()
    ours = cfg.strategy.cls(s, context)
    hp = kt.HyperParameters()
    cfg.model.space.declare_keras_tuner(hp)
    theirs = kt.oracles.BayesianOptimizationOracle(
        objective=kt.Objective(cfg.objective.name, cfg.objective.direction),
        max_trials=s.max_trials, num_initial_points=s.num_initial_points, alpha=s.alpha,
        beta=s.beta, seed=derive(cfg.seed, "oracle"), hyperparameters=hp,
    )  # fmt: skip
    theirs._set_project_dir(str(tmp_path / "theirs"), "kt")
    scores = np.random.default_rng(1).random(s.max_trials)
    for score in scores:  # five of the seven proposals come from the Gaussian process
        proposal = ours.ask()
        trial = theirs.create_trial("tuner0")
        assert proposal.values == trial.hyperparameters.values
        ours.tell(proposal, Outcome("FINISHED", float(score), 1))
        theirs.update_trial(trial.trial_id, {cfg.objective.name: float(score)})
        trial.status = "COMPLETED"
        theirs.end_trial(trial)
    assert ours.ask() is None
