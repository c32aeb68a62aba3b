"""The one search space and its translations to KerasTuner, Optuna and a grid."""

from __future__ import annotations

import math
import re

import optuna
import pytest

from tunelab.schema import ConfigError
from tunelab.space import SearchSpace

SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "units": {"type": "choice", "values": [64, 128, 256]},
    "batch_norm": {"type": "bool"},
    "depth": {"type": "int", "low": 1, "high": 4},
}


def test_keras_tuner_translation_keeps_types_bounds_and_scale():
    import keras_tuner as kt

    hp = kt.HyperParameters()
    SearchSpace.from_config(SPACE).declare_keras_tuner(hp)
    declared = {p.name: p for p in hp.space}
    assert set(declared) == set(SPACE)
    assert isinstance(declared["lr"], kt.engine.hyperparameters.Float)
    assert (declared["lr"].min_value, declared["lr"].max_value) == (1e-4, 1e-2)
    assert declared["lr"].sampling == "log"
    assert declared["units"].values == [64, 128, 256]
    assert isinstance(declared["batch_norm"], kt.engine.hyperparameters.Boolean)
    assert (declared["depth"].min_value, declared["depth"].max_value) == (1, 4)


def test_optuna_translation_samples_inside_the_space():
    space = SearchSpace.from_config(SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        values = space.suggest_optuna(trial)
        assert 1e-4 <= values["lr"] <= 1e-2
        assert values["units"] in (64, 128, 256)
        assert values["batch_norm"] in (False, True)
        assert values["depth"] in (1, 2, 3, 4)
        study.tell(trial, 0.0)
    distribution = study.trials[0].distributions["lr"]
    assert distribution.log and distribution.low == 1e-4


def test_grid_enumerates_every_combination_first_parameter_slowest():
    space = SearchSpace.from_config({k: SPACE[k] for k in ("units", "batch_norm", "depth")})
    points = space.grid()
    assert len(points) == 3 * 2 * 4 == space.size()
    assert points[0] == {"units": 64, "batch_norm": False, "depth": 1}
    assert points[-1] == {"units": 256, "batch_norm": True, "depth": 4}
    assert len({tuple(p.values()) for p in points}) == len(points)


def test_grid_spreads_points_over_ranges_log_spaced_where_log():
    space = SearchSpace.from_config(
        {
            "lr": "tag(log, interval(1e-4, 1e-2))",
            "dropout": "interval(0.0, 0.5)",
            "width": {"type": "int", "low": 8, "high": 512, "log": True},
            "depth": {"type": "int", "low": 1, "high": 5, "step": 2},
            "act": "choice(relu, tanh)",
        }
    )
    axes = {name: p.grid_values(3) for name, p in space.params.items()}
    assert axes["lr"] == pytest.approx([1e-4, 1e-3, 1e-2])
    assert axes["dropout"] == pytest.approx([0.0, 0.25, 0.5])
    assert axes["width"] == [8, 64, 512]
    assert axes["depth"] == [1, 3, 5]  # a linear int takes every value at its step
    assert axes["act"] == ["relu", "tanh"]
    assert len(space.grid(points=3)) == 3 * 3 * 3 * 3 * 2


def test_a_grid_above_max_points_is_refused_naming_its_size():
    space = SearchSpace.from_config({"a": "interval(0, 1)", "b": "choice(1, 2, 3, 4)"})
    with pytest.raises(ConfigError, match=r"the grid has 40 points \(a 10 x b 4\), more than 39"):
        space.grid(points=10, max_points=39)


def test_continuous_space_has_infinite_size():
    assert math.isinf(SearchSpace.from_config(SPACE).size())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "float", "low": 1.0, "high": 1.0}, "low (1.0) must be below high (1.0)"),
        ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "log scale needs low > 0"),
        ({"type": "int", "low": 1.5, "high": 3}, "needs integer low, high and step"),
        ({"type": "choice", "values": []}, "needs a non-empty values list"),
        ({"type": "choice", "values": [1, 1]}, "values contain duplicates"),
        ({"type": "bool", "low": 0}, "takes no low/high/step/values"),
        ({"type": "categorical", "values": [1]}, "valid choices: float, int, choice, bool"),
        ({"type": "float", "low": 0, "high": 1, "scale": "log"}, "x.scale: unknown key"),
    ],
)
def test_invalid_parameters_are_rejected_with_the_key(spec, message):
    with pytest.raises(ConfigError) as error:
        SearchSpace.from_config({"x": spec}, "model.space")
    assert message in str(error.value)
    assert str(error.value).startswith("model.space.x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("choice(64, 128)", {"type": "choice", "values": [64, 128]}),
        ("interval(0.1, 0.5)", {"type": "float", "low": 0.1, "high": 0.5}),
        ("tag(log, interval(1e-4, 1e-2))", {"type": "float", "low": 1e-4, "log": True}),
        ("range(32, 65, 16)", {"type": "int", "low": 32, "high": 64, "step": 16}),
        ("range(1, 4)", {"type": "int", "low": 1, "high": 3, "step": 1}),
    ],
)
def test_hydra_sweep_syntax_is_accepted(text, expected):
    param = SearchSpace.from_config({"x": text}).params["x"]
    for key, value in expected.items():
        assert getattr(param, key) == value


def test_unreadable_sweep_syntax_says_what_to_write():
    with pytest.raises(ConfigError, match=re.escape("model.space.x: cannot read 'between(1, 2)'")):
        SearchSpace.from_config({"x": "between(1, 2)"})


def test_list_valued_choices_are_for_the_grid_only():
    space = SearchSpace.from_config({"widths": {"type": "choice", "values": [[64], [128, 64]]}})
    assert space.grid() == [{"widths": [64]}, {"widths": [128, 64]}]
    with pytest.raises(ConfigError, match="KerasTuner cannot tune list-valued choices"):
        import keras_tuner as kt

        space.declare_keras_tuner(kt.HyperParameters())
