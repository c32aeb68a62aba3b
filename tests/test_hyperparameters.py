"""A user's `build(hp)` as the strategies see it: the space KerasTuner would find, its
conditional scopes, and the values each trial's model read (no training, no server)."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest

from tunelab.hyperparameters import TrialHyperParameters, discover, search_space
from tunelab.objective import Objective
from tunelab.schema import ConfigError
from tunelab.space import SearchSpace
from tunelab.strategies import StrategyContext
from tunelab.strategies.full_factorial import FullFactorial, FullFactorialSettings
from tunelab.strategies.grid import Grid, GridSettings


def build(hp):
    """A kind of network chosen first; each kind has its own width (conditional scopes)."""
    kind = hp.Choice("kind", ["narrow", "wide"])
    with hp.conditional_scope("kind", ["narrow"]):
        if kind == "narrow":
            width = hp.Int("narrow_units", 8, 16, step=8)
    with hp.conditional_scope("kind", ["wide"]):
        if kind == "wide":
            width = hp.Choice("wide_units", [64, 128, 256])
    hp.Boolean("bias")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(width)])
    model.compile("adam", "mse")
    return model


def discovered() -> SearchSpace:
    from tunelab.hyperparameters import as_hypermodel

    return search_space(discover(as_hypermodel(build), lambda model: None), SearchSpace({}))


def context(space: SearchSpace, tmp_path: Path) -> StrategyContext:
    objective = Objective("val_loss", "min")
    return StrategyContext(
        space=space,
        objective=objective,
        seed=0,
        workdir=tmp_path,
        resume=False,
        epochs=1,
        define_by_run=True,
    )


def test_discovery_activates_every_conditional_scope():
    space = discovered()
    assert space.names == ["kind", "narrow_units", "bias", "wide_units"]  # as first declared
    assert space.params["wide_units"].conditions == [{"name": "kind", "values": ["wide"]}]
    assert space.conditional == ["narrow_units", "wide_units"]


def test_the_grid_varies_a_conditional_parameter_only_where_it_is_active(tmp_path):
    points = Grid(GridSettings(), context(discovered(), tmp_path)).plan()
    # narrow: 2 widths x 2 bias; wide: 3 widths x 2 bias; never a width of the other kind
    assert len(points) == 2 * 2 + 3 * 2
    assert all(("narrow_units" in p.values) == (p.values["kind"] == "narrow") for p in points)


def test_a_design_refuses_a_conditional_parameter_naming_the_space_that_fixes_it(tmp_path):
    with pytest.raises(ConfigError) as error:
        FullFactorial(FullFactorialSettings(), context(discovered(), tmp_path))
    message = str(error.value)
    assert message.startswith("model.space.narrow_units: active only where kind in ['narrow']")
    assert "space={'narrow_units': {'type': 'int', 'low': 8, 'high': 16, 'step': 8}}" in message


def test_a_trial_logs_only_the_values_its_model_read():
    hp = TrialHyperParameters({"kind": "wide", "wide_units": 64, "narrow_units": 8})
    build(hp)
    assert hp.used_values() == {"kind": "wide", "wide_units": 64, "bias": False}


def test_optuna_draws_a_name_only_when_the_model_asks(tmp_path):
    import optuna

    from tunelab.hyperparameters import optuna_draw

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(6):
        trial = study.ask()
        hp = TrialHyperParameters(draw=optuna_draw(trial, SearchSpace({})))
        build(hp)
        other = "narrow_units" if hp.values["kind"] == "wide" else "wide_units"
        assert other not in trial.params and set(trial.params) == set(hp.used_values())
        study.tell(trial, 0.0)


def test_objectives_by_name_pair_or_keras_tuner_objective():
    import keras_tuner as kt

    from tunelab.api import _objective

    assert vars(_objective(None)) == {"name": "val_loss", "direction": "min"}
    assert _objective("val_auc").direction == "max"
    assert _objective("val_mean_absolute_error").direction == "min"
    assert vars(_objective(("val_f1", "max"))) == {"name": "val_f1", "direction": "max"}
    assert vars(_objective(kt.Objective("val_r2", "max"))) == {"name": "val_r2", "direction": "max"}
    with pytest.raises(ConfigError, match="direction 'up' is not valid; valid choices: max, min"):
        _objective(("val_f1", "up"))


def test_file_datasets_refuse_bad_input_in_one_line(tmp_path):
    import numpy as np

    from tunelab.data.images import Images, ImageSettings
    from tunelab.data.npz import NPZ
    from tunelab.data.supervised import FileSettings
    from tunelab.data.table import Table, TableSettings

    (tmp_path / "t.csv").write_text("a,b,price\n1,x,3.0\n2,y,4.0\n")
    with pytest.raises(
        ConfigError, match="dataset.target: no column 'cost'; the columns are a, b, price"
    ):
        Table.load(TableSettings(path=str(tmp_path / "t.csv"), target="cost"), 0)
    (tmp_path / "photos" / "cats").mkdir(parents=True)
    with pytest.raises(
        ConfigError, match="needs one subfolder of images per class, at least two; found 0"
    ):
        Images.load(ImageSettings(path=str(tmp_path / "photos")), 0)
    np.savez(tmp_path / "d.npz", features=np.zeros(3))
    with pytest.raises(ConfigError, match="'.*d.npz' has features; expected x and y, or x_train"):
        NPZ.load(FileSettings(path=str(tmp_path / "d.npz")), 0)
    with pytest.raises(ConfigError, match="dataset.path: no file at"):
        NPZ.load(FileSettings(path=str(tmp_path / "none.npz")), 0)


def test_a_table_is_encoded_on_its_training_split_and_an_unseen_value_is_other(tmp_path):
    import numpy as np
    import pandas as pd

    from tunelab.data.table import Encoder

    train = pd.DataFrame({"size": [1.0, 3.0], "colour": ["red", "blue"]})
    encoder = Encoder.fit(train)
    encoded = encoder.transform(pd.DataFrame({"size": [2.0], "colour": ["green"]}))
    # size standardised with the training mean 2 and sd 1; blue, red, other
    assert encoded.tolist() == [[0.0, 0.0, 0.0, 1.0]]
    assert encoder.describe()["one_hot"] == {"colour": ["blue", "red", "other"]}
    assert np.allclose(encoder.transform(train)[:, 0], [-1, 1])
