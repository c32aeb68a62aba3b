"""Response surfaces: pyDOE3 designs, the quadratic fit and its stationary point."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pyDOE3
import pytest
import statsmodels.formula.api as smf
from conftest import load_config, run_study
from mlflow.tracking import MlflowClient

from tunelab.analysis.rsm import fit_quadratic
from tunelab.schema import ConfigError
from tunelab.strategies import Outcome, StrategyContext


def make(overrides, tmp_path):
    cfg = load_config(["strategy=rsm", *overrides])
    context = StrategyContext(
        space=cfg.model.space,
        objective=cfg.objective,
        seed=0,
        workdir=tmp_path,
        resume=False,
        epochs=1,
    )
    return cfg.strategy.cls(cfg.strategy.settings, context)


def coded(strategy) -> np.ndarray:
    names = strategy.context.space.names
    return np.array([[p.params[f"coded.{n}"] for n in names] for p in strategy.points])


def test_designs_are_pydoe3s(tmp_path):
    ccf = make(["model.tune=[lr,dropout]", "strategy.center_points=3"], tmp_path / "a")
    np.testing.assert_allclose(coded(ccf), pyDOE3.ccdesign(2, center=(0, 3), face="ccf"))
    bbd = make(["model.tune=[lr,dropout,depth]", "strategy.design=bbd"], tmp_path / "b")
    np.testing.assert_allclose(coded(bbd), pyDOE3.bbdesign(3, center=3))
    rotatable = make(["model.tune=[lr,dropout]", "strategy.face=ccc"], tmp_path / "c")
    assert np.abs(coded(rotatable)).max() == pytest.approx(np.sqrt(2), abs=1e-4)
    point = ccf.points[0]  # coded (−1, −1): lr at its low bound 1e-4, dropout at 0
    assert point.values["lr"] == pytest.approx(1e-4) and point.values["dropout"] == 0.0


def test_rsm_refuses_categorical_factors(tmp_path):
    with pytest.raises(ConfigError, match="model.space.units: a response surface needs"):
        make(["model.tune=[lr,units]"], tmp_path)


def test_quadratic_fit_recovers_a_known_surface_and_its_maximum():
    rng = np.random.default_rng(0)
    design = pd.DataFrame(pyDOE3.ccdesign(2, center=(0, 4), face="ccf"), columns=["a", "b"])
    # y = 5 + a − 0.5 b − 2 a² − b² + 0.5 ab: a maximum at a = 0.2258.., b = −0.1935..
    a, b = design["a"], design["b"]
    y = 5 + a - 0.5 * b - 2 * a**2 - b**2 + 0.5 * a * b + rng.normal(0, 0.01, len(design))
    fit = fit_quadratic(design, design * 2, y.to_numpy())
    assert fit.coefficients.loc["I(a ** 2)", "estimate"] == pytest.approx(-2, abs=0.05)
    assert fit.coefficients.loc["a:b", "estimate"] == pytest.approx(0.5, abs=0.05)
    assert fit.nature == "maximum" and fit.r2 > 0.99
    B = np.array([[-2, 0.25], [0.25, -1]])
    expected = -0.5 * np.linalg.solve(B, np.array([1, -0.5]))
    assert [fit.stationary_point["a"], fit.stationary_point["b"]] == pytest.approx(
        expected, abs=0.02
    )
    assert fit.lack_of_fit is not None and fit.lack_of_fit["df_pure_error"] == 3
    saddle = fit_quadratic(design, design, (a**2 - b**2 + rng.normal(0, 0.01, len(a))).to_numpy())
    assert saddle.nature == "saddle point"


def test_rsm_strategy_fits_every_run_of_the_study(tmp_path):
    """The fit reads every trial's outcome it is given, not only those this process ran
    (other workers', an earlier session's)."""
    strategy = make(["model.tune=[lr,dropout]"], tmp_path)
    told = {}
    for _ in itertools.count():
        proposal = strategy.ask()
        if proposal is None:
            break
        x = [proposal.params["coded.lr"], proposal.params["coded.dropout"]]
        told[proposal.trial_id] = Outcome("COMPLETE", 1 - (x[0] - 0.3) ** 2 - x[1] ** 2, 1)
        if len(told) % 2:  # the others ran elsewhere
            strategy.tell(proposal, told[proposal.trial_id])
        else:
            strategy.done.add(int(proposal.trial_id))
    summary = strategy.summary(told)
    assert summary.params["rsm.nature"] == "maximum"
    assert summary.params["rsm.stationary.coded.lr"] == pytest.approx(0.3, abs=1e-6)
    assert summary.params["rsm.stationary.lr"] == pytest.approx(10 ** (-3 + 0.3), rel=1e-6)
    assert set(summary.figures) == {"rsm/lr_dropout.png"}


@pytest.mark.slow
def test_rsm_study_logs_the_surface(tracking_uri, tmp_path):
    overrides = [
        "dataset=digits",
        "budget=smoke",
        "strategy=rsm",
        "model.tune=[lr,dropout]",
        "strategy.center_points=2",
    ]
    summary = run_study(overrides, tmp_path)
    client = MlflowClient(tracking_uri)
    assert len(summary.trials) == 10  # 4 factorial + 4 axial + 2 centre points
    study = client.get_run(summary.run_id)
    assert study.data.params["rsm.nature"] in ("maximum", "minimum", "saddle point")
    runs = [client.get_run(t.run_id).data for t in summary.trials]
    coded = pd.DataFrame(
        {
            "a": [float(r.params["coded.lr"]) for r in runs],
            "b": [float(r.params["coded.dropout"]) for r in runs],
            "y": [r.metrics["best_val_accuracy"] for r in runs],
        }
    )
    full_quadratic = smf.ols("y ~ a + b + I(a**2) + I(b**2) + a:b", coded).fit()
    assert float(study.data.params["rsm.r2"]) == pytest.approx(full_quadratic.rsquared)
    assert {"rsm/lr_dropout.png", "rsm/coefficients_coded.csv"} <= {
        f.path for f in client.list_artifacts(summary.run_id, "rsm")
    }
