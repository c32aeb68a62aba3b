"""Designed experiments: design matrices from pyDOE3, coded levels, resolution and aliases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyDOE3
import pytest
from conftest import load_config, run_study
from mlflow.tracking import MlflowClient

from tunelab.schema import ConfigError
from tunelab.strategies.base import StrategyContext
from tunelab.strategies.fractional_factorial import (
    FractionalFactorial,
    defining_words,
    generators_for,
    resolution,
)
from tunelab.strategies.full_factorial import FullFactorial

SEVEN = "model.tune=[lr,dropout,units,batch_size,depth,l2,activation]"
TWO_LEVELS = [
    "model.space.units.values=[64,256]",
    "model.space.batch_size.values=[32,128]",
    "model.space.l2.values=[0.0,0.001]",
]


def make(strategy_overrides: list[str], tmp_path, resume: bool = False):
    cfg = load_config(strategy_overrides)
    context = StrategyContext(
        space=cfg.model.space,
        objective=cfg.objective,
        seed=cfg.seed,
        workdir=tmp_path,
        resume=resume,
        epochs=cfg.model.training.epochs,
    )
    return cfg.strategy.cls(cfg.strategy.settings, context)


def coded_matrix(strategy) -> np.ndarray:
    names = strategy.context.space.names
    return np.array([[p.params[f"coded.{n}"] for n in names] for p in strategy.points])


def test_two_level_full_factorial_is_pydoe3_ff2n_with_replicates_and_centres(tmp_path):
    plan = make(
        [
            "strategy=full_factorial",
            "model.tune=[lr,dropout,depth]",
            "strategy.replicates=2",
            "strategy.center_points=3",
        ],
        tmp_path,
    )
    assert isinstance(plan, FullFactorial)
    expected = np.vstack([pyDOE3.ff2n(3)] * 2 + [np.zeros((3, 3))])
    np.testing.assert_array_equal(coded_matrix(plan), expected)
    first = plan.points[0].values  # ff2n's first row is all −1: every factor at its low value
    assert (first["lr"], first["dropout"], first["depth"]) == (1e-4, 0.0, 1)
    centre = plan.points[-1].values
    assert centre["lr"] == pytest.approx(1e-3)  # geometric midpoint of a log-scale range
    assert (centre["dropout"], centre["depth"]) == (0.25, 2)


def test_general_full_factorial_is_pydoe3_fullfact(tmp_path):
    plan = make(
        [
            "strategy=full_factorial",
            "strategy.levels=all",
            "strategy.randomize=false",
            "model.tune=[units,activation]",
        ],
        tmp_path,
    )
    np.testing.assert_array_equal(coded_matrix(plan), pyDOE3.fullfact([4, 2]))
    assert plan.points[5].values == {"units": 128, "activation": "tanh"}


def test_fractional_seven_factors_in_eight_runs(tmp_path):
    plan = make(
        [
            "strategy=fractional_factorial",
            SEVEN,
            *TWO_LEVELS,
            "strategy.generators=a b c ab ac bc abc",
        ],
        tmp_path,
    )
    assert isinstance(plan, FractionalFactorial)
    np.testing.assert_array_equal(coded_matrix(plan), pyDOE3.fracfact("a b c ab ac bc abc"))
    design = plan.describe()
    assert design.params["design.resolution"] == 3 and design.params["design.runs"] == 8
    aliases = design.texts["design/aliases.txt"]
    assert "resolution: 3" in aliases
    assert "a = bd = ce = fg" in aliases  # pyDOE3's alias map of this design
    assert "d = batch_size, e = depth" in aliases


def test_resolution_is_the_shortest_defining_word():
    assert resolution("a b c ab ac bc abc") == 3
    assert defining_words("a b c d abcd") == ["abcde"]
    assert resolution("a b c d abcd") == 5
    assert resolution("a b c") is None


@pytest.mark.parametrize(
    ("k", "minimum", "runs", "found"), [(7, 3, 8, 3), (5, 5, 16, 5), (4, 4, 8, 4), (6, 4, 16, 4)]
)
def test_a_requested_resolution_gets_the_fewest_runs(k, minimum, runs, found):
    generators = generators_for(k, minimum)
    assert len(pyDOE3.fracfact(generators)) == runs  # fracfact_by_res gives 16 for (7, 3)
    assert resolution(generators) == found


def test_run_order_is_random_but_seeded_and_logged_next_to_the_standard_order(tmp_path):
    args = ["strategy=full_factorial", "model.tune=[lr,dropout,depth]"]
    a, b = make(args, tmp_path / "a"), make(args, tmp_path / "b")
    c = make([*args, "seed=1"], tmp_path / "c")
    assert a.order == b.order != list(range(8))
    assert c.order != a.order
    first = a.ask()
    assert first.params["run_order"] == 0
    assert first.params["standard_order"] == a.order[0]


def test_two_level_factor_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="model.space.units: a two-level factor needs exactly"):
        make(["strategy=fractional_factorial", "model.tune=[units,lr,dropout]"], tmp_path)
    with pytest.raises(ConfigError, match="defines 7 factors but model.tune has 3"):
        make(
            [
                "strategy=fractional_factorial",
                "model.tune=[lr,dropout,depth]",
                "strategy.generators=a b c ab ac bc abc",
            ],
            tmp_path,
        )


@pytest.mark.slow
def test_a_design_it_cannot_make_stops_before_tensorflow_and_mlflow(tmp_path):
    code = (
        "import runpy, sys; sys.argv = ['tunelab', 'strategy=full_factorial', "
        "'model.tune=[units,lr]']\n"
        "try:\n    runpy.run_module('tunelab', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    print('tensorflow' in sys.modules, e.code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.stdout.split() == ["False", "2"]
    assert "model.space.units: a two-level factor needs exactly two values" in done.stderr
    assert not (tmp_path / "mlflow.db").exists()  # nothing logged


@pytest.mark.slow
def test_fractional_study_logs_coded_levels_and_the_alias_structure(tracking_uri, tmp_path):
    summary = run_study(
        [
            "dataset=digits",
            "budget=smoke",
            "strategy=fractional_factorial",
            "model.tune=[lr,dropout,units]",
            "model.space.units.values=[16,32]",
            "strategy.generators=a b ab",
        ],
        tmp_path,
    )
    client = MlflowClient(tracking_uri)
    assert len(summary.trials) == 4
    study = client.get_run(summary.run_id)
    assert study.data.params["design.resolution"] == "3"
    aliases = client.download_artifacts(summary.run_id, "design/aliases.txt", str(tmp_path))
    assert "c = ab" in Path(aliases).read_text()
    for trial in summary.trials:
        params = client.get_run(trial.run_id).data.params
        assert params["coded.units"] in ("-1", "1")
        assert params["units"] == ("16" if params["coded.units"] == "-1" else "32")
        assert {"standard_order", "run_order", "coded.lr", "coded.dropout"} <= set(params)

    from tunelab.compare.cli import main

    assert (
        main(
            [
                "factorial",
                "--tracking-uri",
                tracking_uri,
                "--study",
                summary.study_id,
                "--factors",
                "coded.lr,coded.dropout,coded.units",
                "--order",
                "1",
            ]
        )
        == 0
    )
    comparison = client.search_runs(
        [client.get_run(summary.run_id).info.experiment_id], "tags.`tunelab.kind` = 'comparison'"
    )[0]
    assert comparison.data.params["runs"] == "4" and "lenth.pse" in comparison.data.params


@pytest.mark.slow
def test_an_inert_factor_is_designed_and_logged_but_the_model_never_takes_it(
    tracking_uri, tmp_path
):
    summary = run_study(
        [
            "dataset=digits",
            "budget=smoke",
            "strategy=full_factorial",
            "model.tune=[lr,guidance_weight]",
            "+model.space.guidance_weight={type: float, low: 0.0, high: 3.0, inert: true}",
        ],
        tmp_path,
    )
    client = MlflowClient(tracking_uri)
    assert [t.status for t in summary.trials] == ["COMPLETE"] * 4
    levels = sorted(
        (p["guidance_weight"], p["coded.guidance_weight"])
        for p in (client.get_run(t.run_id).data.params for t in summary.trials)
    )
    assert levels == [("0.0", "-1"), ("0.0", "-1"), ("3.0", "1"), ("3.0", "1")]
