"""`import tunelab.keras_tuner as keras_tuner`: a KerasTuner script runs unchanged but for that
line, against a real MLflow server, every trial a run nested under the study's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_digits

pytestmark = pytest.mark.slow

# KerasTuner's getting-started guide (keras.io/keras_tuner/getting_started), on the embedded
# digits; only the import line differs
SCRIPT = """
import json
import keras
from sklearn.datasets import load_digits
import tunelab.keras_tuner as keras_tuner

digits = load_digits()
x, y = digits.images[..., None] / 16.0, digits.target
x_train, y_train, x_val, y_val = x[:1200], y[:1200], x[1200:], y[1200:]


def build_model(hp):
    model = keras.Sequential()
    model.add(keras.layers.Flatten())
    model.add(
        keras.layers.Dense(
            units=hp.Int("units", min_value=16, max_value=64, step=16), activation="relu"
        )
    )
    if hp.Boolean("dropout"):
        model.add(keras.layers.Dropout(rate=0.25))
    model.add(keras.layers.Dense(10, activation="softmax"))
    learning_rate = hp.Float("lr", min_value=1e-4, max_value=1e-2, sampling="log")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


tuner = keras_tuner.RandomSearch(
    hypermodel=build_model,
    objective="val_accuracy",
    max_trials=3,
    executions_per_trial=1,
    overwrite=True,
    directory="my_dir",
    project_name="helloworld",
)
tuner.search_space_summary()
tuner.search(x_train, y_train, epochs=2, validation_data=(x_val, y_val))
models = tuner.get_best_models(num_models=2)
best_model = models[0]
tuner.results_summary()
best_hps = tuner.get_best_hyperparameters(5)
model = build_model(best_hps[0])
print(json.dumps({
    "run": tuner.results.study_run_id,
    "evaluated": [m.evaluate(x_val, y_val, verbose=0)[1] for m in models],
    "runs": tuner.results.best_trials(2)["run_id"].tolist(),
    "hps": [hp.values for hp in best_hps],
}))
"""


def run_script(script: str, cwd, tracking_uri: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    return subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_keras_tuners_getting_started_runs_with_one_changed_line(mlflow_server, tmp_path):
    import json

    out = run_script(SCRIPT, tmp_path, mlflow_server)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "Search space summary\nDefault search space size: 3\nunits (Int)" in out.stdout
    assert "Results summary\nResults in my_dir/helloworld\nShowing 10 best trials" in out.stdout
    assert 'Objective(name="val_accuracy", direction="max")' in out.stdout
    client = MlflowClient(mlflow_server)
    study = client.get_run(report["run"])
    assert study.info.run_name == "helloworld" and study.info.status == "FINISHED"
    trials = client.search_runs(
        [study.info.experiment_id], f"tags.`mlflow.parentRunId` = '{report['run']}'"
    )
    assert len(trials) == 3 and {t.info.status for t in trials} == {"FINISHED"}
    # the best two models carry the weights their trials ended with: evaluated again, each
    # scores what its run logged for its last epoch
    for evaluated, run_id in zip(report["evaluated"], report["runs"], strict=True):
        history = client.get_metric_history(run_id, "val_accuracy")
        assert evaluated == pytest.approx(max(history, key=lambda m: m.step).value, abs=1e-6)
    assert len(report["hps"]) == 3 and {"units", "dropout", "lr"} <= set(report["hps"][0])

    again = run_script(SCRIPT.replace("overwrite=True", "overwrite=False"), tmp_path, mlflow_server)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout.strip().splitlines()[-1])["run"] == report["run"]  # read back
    assert "study helloworld had finished: its result is read back" in again.stdout


@pytest.mark.parametrize(
    ("tuner", "arguments", "trials"),
    [
        ("Hyperband", {"max_epochs": 2, "factor": 2}, 3),
        ("BayesianOptimization", {"max_trials": 3, "num_initial_points": 2}, 3),
        ("GridSearch", {}, 2),
        ("Tuner", {"strategy": "tpe", "max_trials": 2}, 2),
    ],
)
def test_every_tuner_runs_a_study(tuner, arguments, trials, tracking_uri, tmp_path):
    import keras

    import tunelab.keras_tuner as keras_tuner

    def build_model(hp):
        model = keras.Sequential(
            [
                keras.layers.Flatten(),
                keras.layers.Dense(hp.Choice("units", [8, 16]), activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    digits = load_digits()
    x, y = digits.images[:400] / 16.0, digits.target[:400]
    chosen = getattr(keras_tuner, tuner)(
        build_model, "val_accuracy", directory=str(tmp_path), quiet=True, **arguments
    )
    chosen.search(x, y, epochs=1, validation_split=0.25, batch_size=64)
    assert len(chosen.results.trials) == trials
    assert chosen.results.trials["state"].eq("COMPLETE").all()
    best = chosen.get_best_models()[0]
    assert best.predict(x[:2], verbose=0).shape == (2, 10)


def test_callbacks_given_to_search_run_as_in_keras_tuner(tracking_uri, tmp_path):
    """EarlyStopping with a min_delta nothing reaches stops each trial at its second epoch."""
    import keras

    import tunelab.keras_tuner as keras_tuner

    def build_model(hp):
        model = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
        lr = hp.Float("lr", 1e-3, 1e-2, sampling="log")
        model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy")
        return model

    digits = load_digits()
    x, y = digits.images[:300] / 16.0, digits.target[:300]
    tuner = keras_tuner.RandomSearch(build_model, max_trials=2, directory=str(tmp_path), quiet=True)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=0, min_delta=10.0)
    tuner.search(x, y, epochs=20, validation_split=0.25, callbacks=[stop])
    assert tuner.results.trials["epochs_trained"].tolist() == [2, 2]
    assert tuner.results.objective.name == "val_loss"  # KerasTuner's default with validation


def test_tuner_arguments_tunelab_cannot_honour_are_one_line(tmp_path):
    import tunelab.keras_tuner as keras_tuner
    from tunelab.schema import ConfigError

    with pytest.raises(ConfigError, match="^executions_per_trial: tunelab trains each trial once"):
        keras_tuner.RandomSearch(lambda hp: None, executions_per_trial=2)
    with pytest.raises(ConfigError, match="^max_trials: the grid runs every point"):
        keras_tuner.GridSearch(lambda hp: None, max_trials=4)
    assert keras_tuner.errors.FailedTrialError  # KerasTuner's own names pass through
    assert keras_tuner.tuners.RandomSearch is keras_tuner.RandomSearch
