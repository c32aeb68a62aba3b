"""A user's data comes to no harm: lengths checked before anything runs, a study that only
failed is an error, the objective checked before training, a DataFrame encoded from its training
rows and served raw, and a study's state kept per tracking store and extendable."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import load_config
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from stop_at import StopAt

import tunelab
from tunelab.api import PYTHON_NAMES
from tunelab.config import TrackingSettings
from tunelab.data.supervised import prepare
from tunelab.data.table import Encoder
from tunelab.schema import ConfigError, StudyFailed
from tunelab.serving import ServedModel
from tunelab.study import study_folder


def digits(n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    bunch = load_digits()
    return (bunch.images[:n, ..., None] / 16.0).astype("float32"), bunch.target[:n]


def build_model(hp):
    model = keras.Sequential(
        [
            keras.layers.Flatten(),
            keras.layers.Dense(hp.Int("units", 8, 64, step=8), "relu"),
            keras.layers.Dense(10, "softmax"),
        ]
    )
    model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def runs_of(tracking_uri: str, experiment: str) -> list:
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else client.search_runs([found.experiment_id])


# --- lengths ---------------------------------------------------------------------------------
X, Y = np.zeros((300, 4)), np.arange(300) % 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((X, Y[:250], None, None), "x, y: the features have 300 rows but the targets 250"),
        (
            (X, Y, (X[:50], Y[:40]), None),
            "validation_data: the features have 50 rows but the targets 40",
        ),
        ((X, Y, None, (X[:20], Y[:30])), "test_data: the features have 20 rows but the targets 30"),
        (
            ({"a": X, "b": X[:250]}, Y, None, None),
            "x, y: the inputs of the dict differ in length (a 300, b 250 rows)",
        ),
    ],
)
def test_features_and_targets_of_different_lengths_are_one_line(args, message):
    x, y, validation, test = args
    with pytest.raises(ConfigError) as error:
        prepare(x, y, validation, 0.2 if validation is None else None, test, "auto", 0)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.slow
def test_mismatched_lengths_are_refused_before_any_run(tracking_uri, tmp_path):
    """Before the check, 50 rows of x were dropped without a word and both trials COMPLETE."""
    x, y = digits(300)
    with pytest.raises(ConfigError, match="x, y: the features have 300 rows but the targets 250"):
        tunelab.tune(
            build_model,
            x,
            y[:250],
            validation_split=0.2,
            strategy="random",
            max_trials=2,
            epochs=1,
            tracking_uri=tracking_uri,
            experiment="lengths",
            workdir=str(tmp_path),
            quiet=True,
        )
    assert runs_of(tracking_uri, "lengths") == []


# --- a study that only failed ----------------------------------------------------------------
class Explode(keras.callbacks.Callback):
    """Every fit fails, each with its own message (so the study does not stop early on
    identical failures)."""

    fits = 0

    def on_epoch_end(self, epoch, logs=None):
        Explode.fits += 1
        raise RuntimeError(f"exploded in fit {Explode.fits}\nsecond line of the reason")


@pytest.mark.slow
def test_a_study_whose_every_trial_failed_is_an_error_naming_the_first_reason(
    tracking_uri, tmp_path, capfd
):
    Explode.fits = 0
    x, y = digits()
    with pytest.raises(StudyFailed) as error:
        tunelab.tune(
            build_model,
            x,
            y,
            validation_split=0.25,
            strategy="random",
            max_trials=2,
            epochs=1,
            callbacks=[Explode()],
            tracking_uri=tracking_uri,
            experiment="all-failed",
            workdir=str(tmp_path),
        )
    message = str(error.value)
    assert message.startswith(
        "all 2 trials failed; the first with RuntimeError: exploded in "
        "fit 1 second line of the reason (its MLflow run "
    )
    assert "\n" not in message
    console = capfd.readouterr().err.splitlines()
    assert "trial 0 failed: RuntimeError: exploded in fit 1 second line of the reason" in console
    runs = runs_of(tracking_uri, "all-failed")
    (study,) = [r for r in runs if r.data.tags["tunelab.kind"] == "study"]
    assert study.info.status == "FAILED"
    assert study.data.tags["tunelab.failure_reason"] == message
    assert {r.info.status for r in runs} == {"FAILED"}


# --- the objective ---------------------------------------------------------------------------
@pytest.mark.slow
def test_an_objective_the_model_does_not_report_is_refused_before_any_run(tracking_uri, tmp_path):
    x, y = digits()
    with pytest.raises(ConfigError) as error:
        tunelab.tune(
            build_model,
            x,
            y,
            validation_split=0.25,
            strategy="random",
            max_trials=2,
            epochs=1,
            objective="val_nonexistent",
            tracking_uri=tracking_uri,
            experiment="objective",
            workdir=str(tmp_path),
            quiet=True,
        )
    assert str(error.value) == (
        "objective: the model does not report 'val_nonexistent'; it "
        "reports accuracy, loss, val_accuracy, val_loss"
    )
    assert runs_of(tracking_uri, "objective") == []


# --- a DataFrame, encoded from its training rows and served raw ------------------------------
def test_a_served_model_encodes_raw_columns_and_answers_with_labels():
    frame = pd.DataFrame({"size": [1.0, 2.0, 3.0, 4.0], "region": ["e", "w", "e", "n"]})
    encoder = Encoder.fit(frame)
    again = Encoder.described(json.loads(json.dumps(encoder.describe())))
    assert np.array_equal(again.transform(frame), encoder.transform(frame))
    served = ServedModel("classification", encoder.describe(), ["big", "small"])
    assert np.array_equal(served.inputs(frame), encoder.transform(frame))
    output = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert served.answers(output).tolist() == ["big", "small"]
    assert ServedModel("classification", {}, None).answers(output).tolist() == [0, 1]
    sigmoid = np.array([[0.7], [0.1]])
    assert ServedModel("classification", {}, ["no", "yes"]).answers(sigmoid).tolist() == [
        "yes",
        "no",
    ]
    assert ServedModel("regression", {}, None).answers(np.array([[1.5], [2.5]])).tolist() == [
        1.5,
        2.5,
    ]


def houses(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"size": rng.normal(50, 10, n), "region": rng.choice(["east", "west", "north"], n)}
    )
    frame["price"] = np.where(frame["size"] + 10 * (frame["region"] == "east") > 55, "high", "low")
    return frame


def classifier(hp):
    model = keras.Sequential(
        [keras.layers.Dense(hp.Choice("units", [8, 16]), "relu"), keras.layers.Dense(2, "softmax")]
    )
    model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.slow
def test_a_dataframe_is_encoded_from_its_training_rows_and_its_model_takes_raw_rows(
    tracking_uri, tmp_path
):
    frame = houses()
    result = tunelab.tune(
        classifier,
        frame,
        target="price",
        validation_split=0.25,
        strategy="grid",
        epochs=3,
        objective="val_accuracy",
        register=True,
        model_name="houses",
        tracking_uri=tracking_uri,
        experiment="frames",
        workdir=str(tmp_path),
        quiet=True,
        dataset_name="houses",
    )
    study = MlflowClient(tracking_uri).get_run(result.study_run_id)
    names = {d.dataset.name for d in study.inputs.dataset_inputs}
    assert names == {"houses-train", "houses-val"}  # as the user named them
    kept, _ = train_test_split(
        np.arange(len(frame)), test_size=0.25, random_state=0, stratify=frame["price"]
    )  # the rows tune trains on
    logged = json.loads(
        mlflow.artifacts.load_text(f"runs:/{result.study_run_id}/data/preprocessing.json")
    )
    assert logged["standardised"]["size"]["mean"] == pytest.approx(frame["size"].iloc[kept].mean())
    assert logged["standardised"]["size"]["mean"] != pytest.approx(frame["size"].mean())

    raw = frame.drop(columns=["price"]).iloc[:20]
    served = mlflow.pyfunc.load_model(result.best_model_uri).predict(raw)
    assert len(served) == 20 and set(served) <= {"high", "low"}
    assert list(result.predict(raw)) == list(served)
    champion = mlflow.pyfunc.load_model("models:/houses@champion").predict(raw)
    assert list(champion) == list(served)
    network = result.load_best_model()  # the Keras network: encoded columns in, scores out
    assert network.predict(Encoder.described(logged).transform(raw), verbose=0).shape == (20, 2)


# --- a study's state: per store, and extendable ----------------------------------------------
def test_a_study_folder_belongs_to_its_tracking_store_and_experiment(tmp_path):
    a = study_folder(tmp_path, "x", TrackingSettings(uri=f"sqlite:///{tmp_path / 'a.db'}"))
    b = study_folder(tmp_path, "x", TrackingSettings(uri=f"sqlite:///{tmp_path / 'b.db'}"))
    other = study_folder(
        tmp_path, "x", TrackingSettings(uri=f"sqlite:///{tmp_path / 'a.db'}", experiment="other")
    )
    assert len({a, b, other}) == 3 and a.name == b.name == "x"
    assert a == study_folder(tmp_path, "x", TrackingSettings(uri=f"sqlite:///{tmp_path / 'a.db'}"))
    secret = study_folder(tmp_path, "x", TrackingSettings(uri="http://u:s3cret@host:5000"))
    assert "s3cret" not in (secret.parent / "store.json").read_text()


def test_errors_spell_settings_as_the_caller_writes_them():
    cfg = load_config(["dataset=digits", "budget=smoke"])
    assert cfg.spell("resume", False) == "resume=false"
    assert cfg.name_of("model.training.epochs") == "model.training.epochs"
    python = replace(cfg, caller="python", python_names=PYTHON_NAMES)
    assert python.spell("resume", False) == "resume=False"
    assert python.name_of("model.training.epochs") == "epochs"
    assert python.name_of("strategy.max_trials") == "max_trials"
    assert python.name_of("model.fit.batch_size") == "batch_size"


def tune_in(store, tmp_path, **kwargs):
    x, y = digits()
    settings = {
        "strategy": "random",
        "max_trials": 3,
        "epochs": 1,
        "study_name": "x",
        "objective": "val_accuracy",
        "validation_split": 0.25,
        "quiet": True,
        "tracking_uri": f"sqlite:///{tmp_path / store}",
        "workdir": str(tmp_path / "work"),
        **kwargs,
    }
    return tunelab.tune(build_model, x, y, **settings)


def tunelab_experiment(client: MlflowClient) -> str:
    return client.get_experiment_by_name("tunelab").experiment_id


@pytest.mark.slow
def test_same_named_studies_in_two_stores_resume_independently(tmp_path):
    """Before, a fresh "x" in b.db overwrote the folder of the interrupted "x" in a.db, whose
    resumption was then refused as already finished (b's run) and stayed RUNNING for ever."""
    with pytest.raises(KeyboardInterrupt):
        tune_in("a.db", tmp_path, callbacks=[StopAt(2)])
    other = tune_in("b.db", tmp_path)
    assert len(other.trials) == 3
    resumed = tune_in("a.db", tmp_path, resume=True)
    assert len(resumed.trials) == 3 and resumed.trials["state"].eq("COMPLETE").all()
    client = MlflowClient(f"sqlite:///{tmp_path / 'a.db'}")
    assert client.get_run(resumed.study_run_id).info.status == "FINISHED"
    studies = client.search_runs([tunelab_experiment(client)], "tags.`tunelab.kind` = 'study'")
    assert [s.info.run_id for s in studies] == [resumed.study_run_id]  # continued, not anew


@pytest.mark.slow
def test_a_finished_study_is_extended_by_a_larger_trial_count_and_nothing_else(tmp_path):
    first = tune_in("a.db", tmp_path, max_trials=2)
    again = tune_in("a.db", tmp_path, max_trials=2, resume=True)  # read back, as KerasTuner does
    assert again.study_run_id == first.study_run_id and again.best_value == first.best_value
    assert again.trials["run_id"].tolist() == first.trials["run_id"].tolist()
    with pytest.raises(ConfigError) as changed:
        tune_in("a.db", tmp_path, max_trials=3, epochs=2, resume=True)
    assert "at epochs: 1 -> 2. Resume with the same settings (only max_trials may grow)" in str(
        changed.value
    )

    extended = tune_in("a.db", tmp_path, max_trials=3, resume=True)
    assert extended.study_run_id == first.study_run_id
    assert extended.trials["trial_id"].tolist() == ["0", "1", "2"]
    assert extended.trials["run_id"].tolist()[:2] == first.trials["run_id"].tolist()
    client = MlflowClient(f"sqlite:///{tmp_path / 'a.db'}")
    trial_runs = client.search_runs([tunelab_experiment(client)], "tags.`tunelab.kind` = 'trial'")
    assert len(trial_runs) == 3  # only the extra trial ran
    study = client.get_run(extended.study_run_id)
    assert study.info.status == "FINISHED" and study.data.metrics["trials"] == 3


# --- tune's surface, as a KerasTuner user meets it (#44) -------------------------------------
@pytest.mark.parametrize(
    ("key", "value", "hint"),
    [
        ("executions_per_trial", 2, "tune trains each trial once"),
        ("overwrite", True, "a study starts afresh unless resume=True"),
        ("max_consecutive_failed_trials", 2, "give stop_after_identical_failures="),
        ("directory", "kt", "give workdir="),
    ],
)
def test_a_keras_tuner_argument_tune_does_not_take_is_one_line_before_anything(
    key, value, hint, tmp_path
):
    """Before, these went on to `fit` and every trial failed with a TypeError."""
    x, y = digits(50)
    store = tmp_path / "m.db"
    with pytest.raises(ConfigError) as error:
        tunelab.tune(
            build_model,
            x,
            y,
            validation_split=0.2,
            strategy="random",
            max_trials=2,
            tracking_uri=f"sqlite:///{store}",
            **{key: value},
        )
    message = str(error.value)
    assert message.startswith(f"{key}: a KerasTuner tuner argument that tune does not take; ")
    assert hint in message and "\n" not in message
    assert not store.exists()


def labelled_state(hp):
    """A model whose hyperparameters are called like columns of `TuneResult.trials`."""
    model = keras.Sequential(
        [
            keras.layers.Flatten(),
            keras.layers.Dense(hp.Choice("state", [8, 16]), "relu"),
            keras.layers.Dropout(hp.Float("run_id", 0.0, 0.5)),
            keras.layers.Dense(10, "softmax"),
        ]
    )
    model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.slow
def test_tune_hands_back_the_tracking_uri_says_where_its_runs_are_and_logs_once(
    tmp_path, monkeypatch, capsys
):
    from mlflow.tracking._tracking_service import utils

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(None)
    x, y = digits()
    started = time.perf_counter()
    result = tunelab.tune(
        labelled_state,
        x,
        y,
        validation_split=0.25,
        strategy="tpe",
        max_trials=3,
        epochs=2,
        objective="val_accuracy",
        seed=1,
        tracking_uri=f"sqlite:///{tmp_path / 'm.db'}",
        workdir=str(tmp_path),
    )
    elapsed = time.perf_counter() - started
    assert utils._tracking_uri is None and "MLFLOW_TRACKING_URI" not in os.environ
    printed = capsys.readouterr().out
    assert result.study_run_id in printed and "Open in the MLflow UI" in printed

    assert result.trials["state"].eq("COMPLETE").all()  # not overwritten by the values
    assert set(result.trials["hp.state"]) <= {8, 16} and result.trials["hp.run_id"].notna().all()
    best = result.get_best_hyperparameters(1)[0]
    assert best.values == result.best_params and labelled_state(best).layers[1].units in (8, 16)
    top = result.best_trials(3)["val_accuracy"].tolist()
    assert top == sorted(top, reverse=True) and result.best_trial["val_accuracy"] == top[0]

    client = MlflowClient(f"sqlite:///{tmp_path / 'm.db'}")
    study = client.get_run(result.study_run_id)
    assert not [k for k in study.data.params if k.startswith("dataset.data.")]
    assert {"data.n_train", "data.n_val"} <= study.data.params.keys()
    # the whole call: data checks, set-up and the best model's logging included (it counted
    # from the set-up's end, 3.3-3.5 s of calls that took 8-11 s); only the printing after
    assert elapsed - 1.0 < study.data.metrics["wall_time_s"] <= elapsed
    named = []
    for run_id in result.trials["run_id"]:  # drawn as the model asked: still named
        trial = client.get_run(run_id)
        assert trial.data.tags["tunelab.tuned"] == "state,run_id"
        named.append(sorted(m for m in trial.data.metrics if m.startswith("weights/")))
        history = client.get_metric_history(run_id, "val_accuracy")  # no test split: the
        assert sorted(m.step for m in history) == [0, 1]  # final evaluation is not step 0 again
    # by position, not by Keras' names (dense_3, dense_6, ...): alike in every trial
    assert named[0][0] == "weights/layer_0/frac_near_zero.after" and named.count(named[0]) == 3
    inputs = {(d.dataset.name, d.tags[0].value) for d in study.inputs.dataset_inputs}
    assert inputs == {("arrays-train", "training"), ("arrays-val", "validation")}


def test_a_shared_storage_refusal_spells_resume_as_its_caller_does(tmp_path):
    import optuna

    from tunelab.strategies.optuna_shared import start_afresh

    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(study_name="x", storage=storage)
    with pytest.raises(ConfigError, match="continue it with resume=True, or give"):
        start_afresh(storage, "x", True, "resume=True")
