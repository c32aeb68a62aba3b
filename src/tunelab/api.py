"""`tunelab.tune`: a study of your own Keras model on your own data, from Python.

The same study `python -m tunelab` runs, with the model, the data and the settings given as
Python objects instead of YAML: a KerasTuner-style `build(hp)` (or `keras_tuner.HyperModel`),
what `keras.Model.fit` takes, a strategy by name. Every trial is an MLflow run nested under the
study's; `TuneResult` reads the outcome back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tunelab import backend, config
from tunelab.config import Component, ModelConfig, StudyConfig, TrackingSettings
from tunelab.objective import Objective
from tunelab.schema import ConfigError
from tunelab.settings import StudySettings
from tunelab.space import SearchSpace

# KerasTuner's tuner arguments that `tune` does not pass on to `fit`: each gets one line saying
# what to give instead (a strategy's own settings, e.g. hyperband's max_epochs, pass as usual)
KERAS_TUNER_ONLY = {
    "hypermodel": "give the build function or HyperModel as tune's first argument",
    "executions_per_trial": "tune trains each trial once; run more trials, or seeds",
    "overwrite": "a study starts afresh unless resume=True",
    "directory": "give workdir= (the study's state is kept under it)",
    "project_name": "give study_name=",
    "max_consecutive_failed_trials": "give stop_after_identical_failures=",
    "hyperparameters": "give space= (tunelab's form) to lay values over the model's",
    "tune_new_entries": "every parameter the model declares is tuned",
    "allow_new_entries": "every parameter the model declares is tuned",
    "max_retries_per_trial": "a failed trial is FAILED with its reason; the study goes on",
    "distribution_strategy": "not supported",
    "oracle": "give strategy= (a name of tunelab's strategies)",
    "tuner_id": "workers join with `tunelab worker`",
    "logger": "every trial is an MLflow run",
}

PYTHON_NAMES = {  # the study config's keys as `tune`'s arguments, for its error messages
    "strategy.": "",
    "model.training.": "",
    "model.fit.": "",
    "model.task": "task",
    "model.build": "build",
    "model.space.": "space.",
    "dataset.digest": "the data (x, y, validation_data, test_data)",
    "objective.": "objective.",
}


@dataclass
class TuneResult:
    """What a study found, read back from its runs.

    Attributes:
        best_params: the best trial's hyperparameters (only those its model read).
        best_value: its objective (the best epoch's), or None when no trial scored.
        best_run_id: the MLflow run of that trial.
        best_model_uri: the best model logged on the study run (`models:/m-…`), if logged.
        study_run_id: the study's MLflow run, its trials nested under it.
        trials: one row per trial: trial id, state, objective, run id and the values used (a
            hyperparameter named like one of those columns as `hp.<name>`).
        tracking_uri: where the runs are.

    Examples:
        >>> import keras, tunelab
        >>> from sklearn.datasets import load_digits
        >>> digits = load_digits()
        >>> def build_model(hp):
        ...     model = keras.Sequential([
        ...         keras.layers.Flatten(),
        ...         keras.layers.Dense(hp.Choice("units", [16, 64]), activation="relu"),
        ...         keras.layers.Dense(10, activation="softmax")])
        ...     model.compile("adam", loss="sparse_categorical_crossentropy",
        ...                   metrics=["accuracy"])
        ...     return model
        >>> result = tunelab.tune(build_model, digits.images / 16.0, digits.target,
        ...                       validation_split=0.2, strategy="grid", epochs=2,
        ...                       objective="val_accuracy", quiet=True)
        >>> sorted(result.trials["units"]), result.best_params["units"] in (16, 64)
        ([16, 64], True)
        >>> result.trials["state"].tolist()
        ['COMPLETE', 'COMPLETE']
        >>> model = result.load_best_model()
        >>> model.predict(digits.images[:3] / 16.0, verbose=0).shape
        (3, 10)
        >>> result.predict(digits.images[:3] / 16.0).shape  # labels, as the served model gives
        (3,)
        >>> result.best_trial["trial_id"] == result.best_trials(2)["trial_id"].iloc[0]
        True
        >>> best_hp = result.get_best_hyperparameters(1)[0]
        >>> best_hp.values == result.best_params, build_model(best_hp).layers[1].units in (16, 64)
        (True, True)
    """

    best_params: dict[str, Any]
    best_value: float | None
    best_run_id: str | None
    best_model_uri: str | None
    study_run_id: str
    trials: Any  # a pandas DataFrame
    tracking_uri: str
    objective: Objective = field(repr=False, default_factory=Objective)
    trial_values: dict[str, dict[str, Any]] = field(repr=False, default_factory=dict)
    study_folder: Path | None = field(repr=False, default=None)  # its state, kept weights
    _build: Any = field(repr=False, default=None)  # hp -> the user's model, its weights made
    _loaded: Any = field(repr=False, default=None)  # the served model, once loaded

    @property
    def best_trial(self) -> Any:
        """The best trial's row of `trials` (a pandas Series), None when no trial scored."""
        top = self.best_trials(1)
        return None if top.empty else top.iloc[0]

    def best_trials(self, num_trials: int = 1) -> Any:
        """The `num_trials` best scored trials, best first: rows of `trials`."""
        name = str(self.objective.name)
        scored = self.trials[self.trials[name].notna()]
        ascending = self.objective.direction == "min"
        return scored.sort_values(name, ascending=ascending, kind="stable").head(num_trials)

    def get_best_hyperparameters(self, num_trials: int = 1) -> list[Any]:
        """The best `num_trials` trials' hyperparameters, best first, as KerasTuner's
        `HyperParameters`: what your `build_model(hp)` takes, as from a KerasTuner tuner."""
        import keras_tuner as kt

        found = []
        for trial_id in self.best_trials(num_trials)["trial_id"]:
            hp = kt.HyperParameters()
            hp.values.update(self.trial_values[trial_id])
            found.append(hp)
        return found

    def get_best_models(self, num_models: int = 1) -> list[Any]:
        """The best `num_models` trials' Keras models, best first: your `build` for their
        hyperparameters with the weights their training ended with (as KerasTuner's
        `get_best_models`). A study keeps the best `keep_weights` trials' weights."""
        from tunelab.weights import load_weights

        top = self.best_trials(num_models)
        folder = Path(self.study_folder or ".") / "best"
        found = [folder / f"{t}.weights.npz" for t in top["trial_id"]]
        missing = [str(t) for t, f in zip(top["trial_id"], found, strict=True) if not f.is_file()]
        if missing or self._build is None:
            raise ValueError(
                f"num_models: the weights of trial {', '.join(missing) or '?'} were not kept; "
                f"tune with keep_weights={num_models} (or more) to keep them"
            )
        models = []
        for hp, weights in zip(self.get_best_hyperparameters(num_models), found, strict=True):
            model = self._build(hp)
            load_weights(model, weights)
            models.append(model)
        return models

    def load_best_model(self) -> Any:
        """The best trial's Keras network, loaded from MLflow (needs `log_model=True`): it
        takes what it was trained on (a DataFrame's encoded columns) and gives its raw output;
        `predict` takes what you gave `tune` and answers with labels."""
        return self._served().unwrap_python_model().network

    def predict(self, x: Any) -> Any:
        """The best model's answers for `x` as you gave it to `tune` (a raw DataFrame, arrays
        or a dict of arrays): labels (your class names, where you gave strings) or numbers
        for a regression. The same as `mlflow.pyfunc.load_model(best_model_uri).predict(x)`
        and the registry's `champion`."""
        return self._served().predict(x)

    def _served(self) -> Any:
        if self.best_model_uri is None:
            raise ValueError(
                "no model was logged: the study ran with log_model=False, or no trial finished"
            )
        if self._loaded is None:
            import mlflow.pyfunc

            from tunelab.tracking.runs import tracking_uri_kept

            with tracking_uri_kept():
                mlflow.set_tracking_uri(self.tracking_uri)
                self._loaded = mlflow.pyfunc.load_model(self.best_model_uri)
        return self._loaded


def tune(
    build: Any,
    x: Any = None,
    y: Any = None,
    *,
    validation_data: Any = None,
    validation_split: float | None = None,
    test_data: Any = None,
    target: str | None = None,
    strategy: Any = "random",
    max_trials: int | None = None,
    epochs: int = 10,
    objective: Any = None,
    space: dict[str, Any] | None = None,
    task: str = "auto",
    seed: int = 0,
    tracking_uri: str | None = None,
    experiment: str = "tunelab",
    study_name: str | None = None,
    resume: bool = False,
    log_model: bool = True,
    register: bool = False,
    model_name: str | None = None,
    workdir: str = ".tunelab",
    quiet: bool = False,
    stop_after_identical_failures: int = StudySettings.stop_after_identical_failures,
    keep_weights: int = StudySettings.keep_weights,
    config_dir: str | None = None,
    dataset_name: str | None = None,
    **kwargs: Any,
) -> TuneResult:
    """Tune `build` on your data with one of tunelab's strategies, tracked in MLflow.

    Args:
        build: a function `build(hp)` returning a compiled `keras.Model` (KerasTuner's
            contract), or a `keras_tuner.HyperModel`, whose own `fit(hp, model, x, y, **kwargs)`
            then trains each trial.
        x: the training features, as `keras.Model.fit` takes them: an array, a dict of
            arrays, or a `tf.data.Dataset` of (features, target) batches (then datasets for
            validation and test too); or a pandas DataFrame with `target=` naming the column
            to predict (numeric columns standardised, text columns one-hot encoded, fitted
            on it).
        y: the targets: integer, one-hot or string labels, or numbers for a regression.
        validation_data: `(x_val, y_val)` (a DataFrame with `target=`); or `validation_split`,
            a fraction of (x, y) split off with `seed`, stratified for classes.
        test_data: `(x_test, y_test)` (or a DataFrame) for the test metrics (else the
            validation split's).
        strategy: hyperband, random, keras_bayesian (KerasTuner); tpe, cmaes, qmc, optuna_gp
            (Optuna); grid, full_factorial, fractional_factorial, rsm, gp_ei. Its settings go
            as keyword arguments (`max_epochs=9`, `pruner="asha"`, ...). Or a strategy YAML's
            name in `config_dir`, a mapping as such a YAML holds (`{"_target_": ..., ...}`),
            or a `tunelab.strategies.Strategy` subclass.
        max_trials: trials to run (strategies whose design fixes the count take none).
        epochs: training epochs per trial (Hyperband sets its own from `max_epochs`).
        objective: a metric the compiled model reports (`"val_accuracy"`, `"val_auc"`, ...),
            `(name, "max" | "min")`, or a `keras_tuner.Objective`; the direction of the usual
            names is inferred (losses and errors min). Default `val_loss`.
        space: parameters laid over those the model declares, in tunelab's YAML form, e.g.
            `{"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}`.
        task: auto (a float target is a regression, unless one-hot or only 0 and 1),
            classification or regression.
        seed: seeds the split, the strategy and every trial.
        tracking_uri: where the study's runs go (default: `$MLFLOW_TRACKING_URI`, else
            `./mlflow.db`).
        experiment: the MLflow experiment's name.
        study_name: the study's name (default `<build>-<strategy>-seed<seed>`).
        resume: continue the interrupted study of that name; a finished one is read back (a
            larger `max_trials` extends it).
        log_model: log the best model on the study run.
        register: register it in the Model Registry with the `champion` alias, which moves
            only when beaten.
        model_name: its registered name (default `tunelab-<build>`).
        workdir: the study's private folder (journal, strategy state, checkpoints).
        quiet: no progress bar.
        stop_after_identical_failures: stop when the first N trials all fail alike (0: never).
        keep_weights: how many of the best trials' weights stay in the study folder, for
            `TuneResult.get_best_models`.
        dataset_name: names the data's MLflow datasets (`<name>-train`, `-validation`,
            `-test`); default what it is: `arrays`, `dict-of-arrays`, `dataframe`, `tf-data`.
        config_dir: a folder of your own YAMLs (`strategy/<name>.yaml`), as `--config-dir`
            gives them to `python -m tunelab`.
        **kwargs: the strategy's settings, then anything else `keras.Model.fit` takes
            (`batch_size`, `callbacks`, `class_weight`, ...), as KerasTuner's `search` passes
            them on.

    Returns:
        A `TuneResult`: `best_params`, `best_value`, `best_model_uri`, `trials` (a DataFrame),
        `load_best_model()`.

    Examples:
        >>> import keras, numpy as np, tunelab
        >>> from sklearn.datasets import load_digits
        >>> digits = load_digits()
        >>> x, y = digits.images[..., None] / 16.0, digits.target
        >>> def build_model(hp):
        ...     model = keras.Sequential([keras.layers.Flatten()])
        ...     for i in range(hp.Int("num_layers", 1, 2)):
        ...         model.add(keras.layers.Dense(hp.Int(f"units_{i}", 16, 64, step=16),
        ...                                      activation="relu"))
        ...     model.add(keras.layers.Dense(10, activation="softmax"))
        ...     model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
        ...                   loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        ...     return model
        >>> result = tunelab.tune(build_model, x, y, validation_split=0.2, strategy="tpe",
        ...                       max_trials=3, epochs=2, objective="val_accuracy", quiet=True)
        >>> len(result.trials)
        3
    """
    import time

    from tunelab.tracking import reachability

    started = time.perf_counter()  # the study's wall_time_s: the whole call
    backend.require_tensorflow()
    strategy_settings, fit = _split_settings(strategy, max_trials, kwargs, config_dir)
    for key in sorted(fit.keys() & KERAS_TUNER_ONLY.keys()):
        raise ConfigError(
            f"{key}: a KerasTuner tuner argument that tune does not take; {KERAS_TUNER_ONLY[key]}"
        )
    chosen = config.strategy_component(strategy, strategy_settings, config_dir=config_dir)
    goal = _objective(objective)
    if (
        goal.name
        and goal.name.startswith("val_")
        and validation_data is None
        and not validation_split
    ):
        raise ConfigError(
            f"validation_data: the objective {goal.name} is measured on validation "
            "data; give validation_data=(x_val, y_val) or validation_split=0.2"
        )
    reachability.check(tracking_uri)  # seconds, before any model is built
    cfg = _study_config(
        build,
        x,
        y,
        validation_data,
        validation_split,
        test_data,
        target,
        chosen,
        goal,
        epochs,
        space,
        task,
        fit,
        seed,
        tracking_uri,
        experiment,
        study_name,
        resume,
        log_model,
        register,
        model_name,
        workdir,
        quiet,
        stop_after_identical_failures,
        keep_weights,
        dataset_name,
    )
    from tunelab.progress import print_summary
    from tunelab.study import Study
    from tunelab.study_folder import trial_count
    from tunelab.tracking.runs import tracking_uri_kept

    with tracking_uri_kept():  # the study sets MLflow's; the caller's is theirs
        study = Study(cfg)
        summary = study.finished_summary() if resume else None  # a finished one: read back
        if summary is not None:
            count = trial_count(cfg)
            more = f"; a larger {count} extends it" if count else ""
            print(f"tunelab: study {cfg.study_name} had finished: its result is read back{more}")
        else:
            summary = study.run(started)
        result = _result(summary, cfg, study.folder.path)
    if not quiet:
        print_summary(cfg, summary)
    return result


def _split_settings(
    strategy: Any, max_trials: int | None, kwargs: dict[str, Any], config_dir: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The strategy's settings among `kwargs` (and `max_trials` under its own name), and the
    rest, which goes to `fit`."""
    import dataclasses

    settings_cls = config.settings_class(config.strategy_class(strategy, config_dir))
    fields = {f.name for f in dataclasses.fields(settings_cls)}
    if "max_trials" in fields:  # its old names, renamed with a warning
        fields |= set(config.RENAMED_OVERRIDES_SHORT)
    settings = {k: v for k, v in kwargs.items() if k in fields}
    fit = {k: v for k, v in kwargs.items() if k not in fields}
    if max_trials is not None:
        if "max_trials" not in fields:
            raise ConfigError(
                f"max_trials: strategy {getattr(strategy, '__name__', strategy)} sets its own "
                "number of trials; "
                f"its settings are {', '.join(sorted(fields))}"
            )
        settings["max_trials"] = max_trials
    return settings, fit


def _objective(objective: Any) -> Objective:
    """An objective from a name, a (name, direction) pair or a `keras_tuner.Objective`."""
    from tunelab.tasks.supervised import direction_of

    if objective is None:
        return Objective("val_loss", "min")
    if isinstance(objective, str):
        return Objective(objective, direction_of(objective))
    if isinstance(objective, tuple) and len(objective) == 2:
        name, direction = objective
    elif hasattr(objective, "name") and hasattr(objective, "direction"):  # keras_tuner.Objective
        name, direction = objective.name, objective.direction
    else:
        raise ConfigError(
            f"objective: expected a metric name, (name, 'max' | 'min') or a "
            f"keras_tuner.Objective, got {objective!r}"
        )
    if direction not in ("max", "min"):
        raise ConfigError(
            f"objective: direction {direction!r} is not valid; valid choices: max, min"
        )
    return Objective(str(name), direction)


@dataclass
class Served:
    """What a model trained on DataFrames is served with: the encoding fitted on the training
    rows, and a few raw evaluation rows as its input example."""

    preprocessing: dict[str, Any] = field(default_factory=dict)
    raw_rows: Any = None


def _from_frames(
    x: Any,
    y: Any,
    validation: Any,
    validation_split: float | None,
    test: Any,
    target: str | None,
    task: str,
    seed: int,
) -> tuple[Any, Any, Any, Any, Served]:
    """(x, y), validation and test as given; or, with `target`, DataFrames split into features
    encoded as `dataset=table` does and the target column. The encoding is fitted on the
    training rows alone: a `validation_split` is cut off the frame first (the rows `prepare`
    would cut), and comes back as the validation frame."""
    if target is None:
        if y is None and not hasattr(x, "element_spec"):  # a tf.data.Dataset brings its targets
            raise ConfigError(
                "y: missing; give tune(build, x, y, ...), or a DataFrame as x "
                "with target='<column>'"
            )
        return x, y, validation, test, Served()
    from tunelab.data.supervised import split_rows
    from tunelab.data.table import Encoder

    def columns(frame: Any) -> Any:
        names = [str(c) for c in getattr(frame, "columns", [])]
        if target not in names:
            raise ConfigError(
                f"target: no column {target!r}; the columns are "
                f"{', '.join(names) or 'none (x is not a DataFrame)'}"
            )
        return frame.drop(columns=[target]), frame[target].to_numpy()

    if validation is None and validation_split:
        columns(x)  # the target is there
        kept, taken = split_rows(x[target].to_numpy(), validation_split, seed, task)
        x, validation = x.iloc[kept], x.iloc[taken]
    features, y = columns(x)
    encoder = Encoder.fit(features)
    encoded, raw = [], features
    for part in (validation, test):  # a DataFrame each, or (x, y) as given
        if part is not None and hasattr(part, "columns"):
            part_features, part_y = columns(part)
            part, raw = (encoder.transform(part_features), part_y), part_features
        encoded.append(part)
    served = Served(encoder.describe(), raw.head(5))  # the evaluation split's first rows
    return encoder.transform(features), y, encoded[0], encoded[1], served


def _study_config(
    build: Any,
    x: Any,
    y: Any,
    validation_data: Any,
    validation_split: Any,
    test_data: Any,
    target: str | None,
    strategy: Component,
    objective: Objective,
    epochs: int,
    space: Any,
    task: str,
    fit: dict[str, Any],
    seed: int,
    tracking_uri: str | None,
    experiment: str,
    study_name: str | None,
    resume: bool,
    log_model: bool,
    register: bool,
    model_name: str | None,
    workdir: str,
    quiet: bool,
    stop_after: int,
    keep_weights: int,
    dataset_name: str | None,
) -> StudyConfig:
    from tunelab.data.supervised import GivenData, prepare
    from tunelab.models.hypermodel import HyperModelFamily
    from tunelab.tasks.supervised import SupervisedSettings

    family = HyperModelFamily.of(build)
    name = family.name
    data_name = dataset_name or _kind_of_data(x)
    x, y, val, test, served = _from_frames(
        x, y, validation_data, validation_split, test_data, target, task, seed
    )
    data = prepare(x, y, val, None if val is not None else validation_split, test, task, seed)
    data.preprocessing, data.raw_rows = served.preprocessing, served.raw_rows
    declared = SearchSpace.from_config(space or {}, "space")
    training = config.TrainingSettings(epochs=epochs)
    training.check("epochs")
    data.target = target or "y"
    settings = SupervisedSettings(fit=fit, objective=str(objective.name))
    model = ModelConfig(name, family, training, family.HParams(), declared, settings)
    study_name = study_name or f"{name}-{strategy.name}-seed{seed}"
    resolved = {
        "seed": seed,
        "budget": "default",
        "study_name": study_name,
        "objective": vars(objective),
        "model": {
            "name": name,
            "build": _import_path(build),
            "training": {"epochs": epochs},
            "space": space or {},
            "task": data.kind,
            "fit": {k: repr(v) for k, v in fit.items() if k != "callbacks"},
        },
        "dataset": {"name": data_name, "given": True, "digest": data.digest()},  # sizes: data.n_*
        "strategy": {"name": strategy.name, **vars(strategy.settings)},
        "tracking": {"uri": tracking_uri, "experiment": experiment},
    }
    return StudyConfig(
        seed=seed,
        repetition=0,
        budget="default",
        objective=objective,
        study_name=study_name,
        resume=resume,
        quiet=quiet,
        workdir=workdir,
        tracking=TrackingSettings(
            uri=tracking_uri,
            experiment=experiment,
            register=register,
            model_name=model_name or f"tunelab-{name}",
            log_model=log_model,
        ),
        model=model,
        dataset=Component(data_name, GivenData, GivenData.Settings(data)),
        strategy=strategy,
        stop_after_identical_failures=stop_after,
        keep_weights=keep_weights,
        resolved=resolved,
        caller="python",
        python_names=PYTHON_NAMES,
    )


def _kind_of_data(x: Any) -> str:
    """What the user's data is, which names its MLflow datasets (`<kind>-train`, ...)."""
    if hasattr(x, "element_spec"):
        return "tf-data"
    if hasattr(x, "columns"):
        return "dataframe"
    return "dict-of-arrays" if isinstance(x, dict) else "arrays"


def _import_path(build: Any) -> str:
    """Where `build` is defined (`module:qualname`), as the config route names it."""
    target = build if isinstance(build, type) or not hasattr(build, "build") else type(build)
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', '?')}"


def _result(summary: Any, cfg: StudyConfig, folder: Path) -> TuneResult:
    import pandas as pd
    from mlflow.tracking import MlflowClient

    best = None
    scored = [r for r in summary.trials if r.score is not None]
    if scored:
        best = cfg.objective.best_of(scored, key=lambda r: r.score)
    rows = []
    for r in summary.trials:
        row = {
            "trial_id": r.trial_id,
            "state": r.status,
            cfg.objective.name: r.score,
            "epochs_trained": r.epochs_trained,
            "run_id": r.run_id,
            "reason": r.reason,
        }
        # a hyperparameter named like a column of the frame's own is `hp.<name>` there
        row.update({f"hp.{k}" if k in row else k: v for k, v in r.values.items()})
        rows.append(row)
    tags = MlflowClient(summary.tracking_uri).get_run(summary.run_id).data.tags
    return TuneResult(
        best_params=dict(best.values) if best else {},
        best_value=best.score if best else None,
        best_run_id=best.run_id if best else None,
        best_model_uri=tags.get("tunelab.model_uri.model"),
        study_run_id=summary.run_id,
        trials=pd.DataFrame(rows),
        tracking_uri=summary.tracking_uri,
        objective=cfg.objective,
        trial_values={r.trial_id: dict(r.values) for r in summary.trials},
        study_folder=folder,
        _build=partial(cfg.model.cls.build, spec=cfg.dataset.settings.data.spec),
    )


__all__ = ["TuneResult", "tune"]
