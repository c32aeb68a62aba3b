"""The private internals tunelab relies on, checked by name so that a release that changes
them fails here, loudly, naming what moved (pyproject.toml bounds these packages)."""

from __future__ import annotations

import hashlib
import inspect

import pytest
from conftest import MOVE_THE_BOUND


def _oracles():
    import keras_tuner as kt

    return kt.oracles


INTERNALS = [  # (what, where tunelab uses it, how to get the object, its private attributes)
    (
        "keras_tuner Oracle",
        "strategies/keras_tuner.py",
        lambda: _oracles().RandomSearchOracle,
        ["_set_project_dir", "_get_oracle_fname", "_get_trial_dir", "_save_trial"],
    ),
    (
        "keras_tuner HyperbandOracle",
        "strategies/keras_tuner.py",
        lambda: _oracles().HyperbandOracle,
        ["_get_size", "_get_num_brackets"],
    ),
    (
        "keras_tuner BayesianOptimizationOracle",
        "strategies/keras_bayesian_oracle.py",
        lambda: _oracles().BayesianOptimizationOracle,
        [
            "_make_gpr",
            "_random_populate_space",
            "_vectorize_trials",
            "_get_hp_bounds",
            "_vector_to_values",
        ],
    ),
]


@pytest.mark.parametrize(
    ("what", "where", "get", "attributes"), INTERNALS, ids=[i[0] for i in INTERNALS]
)
def test_the_private_methods_tunelab_calls_still_exist(what, where, get, attributes):
    owner = get()
    missing = [name for name in attributes if not hasattr(owner, name)]
    assert not missing, f"{what} no longer has {missing}, which {where} uses; {MOVE_THE_BOUND}"


def test_a_fitted_gaussian_process_keeps_the_attributes_quick_gp_reads():
    import numpy as np
    from sklearn.gaussian_process import GaussianProcessRegressor

    gpr = GaussianProcessRegressor(normalize_y=True).fit(np.eye(3), np.arange(3.0))
    names = ["_y_train_mean", "_y_train_std", "L_", "alpha_", "X_train_", "kernel_"]
    missing = [name for name in names if not hasattr(gpr, name)]
    assert not missing, (
        f"scikit-learn's GaussianProcessRegressor no longer sets {missing}, "
        f"which strategies/keras_bayesian_oracle.py reads; {MOVE_THE_BOUND}"
    )


SOURCES = {  # code tunelab reproduces step for step: its text must not change unnoticed
    "keras_tuner BayesianOptimizationOracle.populate_space (strategies/keras_bayesian_oracle.py)": (
        lambda: _oracles().BayesianOptimizationOracle.populate_space,
        "bf426ef270d32ccb",
    ),
    "sklearn GaussianProcessRegressor.predict (keras_bayesian_oracle.py QuickGPR.predict)": (
        lambda: (
            __import__("sklearn.gaussian_process", fromlist=["x"]).GaussianProcessRegressor.predict
        ),
        "54b504df48739d57",
    ),
}


@pytest.mark.parametrize("what", list(SOURCES))
def test_the_code_tunelab_reproduces_is_unchanged(what):
    get, digest = SOURCES[what]
    found = hashlib.sha256(inspect.getsource(get()).encode()).hexdigest()[:16]
    assert found == digest, f"{what} changed (source digest {found}); {MOVE_THE_BOUND}"


def test_optuna_trials_reopen_by_storage_id():
    """OptunaStrategy proposes a killed study's RUNNING trials again through
    `optuna.trial.Trial(study, frozen._trial_id)`."""
    import optuna

    study = optuna.create_study()
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    frozen = study.get_trials(deepcopy=False)[0]
    assert hasattr(frozen, "_trial_id"), f"optuna's FrozenTrial has no _trial_id; {MOVE_THE_BOUND}"
    again = optuna.trial.Trial(study, frozen._trial_id)
    assert again.number == trial.number and again.suggest_float("x", 0, 1) == trial.params["x"]


def test_tensorflow_keeps_its_gradient_registry_where_train_py_cleans_it():
    from tensorflow.python.framework import ops

    assert isinstance(getattr(getattr(ops, "_gradient_registry", None), "_registry", None), dict), (
        f"tensorflow's ops._gradient_registry._registry moved, which train.py cleans after "
        f"every trial (tensorflow/tensorflow#97697); {MOVE_THE_BOUND}"
    )


def test_optuna_heartbeats_live_in_tables_the_shared_studies_read(tmp_path):
    """`SharedTrials.take` finds a RUNNING trial that never had a heartbeat through Optuna's
    ORM models `TrialModel` and `TrialHeartbeatModel` and `RDBStorage.engine`."""
    import optuna

    from tunelab.strategies.optuna_shared import SharedTrials

    sharing = SharedTrials(f"sqlite:///{tmp_path / 'optuna.db'}", 10, tmp_path, str)
    study = optuna.create_study(study_name="s", storage=sharing.storage)
    beaten, unbeaten = study.ask(), study.ask()
    sharing.storage.record_heartbeat(beaten._trial_id)
    assert sharing._unbeaten(study) == unbeaten._trial_id, MOVE_THE_BOUND


def test_mlflow_still_skips_type_hint_validation_where_serving_asks_it_to():
    """`tunelab.serving.ServedModel` sets `_skip_type_hint_validation`: its `predict` takes
    DataFrames, arrays or dicts, and MLflow would otherwise wrap it and warn at import."""
    import mlflow.pyfunc.model

    source = inspect.getsource(mlflow.pyfunc.model.PythonModel.__init_subclass__)
    assert "_skip_type_hint_validation" in source, (
        f"mlflow's PythonModel no longer reads _skip_type_hint_validation, which serving.py "
        f"sets; {MOVE_THE_BOUND}"
    )
