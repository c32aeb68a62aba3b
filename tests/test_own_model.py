"""Your own model on your own data: `tunelab.tune` of KerasTuner-style code, read back from a
real `mlflow server`."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_diabetes, load_digits
from stop_at import StopAt

import tunelab
from tunelab.schema import ConfigError, StudyFailed
from tunelab.strategies import Proposal, Strategy

pytestmark = pytest.mark.slow


def digits(n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    bunch = load_digits()
    return (bunch.images[:n, ..., None] / 16.0).astype("float32"), bunch.target[:n]


def build_model(hp):
    """KerasTuner's getting-started model, smaller: a conditional layer loop."""
    model = keras.Sequential([keras.layers.Flatten()])
    for i in range(hp.Int("num_layers", 1, 2)):
        model.add(keras.layers.Dense(hp.Int(f"units_{i}", 16, 32, step=16), activation="relu"))
    if hp.Boolean("dropout"):
        model.add(keras.layers.Dropout(0.25))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(
        keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


class ShuffleAndNormalise(kt.HyperModel):
    """A HyperModel whose `fit` tunes `shuffle` and a preprocessing switch."""

    def build(self, hp):
        model = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
        model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def fit(self, hp, model, x, y, validation_data=None, **kwargs):
        if hp.Boolean("normalise"):
            x = (x - x.mean()) / x.std()
            validation_data = ((validation_data[0] - x.mean()) / x.std(), validation_data[1])
        return model.fit(
            x, y, shuffle=hp.Boolean("shuffle"), validation_data=validation_data, **kwargs
        )


def trial_runs(client: MlflowClient, study_run_id: str) -> list:
    study = client.get_run(study_run_id)
    return client.search_runs(
        [study.info.experiment_id], f"tags.`mlflow.parentRunId` = '{study_run_id}'"
    )


def tune_digits(tracking_uri: str, tmp_path, build=build_model, **kwargs):
    x, y = digits()
    settings = {
        "validation_split": 0.25,
        "epochs": 1,
        "objective": "val_accuracy",
        "tracking_uri": tracking_uri,
        "workdir": str(tmp_path / "work"),
        "quiet": True,
        **kwargs,
    }
    return tunelab.tune(build, x, y, **settings)


STRATEGIES = {
    "random": {"max_trials": 3},  # KerasTuner's oracle
    "tpe": {"max_trials": 3},  # Optuna, define-by-run
    "grid": {"space": {"lr": {"type": "choice", "values": [0.01]}}},  # the discovered space
}


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_a_build_function_with_a_layer_loop_is_tuned_by_every_strategy_family(
    strategy, tracking_uri, tmp_path
):
    result = tune_digits(tracking_uri, tmp_path, strategy=strategy, **STRATEGIES[strategy])
    client = MlflowClient(tracking_uri)
    runs = trial_runs(client, result.study_run_id)
    assert len(runs) == len(result.trials) > 0
    assert client.get_run(result.study_run_id).info.status == "FINISHED"
    assert {r.info.status for r in runs} == {"FINISHED"}
    for run in runs:  # a layer's width is a param only where the loop reached it
        params = run.data.params
        layers = int(params["num_layers"])
        assert {f"units_{i}" for i in range(layers)} <= set(params)
        assert f"units_{layers}" not in params
        assert "val_accuracy" in run.data.metrics and "test_accuracy" not in run.data.metrics
        assert "val_f1.0" in run.data.metrics  # evaluated on validation: no test_data given
    if strategy == "grid":  # num_layers x units_0 x dropout, lr fixed by space=
        assert len(runs) == 8
        assert {r.data.params["lr"] for r in runs} == {"0.01"}
    assert result.best_value == pytest.approx(max(result.trials["val_accuracy"]))
    assert set(result.best_params) >= {"num_layers", "units_0", "dropout", "lr"}
    model = result.load_best_model()
    x, _ = digits(5)
    assert model.predict(x, verbose=0).shape == (5, 10)
    artifacts = {a.path for a in client.list_artifacts(result.study_run_id, "config")}
    assert "config/space.yaml" in artifacts
    study = client.get_run(result.study_run_id)
    assert study.data.tags["mlflow.source.name"]  # the entry point (this test process)
    for run in (study, runs[0]):  # the UI's Dataset column: each split, with its context
        inputs = {(d.dataset.name, d.tags[0].value) for d in run.inputs.dataset_inputs}
        assert inputs == {("arrays-train", "training"), ("arrays-val", "validation")}


@pytest.mark.parametrize("strategy", ["random", "tpe", "grid"])
def test_a_hypermodel_fit_tunes_shuffle_and_preprocessing(strategy, tracking_uri, tmp_path):
    # a fixed plan is made before any trial, from what build(hp) declares: what only fit asks
    # for is declared up front
    declared = {"normalise": {"type": "bool"}, "shuffle": {"type": "bool"}}
    trials = {"space": declared} if strategy == "grid" else {"max_trials": 3}
    result = tune_digits(
        tracking_uri, tmp_path, build=ShuffleAndNormalise, strategy=strategy, **trials
    )
    runs = trial_runs(MlflowClient(tracking_uri), result.study_run_id)
    assert len(runs) == (4 if strategy == "grid" else 3)  # the grid: 2 x 2 booleans
    for run in runs:
        assert {"normalise", "shuffle"} <= set(run.data.params)
    assert result.trials[["normalise", "shuffle"]].notna().all().all()
    x, _ = digits(3)
    assert result.load_best_model().predict(x, verbose=0).shape == (3, 10)


def test_a_tf_data_pipeline(tracking_uri, tmp_path):
    import tensorflow as tf

    x, y = digits()
    train = tf.data.Dataset.from_tensor_slices((x[:450], y[:450])).batch(32)
    val = tf.data.Dataset.from_tensor_slices((x[450:], y[450:])).batch(32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = tunelab.tune(
            build_model,
            train,
            validation_data=val,
            strategy="random",
            max_trials=2,
            epochs=1,
            objective="val_accuracy",
            tracking_uri=tracking_uri,
            workdir=str(tmp_path),
            quiet=True,
        )
    assert not [w for w in caught if "shuffle=True" in str(w.message)]  # Keras' per trial
    client = MlflowClient(tracking_uri)
    (run, *_) = trial_runs(client, result.study_run_id)
    assert {"val_accuracy", "val_macro_f1", "val_f1.9"} <= set(run.data.metrics)
    study = client.get_run(result.study_run_id)
    sizes = study.data.params
    assert (sizes["data.n_train"], sizes["data.n_val"]) == ("450", "150")  # rows, not batches
    datasets = {d.dataset.name: d.dataset for d in study.inputs.dataset_inputs}
    assert set(datasets) == {"tf-data-train", "tf-data-val"}  # named by what the data is
    profile = json.loads(datasets["tf-data-train"].profile)
    assert profile["features_shape"][0] == 450 and profile["targets_shape"] == [450]


def test_one_hot_and_string_labels(tracking_uri, tmp_path):
    x, y = digits()
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    names = np.array(words)[y]
    result = tunelab.tune(
        build_model,
        x,
        names,
        validation_split=0.25,
        test_data=(x, names),
        strategy="random",
        max_trials=1,
        epochs=1,
        tracking_uri=tracking_uri,
        workdir=str(tmp_path / "strings"),
        quiet=True,
    )
    client = MlflowClient(tracking_uri)
    (run,) = trial_runs(client, result.study_run_id)
    assert "test_f1.seven" in run.data.metrics  # class names kept for the plots and metrics

    def one_hot_model(hp):
        model = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
        model.compile(
            keras.optimizers.Adam(0.02), loss="categorical_crossentropy", metrics=["accuracy"]
        )
        return model

    one_hot = keras.utils.to_categorical(y, 10)
    result = tunelab.tune(
        one_hot_model,
        x,
        one_hot,
        validation_split=0.25,
        strategy="random",
        max_trials=1,
        epochs=4,
        objective="val_accuracy",
        tracking_uri=tracking_uri,
        workdir=str(tmp_path / "one_hot"),
        quiet=True,
    )
    (run,) = trial_runs(client, result.study_run_id)
    assert run.data.metrics["val_accuracy"] > 0.5  # chance is 0.1: the one-hot labels are used
    assert "val_f1.9" in run.data.metrics


def test_regression_on_diabetes_logs_errors_and_plots(tracking_uri, tmp_path):
    bunch = load_diabetes()
    x, y = bunch.data.astype("float32"), bunch.target.astype("float32")

    def regressor(hp):
        model = keras.Sequential(
            [keras.layers.Dense(hp.Choice("units", [16, 32]), "relu"), keras.layers.Dense(1)]
        )
        model.compile(keras.optimizers.Adam(0.05), loss="mse", metrics=["mae"])
        return model

    result = tunelab.tune(
        regressor,
        x[:350],
        y[:350],
        validation_split=0.2,
        test_data=(x[350:], y[350:]),
        strategy="random",
        max_trials=2,
        epochs=20,
        objective="val_r2",
        tracking_uri=tracking_uri,
        workdir=str(tmp_path / "work"),
        quiet=True,
    )
    assert result.objective.direction == "max"
    client = MlflowClient(tracking_uri)
    for run in trial_runs(client, result.study_run_id):
        assert {"test_mae", "test_rmse", "test_r2", "val_rmse"} <= set(run.data.metrics)
        plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
        assert {"plots/predicted_vs_actual.png", "plots/residuals.png"} <= plots
    predicted = result.load_best_model().predict(x[350:], verbose=0).reshape(-1)
    assert abs(np.mean(predicted) - np.mean(y)) < 3 * np.std(y)  # in the target's own units


def test_called_twice_in_one_process_with_different_strategies(tracking_uri, tmp_path):
    first = tune_digits(tracking_uri, tmp_path / "a", strategy="random", max_trials=2)
    second = tune_digits(tracking_uri, tmp_path / "b", strategy="tpe", max_trials=2)
    assert first.study_run_id != second.study_run_id
    assert len(first.trials) == len(second.trials) == 2


def uncompiled(hp):
    return keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])


def not_a_model(hp):
    return "a model"


def nine_outputs(hp):
    model = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(9, "softmax")])
    model.compile("adam", loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"build": uncompiled}, "model.build: returned an uncompiled model"),
        ({"build": not_a_model}, "model.build: returned str, not a keras.Model"),
        (
            {"build": nine_outputs},
            "y: labels of 10 classes (0..9) do not fit the model's output layer of 9 units",
        ),
        (
            {"objective": "val_auc"},
            "objective: the model does not report 'val_auc'; it reports "
            "accuracy, loss, val_accuracy, val_loss",
        ),
        (
            {"validation_split": None},
            "validation_data: the objective val_accuracy is measured on validation data",
        ),
        ({"strategy": "annealing"}, "strategy: 'annealing' is not valid; valid choices: cmaes"),
        (
            {"strategy": "hyperband", "max_trials": 3},
            "max_trials: strategy hyperband sets its own number of trials",
        ),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_run_running(kwargs, message, tracking_uri, tmp_path):
    settings = {"strategy": "random", "max_trials": 2, **kwargs}
    with pytest.raises(ConfigError) as error:
        tune_digits(tracking_uri, tmp_path, experiment="bad-input", **settings)
    assert message in str(error.value) and "\n" not in str(error.value)
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("bad-input")
    if experiment is not None:
        running = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
        assert running == []


def broken_beyond_eight(hp):
    if hp.Int("units", 8, 32, step=8) > 8:
        raise ValueError("no such layer: Dense3")
    return build_model(hp)


def test_a_build_that_raises_fails_its_trials_then_stops_the_study(tracking_uri, tmp_path):
    """Built with its defaults (units 8) the model is fine, so the study starts; the grid's
    three points beyond 8 each fail alike, and the study stops with the user's last line."""
    with pytest.raises(StudyFailed, match="ValueError: no such layer: Dense3"):
        tune_digits(
            tracking_uri,
            tmp_path,
            build=broken_beyond_eight,
            strategy="grid",
            experiment="broken",
            space={"units": "choice(16, 24, 32)", "lr": "choice(0.01)"},
        )
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("broken")
    runs = client.search_runs([experiment.experiment_id], "tags.`tunelab.kind` = 'trial'")
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FAILED"}
    assert {r.data.tags["tunelab.failure_reason"] for r in runs} == {
        "ValueError: no such layer: Dense3"
    }


def test_a_build_that_raises_with_its_defaults_is_refused_before_any_trial(tracking_uri, tmp_path):
    def always_broken(hp):
        raise ValueError("no such layer: Dense3")

    with pytest.raises(ConfigError, match="model.build: raised ValueError: no such layer: Dense3"):
        tune_digits(tracking_uri, tmp_path, build=always_broken, strategy="random", max_trials=2)


MODELS = """
import json
import math
from dataclasses import dataclass

import keras


def regressor(hp):
    model = keras.Sequential([keras.layers.Dense(hp.Int("units", 16, 32, step=16), "relu"),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.03), loss="mse", metrics=["mae"])
    return model


def classifier(hp):
    model = keras.Sequential([keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
                              keras.layers.Dense(hp.Choice("units", [16, 32]), "relu"),
                              keras.layers.Dense(10, "softmax")])
    model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
"""


def own_project(tmp_path):
    """A user's folder: a model module and a config folder whose model extends hypermodel."""
    tmp_path.mkdir(parents=True)
    (tmp_path / "mymodels.py").write_text(MODELS)
    folder = tmp_path / "conf" / "model"
    folder.mkdir(parents=True)
    for name in ("regressor", "classifier"):
        (folder / f"{name}.yaml").write_text(
            f"defaults:\n  - hypermodel\n  - _self_\nname: {name}\nbuild: mymodels:{name}\n"
        )
    return tmp_path


def cli_study(project, tracking_uri, *args):
    from conftest import tunelab_cli

    done = tunelab_cli(
        [
            "--config-dir",
            str(project / "conf"),
            "strategy=random",
            "strategy.max_trials=2",
            "quiet=true",
            f"tracking.uri={tracking_uri}",
            f"workdir={project / 'work'}",
            *args,
        ],
        cwd=project,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    client = MlflowClient(tracking_uri)
    studies = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        f"tags.`tunelab.kind` = 'study' and tags.`tunelab.study_name` = '{project.name}'",
    )
    assert len(studies) == 1
    return client, studies[0], trial_runs(client, studies[0].info.run_id)


def test_regression_from_a_csv_with_a_model_in_your_own_config_folder(tracking_uri, tmp_path):
    project = own_project(tmp_path / "csv")
    frame = load_diabetes(as_frame=True).frame
    frame["sex"] = np.where(frame["sex"] > 0, "f", "m")  # a text column, one-hot encoded
    frame.to_csv(project / "diabetes.csv", index=False)
    client, study, runs = cli_study(
        project,
        tracking_uri,
        "model=regressor",
        "dataset=table",
        "dataset.path=diabetes.csv",
        "dataset.target=target",
        "objective.name=val_rmse",
        "model.training.epochs=5",
        f"study_name={project.name}",
    )
    assert study.data.tags["tunelab.objective"] == "val_rmse (min)"
    assert study.data.params["data.n_test"] == str(math.ceil(len(frame) * 0.2))  # sklearn rounds up
    assert len(runs) == 2
    for run in runs:
        assert {"test_mae", "test_rmse", "test_r2", "val_rmse"} <= set(run.data.metrics)
    saved = client.download_artifacts(study.info.run_id, "data/preprocessing.json", str(tmp_path))
    assert "sex" in Path(saved).read_text()


def test_an_image_folder_and_an_npz(tracking_uri, tmp_path):
    from PIL import Image

    project = own_project(tmp_path / "images")
    x, y = digits(400)
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        folder = project / "photos" / f"digit{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image[..., 0] * 255).astype("uint8")).save(folder / f"{i}.png")
    client, study, runs = cli_study(
        project,
        tracking_uri,
        "model=classifier",
        "dataset=images",
        "dataset.path=photos",
        "dataset.image_size=[8,8]",
        "dataset.color_mode=grayscale",
        "objective.name=val_accuracy",
        f"study_name={project.name}",
    )
    assert study.data.params["data.n_train"] == str(len(y) - round(len(y) * 0.4))
    for run in runs:
        assert "test_f1.digit7" in run.data.metrics  # the folders name the classes

    npz = own_project(tmp_path / "npz")
    np.savez(npz / "digits.npz", x=(x[..., 0] * 255).astype("uint8"), y=y)
    client, study, runs = cli_study(
        npz,
        tracking_uri,
        "model=classifier",
        "dataset=npz",
        "dataset.path=digits.npz",
        f"study_name={npz.name}",
    )
    assert study.data.params["data.n_test"] == "80" and len(runs) == 2


def test_the_examples_run_at_smoke_scale(tmp_path):
    import shutil
    import subprocess
    import sys

    from conftest import PROJECT, tunelab_cli

    script = subprocess.run(
        [sys.executable, str(PROJECT / "examples" / "tune_own_model.py"), "--smoke"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert script.returncode == 0, script.stderr[-2000:]
    assert "best val_accuracy" in script.stdout and "predicted" in script.stdout
    folder = shutil.copytree(PROJECT / "examples" / "own_config", tmp_path / "own_config")
    tracking = f"tracking.uri=sqlite:///{tmp_path / 'config.db'}"
    done = tunelab_cli(
        ["--config-dir", "conf", "model=own_mlp", "budget=smoke", "quiet=true", tracking],
        cwd=folder,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "best val_loss" in done.stderr  # quiet: the summary goes to stderr


def test_a_dataframe_study_compared_on_its_own_objective(tracking_uri, tmp_path):
    import pandas as pd

    import tunelab.compare

    frame = load_diabetes(as_frame=True).frame
    frame["sex"] = np.where(frame["sex"] > 0, "f", "m")  # text: one-hot encoded from Python too

    def regressor(hp):
        model = keras.Sequential(
            [keras.layers.Dense(hp.Choice("units", [8, 32]), "relu"), keras.layers.Dense(1)]
        )
        model.compile(keras.optimizers.Adam(hp.Choice("lr", [0.01, 0.05])), loss="mse")
        return model

    result = tunelab.tune(
        regressor,
        frame.iloc[:350],
        target="target",
        strategy="grid",
        validation_data=frame.iloc[350:],
        epochs=5,
        objective="val_rmse",
        tracking_uri=tracking_uri,
        experiment="frame",
        workdir=str(tmp_path),
        quiet=True,
    )
    assert len(result.trials) == 4 and result.objective.direction == "min"
    anova = tunelab.compare.factorial(
        ["units", "lr"], experiment="frame", order=1, tracking_uri=tracking_uri
    )
    assert anova.formula.startswith("best_val_rmse ~")  # the study's objective, not accuracy
    assert isinstance(anova.anova, pd.DataFrame) and len(anova.anova) == 3  # 2 factors, residual


def test_ctrl_c_leaves_the_runs_killed_and_the_study_resumes_by_name(tracking_uri, tmp_path):
    settings = {
        "strategy": "random",
        "max_trials": 3,
        "experiment": "resume",
        "study_name": "interrupted",
    }
    with pytest.raises(KeyboardInterrupt):
        tune_digits(tracking_uri, tmp_path, callbacks=[StopAt(2)], **settings)
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("resume").experiment_id
    killed = client.search_runs([experiment], "attributes.status = 'KILLED'")
    assert {r.data.tags["tunelab.kind"] for r in killed} == {"study", "trial"}
    result = tune_digits(tracking_uri, tmp_path, resume=True, **settings)
    assert len(result.trials) == 3 and result.trials["state"].eq("COMPLETE").all()
    assert client.get_run(result.study_run_id).info.status == "FINISHED"
    (study,) = [r for r in killed if r.data.tags["tunelab.kind"] == "study"]
    assert result.study_run_id == study.info.run_id  # the same study run, continued


def two_ranges(hp):
    model = keras.Sequential(
        [
            keras.layers.Flatten(),
            keras.layers.Dense(hp.Int("units", 16, 48, step=16), "relu"),
            keras.layers.Dense(10, "softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(hp.Float("lr", 1e-3, 3e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


EVERY_OTHER = {  # strategy: its settings, and the trials they make
    "hyperband": ({"max_epochs": 2}, 2),
    "keras_bayesian": ({"max_trials": 3, "num_initial_points": 2}, 3),
    "cmaes": ({"max_trials": 3}, 3),
    "qmc": ({"max_trials": 3}, 3),
    "optuna_gp": ({"max_trials": 3}, 3),
    "full_factorial": ({}, 4),
    "fractional_factorial": ({}, 4),  # two factors: the full 2^2
    "rsm": ({"center_points": 1}, 9),  # face-centred: 4 corners, 4 axial points, 1 centre
    "gp_ei": ({"n_initial": 2, "max_trials": 3}, 3),
}


@pytest.mark.parametrize("strategy", list(EVERY_OTHER))
def test_every_other_strategy_tunes_a_build_function(strategy, tracking_uri, tmp_path):
    settings, trials = EVERY_OTHER[strategy]
    x, y = digits(300)
    result = tunelab.tune(
        two_ranges,
        x,
        y,
        validation_split=0.3,
        strategy=strategy,
        epochs=1,
        objective="val_accuracy",
        tracking_uri=tracking_uri,
        quiet=True,
        workdir=str(tmp_path),
        **settings,
    )
    assert len(result.trials) == trials and result.trials["state"].eq("COMPLETE").all()
    assert {"units", "lr"} <= set(result.best_params)
    runs = trial_runs(MlflowClient(tracking_uri), result.study_run_id)
    assert len(runs) == trials


class FirstTwoPoints(Strategy):
    """A strategy of the user's own: two trials at the low ends of the ranges."""

    @dataclass
    class Settings:
        lr: float = 1e-3

    def ask(self):
        told = getattr(self, "told", 0)
        return None if told == 2 else Proposal(str(told), {"units": 16, "lr": self.settings.lr})

    def tell(self, proposal, outcome):
        self.told = getattr(self, "told", 0) + 1


RANDOM_OF_OPTUNA = {
    "_target_": "tunelab.strategies.optuna_study.OptunaStudy",
    "sampler": {"_target_": "optuna.samplers.RandomSampler"},
    "pruner": "none",
}


@pytest.mark.parametrize("form", ["config_dir", "mapping", "class"])
def test_a_strategy_of_your_own_runs_from_tune(form, tracking_uri, tmp_path):
    """A strategy YAML in a folder of the user's (as --config-dir gives it to the CLI), the
    same as a mapping, or a Strategy subclass."""
    folder = tmp_path / "conf" / "strategy"
    folder.mkdir(parents=True)
    (folder / "random_of_optuna.yaml").write_text(
        "name: random_of_optuna\n" + yaml.safe_dump(RANDOM_OF_OPTUNA)
    )
    strategy, settings = {
        "config_dir": ("random_of_optuna", {"config_dir": str(tmp_path / "conf")}),
        "mapping": (RANDOM_OF_OPTUNA, {}),
        "class": (FirstTwoPoints, {"lr": 0.002}),
    }[form]
    x, y = digits(300)
    result = tunelab.tune(
        two_ranges,
        x,
        y,
        validation_split=0.3,
        strategy=strategy,
        max_trials=None if form == "class" else 2,
        epochs=1,
        tracking_uri=tracking_uri,
        quiet=True,
        workdir=str(tmp_path / "work"),
        **settings,
    )
    assert result.trials["state"].tolist() == ["COMPLETE", "COMPLETE"]
    tags = MlflowClient(tracking_uri).get_run(result.study_run_id).data.tags
    assert (
        tags["tunelab.strategy"]
        == {
            "config_dir": "random_of_optuna",
            "mapping": "OptunaStudy",
            "class": "FirstTwoPoints",
        }[form]
    )
    if form == "class":
        assert result.trials["lr"].tolist() == [0.002, 0.002]


def test_the_progress_bar_renders_in_a_jupyter_kernel(tmp_path):
    """A real kernel runs tunelab.tune: the bar is a widget (ipywidgets), and rich's warning
    that widgets are missing never shows."""
    import nbclient
    import nbformat

    code = f"""
import keras, tunelab
from sklearn.datasets import load_digits
digits = load_digits()
x, y = digits.images[:300, ..., None] / 16.0, digits.target[:300]
def build(hp):
    model = keras.Sequential([keras.layers.Flatten(),
                              keras.layers.Dense(hp.Choice("units", [8, 16]), "relu"),
                              keras.layers.Dense(10, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
result = tunelab.tune(build, x, y, validation_split=0.25, strategy="random", max_trials=2,
                      epochs=1, tracking_uri="sqlite:///{tmp_path}/nb.db",
                      workdir="{tmp_path}/work")
print("trials", len(result.trials))
"""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3").execute()
    outputs = notebook.cells[0].outputs
    shown = [o.get("data", {}) for o in outputs if o["output_type"] == "display_data"]
    assert any("application/vnd.jupyter.widget-view+json" in data for data in shown)
    text = "".join(o.get("text", "") for o in outputs) + str(shown)
    assert "for Jupyter support" not in text and "trials 2" in text


def test_an_import_path_that_does_not_resolve_is_one_line_before_tensorflow(tmp_path):
    from conftest import tunelab_cli

    done = tunelab_cli(
        [
            "model=hypermodel",
            "model.build=nowhere.models:build_model",
            "dataset=digits",
            f"workdir={tmp_path}",
        ],
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "tunelab: error: model.build: no module 'nowhere.models' on "
        f"the path (the working directory {tmp_path} and the "
        "installed packages)"
    )


def test_user_studies_are_compared_and_registered_as_built_in_ones(tracking_uri, tmp_path):
    import tunelab.compare

    for strategy, seed in [("random", 1), ("random", 2), ("tpe", 1), ("tpe", 2)]:
        tune_digits(
            tracking_uri,
            tmp_path / f"{strategy}{seed}",
            build=two_ranges,
            strategy=strategy,
            max_trials=2,
            seed=seed,
            experiment="user-shootout",
            register=True,
            model_name="digits-user",
        )
    comparison = tunelab.compare.optimisers(experiment="user-shootout", tracking_uri=tracking_uri)
    assert comparison.summary["studies"].to_dict() == {
        ("two_ranges/arrays", "random"): 2,
        ("two_ranges/arrays", "tpe"): 2,
    }
    client = MlflowClient(tracking_uri)
    champion = client.get_model_version_by_alias("digits-user", "champion")
    best = max(
        client.get_run(r.info.run_id).data.metrics["best_val_accuracy"]
        for r in client.search_runs(
            [client.get_experiment_by_name("user-shootout").experiment_id],
            "tags.`tunelab.kind` = 'study'",
        )
    )
    assert champion.tags["objective"] == "val_accuracy"  # the best of the four studies holds it
    assert float(champion.tags["score"]) == pytest.approx(best)
    assert len(client.search_model_versions("name = 'digits-user'")) == 4


def test_a_two_input_model_on_a_dict_of_arrays_with_a_binary_sigmoid_output(tracking_uri, tmp_path):
    x, y = digits()
    inputs = {"pixels": x.reshape(len(x), -1), "mean": x.reshape(len(x), -1).mean(1, keepdims=True)}
    is_seven = (y == 7).astype("int64")

    def two_inputs(hp):
        pixels, mean = keras.Input((64,), name="pixels"), keras.Input((1,), name="mean")
        hidden = keras.layers.Dense(hp.Choice("units", [8, 16]), "relu")(pixels)
        joined = keras.layers.Concatenate()([hidden, mean])
        model = keras.Model(
            {"pixels": pixels, "mean": mean}, keras.layers.Dense(1, "sigmoid")(joined)
        )
        model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy", metrics=["accuracy"])
        return model

    result = tunelab.tune(
        two_inputs,
        inputs,
        is_seven,
        validation_split=0.25,
        strategy="random",
        max_trials=2,
        epochs=3,
        objective="val_accuracy",
        tracking_uri=tracking_uri,
        workdir=str(tmp_path),
        quiet=True,
    )
    (run, *_) = trial_runs(MlflowClient(tracking_uri), result.study_run_id)
    assert {"val_f1.0", "val_f1.1"} <= set(run.data.metrics)  # two classes from one unit
    model = result.load_best_model()
    sample = {k: v[:4] for k, v in inputs.items()}
    assert model.predict(sample, verbose=0).shape == (4, 1)
