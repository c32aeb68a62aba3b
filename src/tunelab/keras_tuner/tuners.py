"""KerasTuner's tuners, each running a tunelab study (`tunelab.tune`) that MLflow tracks.

`search(*fit_args, **fit_kwargs)` takes what KerasTuner's does, so a KerasTuner script runs
unchanged after one changed import line; `Tuner(build_model, strategy="tpe")` runs any of
tunelab's strategies behind the same interface.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.schema import ConfigError

UNTITLED = "untitled_project"  # KerasTuner's default project_name


class Tuner:
    """A tunelab study behind KerasTuner's tuner interface.

    Args:
        hypermodel: a `build_model(hp)` function or a `keras_tuner.HyperModel`.
        objective: a metric name, `keras_tuner.Objective` or (name, direction); default
            `val_loss` (`loss` when `search` gets no validation data), as KerasTuner's.
        strategy: any of tunelab's strategies (`tpe`, `cmaes`, `gp_ei`, ...); its settings as
            keyword arguments (`pruner="asha"`).
        max_trials: the number of trials (strategies whose design fixes it take none).
        executions_per_trial: only 1 so far: each trial trains once.
        seed: seeds the split, the strategy and every trial (None: 0, so a study repeats).
        max_consecutive_failed_trials: the study stops when its first N trials all fail alike.
        directory: where the study's state is kept (default `.`, as KerasTuner's).
        project_name: the study's name (and the MLflow study run's).
        overwrite: start afresh; by default an existing study of that name is continued, or
            read back if it had finished, as KerasTuner reloads a project.
        tracking_uri: where the runs go (default `$MLFLOW_TRACKING_URI`, else `./mlflow.db`).
        experiment: the MLflow experiment's name.
        **settings: the strategy's settings, or any other `tunelab.tune` argument.

    Examples:
        >>> import keras, numpy as np
        >>> import tunelab.keras_tuner as keras_tuner
        >>> def build_model(hp):
        ...     model = keras.Sequential([keras.layers.Dense(
        ...         hp.Int("units", 8, 32, step=8), activation="relu"),
        ...         keras.layers.Dense(1)])
        ...     model.compile("adam", "mse")
        ...     return model
        >>> tuner = keras_tuner.Tuner(build_model, strategy="tpe", max_trials=2,
        ...                           directory="kt-doc", overwrite=True, quiet=True)
        >>> x = np.random.default_rng(0).normal(size=(64, 3))
        >>> tuner.search(x, x.sum(axis=1), epochs=1, validation_split=0.25, verbose=0)
        >>> len(tuner.get_best_hyperparameters(2))
        2
    """

    strategy = "random"  # each KerasTuner tuner's own

    def __init__(
        self,
        hypermodel: Any = None,
        objective: Any = None,
        *,
        strategy: Any = None,
        max_trials: int | None = None,
        executions_per_trial: int = 1,
        seed: int | None = None,
        max_consecutive_failed_trials: int = 3,
        directory: str | None = None,
        project_name: str | None = None,
        overwrite: bool = False,
        tracking_uri: str | None = None,
        experiment: str = "tunelab",
        **settings: Any,
    ) -> None:
        if hypermodel is None:
            raise ConfigError("hypermodel: missing; give a build_model(hp) or a HyperModel")
        if executions_per_trial != 1:
            raise ConfigError(
                f"executions_per_trial: tunelab trains each trial once so far, got "
                f"{executions_per_trial}; run more trials or seeds instead"
            )
        self.hypermodel = hypermodel
        self.objective = objective
        self.strategy = strategy or self.strategy
        self.max_trials = max_trials
        self.seed = seed or 0
        self.stop_after = max_consecutive_failed_trials
        self.directory = directory or "."
        self.project_name = project_name or UNTITLED
        self.overwrite = overwrite
        self.tracking_uri, self.experiment = tracking_uri, experiment
        self.settings = settings
        self.results: Any = None  # the last search's TuneResult

    @property
    def project_dir(self) -> str:
        return str(Path(self.directory) / self.project_name)

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        """Run the study: what KerasTuner's `search` takes, i.e. `keras.Model.fit`'s
        arguments (`x`, `y`, `epochs`, `validation_data`, `validation_split`, `callbacks`, ...),
        every trial tracked as an MLflow run nested under the study's."""
        import tunelab

        x, y = _features_and_targets(fit_args, fit_kwargs)
        epochs = fit_kwargs.pop("epochs", 1)  # keras.Model.fit's default
        validation_data = fit_kwargs.pop("validation_data", None)
        validation_split = fit_kwargs.pop("validation_split", None)
        objective = self.objective
        if objective is None:
            validated = validation_data is not None or validation_split
            objective = "val_loss" if validated else "loss"
        self.results = tunelab.tune(
            self.hypermodel,
            x,
            y,
            validation_data=validation_data,
            validation_split=validation_split,
            strategy=self.strategy,
            max_trials=self.max_trials,
            epochs=epochs,
            objective=objective,
            seed=self.seed,
            tracking_uri=self.tracking_uri,
            experiment=self.experiment,
            study_name=self.project_name,
            resume=not self.overwrite,
            workdir=self.project_dir,
            stop_after_identical_failures=self.stop_after,
            keep_weights=self.max_trials or 10,
            **{**self.settings, **fit_kwargs},
        )
        self.overwrite = False  # a second search continues this one, as in KerasTuner

    def search_space_summary(self, extended: bool = False) -> None:
        """Print the hyperparameters the model declares with its defaults, as KerasTuner."""
        import keras_tuner as kt

        from tunelab.hyperparameters import as_hypermodel

        hp = kt.HyperParameters()
        as_hypermodel(self.hypermodel).build(hp)
        print("Search space summary")
        print(f"Default search space size: {len(hp.space)}")
        for p in hp.space:
            config = p.get_config()
            name = config.pop("name")
            print(f"{name} ({p.__class__.__name__})")
            print(config)

    def results_summary(self, num_trials: int = 10) -> None:
        """Print the best `num_trials` trials, best first, as KerasTuner (with their runs)."""
        result = self._searched()
        objective = result.objective
        print("Results summary")
        print(f"Results in {self.project_dir}")
        print(f"Showing {num_trials} best trials")
        print(f'Objective(name="{objective.name}", direction="{objective.direction}")')
        for _, trial in result.best_trials(num_trials).iterrows():
            print()
            print(f"Trial {trial['trial_id']} summary")
            print("Hyperparameters:")
            for name, value in result.trial_values[trial["trial_id"]].items():
                print(f"{name}: {value}")
            print(f"Score: {trial[objective.name]}")
            print(f"MLflow run: {trial['run_id']}")

    def get_best_hyperparameters(self, num_trials: int = 1) -> list[Any]:
        """The best trials' `keras_tuner.HyperParameters`, which `build_model(hp)` takes."""
        return list(self._searched().get_best_hyperparameters(num_trials))

    def get_best_models(self, num_models: int = 1) -> list[Any]:
        """The best trials' models with the weights their training ended with."""
        return list(self._searched().get_best_models(num_models))

    def _searched(self) -> Any:
        if self.results is None:
            raise ValueError("no results yet: call search(x, y, ...) first")
        return self.results


def _features_and_targets(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """`x` and `y` as `keras.Model.fit` takes them: positionally or by name."""
    if len(args) > 2:
        raise ConfigError(
            "search: give x and y positionally and the rest by name (epochs=, "
            "validation_data=, ...), as keras.Model.fit takes them"
        )
    x = args[0] if args else kwargs.pop("x", None)
    y = args[1] if len(args) > 1 else kwargs.pop("y", None)
    return x, y


class RandomSearch(Tuner):
    """KerasTuner's random search (tunelab's `random` strategy)."""

    def __init__(
        self, hypermodel: Any = None, objective: Any = None, max_trials: int = 10, **kwargs: Any
    ) -> None:
        super().__init__(hypermodel, objective, max_trials=max_trials, **kwargs)


class BayesianOptimization(Tuner):
    """KerasTuner's Gaussian-process Bayesian optimisation (`keras_bayesian`)."""

    strategy = "keras_bayesian"

    def __init__(
        self,
        hypermodel: Any = None,
        objective: Any = None,
        max_trials: int = 10,
        num_initial_points: int | None = None,
        alpha: float = 1e-4,
        beta: float = 2.6,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            hypermodel,
            objective,
            max_trials=max_trials,
            num_initial_points=num_initial_points,  # None: KerasTuner's 3 per dimension
            alpha=alpha,
            beta=beta,
            **kwargs,
        )


class Hyperband(Tuner):
    """KerasTuner's Hyperband (`hyperband`): brackets of successive halving."""

    strategy = "hyperband"

    def __init__(
        self,
        hypermodel: Any = None,
        objective: Any = None,
        max_epochs: int = 100,
        factor: int = 3,
        hyperband_iterations: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            hypermodel,
            objective,
            max_epochs=max_epochs,
            factor=factor,
            hyperband_iterations=hyperband_iterations,
            **kwargs,
        )


class GridSearch(Tuner):
    """Every combination of the choices and stepped ranges (tunelab's `grid`)."""

    strategy = "grid"

    def __init__(
        self,
        hypermodel: Any = None,
        objective: Any = None,
        max_trials: int | None = None,
        **kwargs: Any,
    ) -> None:
        if max_trials is not None:
            raise ConfigError(
                f"max_trials: the grid runs every point, got max_trials={max_trials}; "
                "narrow the space instead"
            )
        super().__init__(hypermodel, objective, **kwargs)
