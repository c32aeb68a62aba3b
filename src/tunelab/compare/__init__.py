"""The comparison module: runs read back from MLflow -> one tidy frame -> `tunelab.analysis`.

`python -m tunelab.compare factorial ...` (see `--help`) prints the tables and logs them, with
plots, to a new MLflow run tagged `tunelab.kind=comparison`. From Python, `factorial` and
`optimisers` below do the same and return their tables as pandas DataFrames. Unless told
otherwise, both analyse `best_<objective>` of the studies' own objective.
"""

from __future__ import annotations

from typing import Any

TRIALS = "tags.`tunelab.kind` = 'trial'"
STUDIES = "tags.`tunelab.kind` = 'study'"


def factorial(
    factors: list[str],
    *,
    experiment: str = "tunelab",
    tracking_uri: str | None = None,
    study: str | None = None,
    response: str | None = None,
    order: int = 2,
    typ: int = 2,
    filter: str = TRIALS,
) -> Any:
    """ANOVA, effects and Lenth's PSE of a factorial design's trials.

    Args:
        factors: the params varied, e.g. `["coded.lr", "coded.dropout"]` or `["lr", "units"]`.
        experiment: the MLflow experiment of the runs.
        tracking_uri: where it is (default: `$MLFLOW_TRACKING_URI`, else `./mlflow.db`).
        study: only this study's trials (its `tunelab.study_id`).
        response: the metric analysed (default `best_<objective>`).
        order: the highest interaction order.
        typ: the ANOVA type (1, 2 or 3).
        filter: an MLflow search filter selecting the runs.

    Returns:
        A `FactorialResult`: `anova`, `one_way`, `effects` (two-level designs) DataFrames,
        the `formula`, and `lenth` (pseudo standard error, margin of error).

    Examples:
        A 2 × 2 full factorial of a small network's width and learning rate, then its ANOVA
        (main effects only: four runs leave one degree of freedom for the residual):

        >>> import keras, tunelab, tunelab.compare
        >>> from sklearn.datasets import load_digits
        >>> digits = load_digits()
        >>> def build_model(hp):
        ...     model = keras.Sequential([
        ...         keras.layers.Flatten(),
        ...         keras.layers.Dense(hp.Choice("units", [8, 64]), activation="relu"),
        ...         keras.layers.Dense(10, activation="softmax")])
        ...     model.compile(keras.optimizers.Adam(hp.Choice("lr", [1e-3, 1e-2])),
        ...                   loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        ...     return model
        >>> study = tunelab.tune(build_model, digits.images / 16.0, digits.target,
        ...                      validation_split=0.2, strategy="full_factorial", epochs=2,
        ...                      objective="val_accuracy", experiment="doe", quiet=True)
        >>> result = tunelab.compare.factorial(["units", "lr"], experiment="doe", order=1)
        factorial/anova...
        >>> result.formula, list(result.effects.index)
        ('best_val_accuracy ~ units + lr', ['units', 'lr'])
    """
    from tunelab.compare.reports import Query
    from tunelab.compare.reports import factorial as report

    query = Query(
        experiment=experiment,
        tracking_uri=tracking_uri,
        filter=filter,
        study=study,
        response=response,
    )
    return report(query, factors, order, typ)


def optimisers(
    *,
    experiment: str = "tunelab",
    tracking_uri: str | None = None,
    response: str | None = None,
    direction: str | None = None,
    baseline: str = "random",
    target: float | None = None,
    filter: str = STUDIES,
) -> Any:
    """Strategies compared over repeated studies (seeds).

    Args:
        experiment: the MLflow experiment of the study runs.
        tracking_uri: where it is (default: `$MLFLOW_TRACKING_URI`, else `./mlflow.db`).
        response: the metric compared (default `best_<objective>`).
        direction: "max" or "min" (default: the objective's).
        baseline: the strategy whose median scores 1 in the normalised score.
        target: also report epochs and wall time until a trial reaches this value.
        filter: an MLflow search filter selecting the study runs.

    Returns:
        An `OptimiserComparison`: `summary`, `kruskal`, `pairwise`, `anytime`, `friedman`,
        `paired` DataFrames, and best-so-far `curves`.

    Examples:
        Random search against TPE, two seeds each, on one small network:

        >>> import keras, tunelab, tunelab.compare
        >>> from sklearn.datasets import load_digits
        >>> digits = load_digits()
        >>> def build_model(hp):
        ...     model = keras.Sequential([
        ...         keras.layers.Flatten(),
        ...         keras.layers.Dense(hp.Int("units", 8, 64), activation="relu"),
        ...         keras.layers.Dense(10, activation="softmax")])
        ...     model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, sampling="log")),
        ...                   loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        ...     return model
        >>> for strategy in ["random", "tpe"]:
        ...     for seed in [0, 1]:
        ...         study = tunelab.tune(build_model, digits.images / 16.0, digits.target,
        ...                              validation_split=0.2, strategy=strategy, max_trials=2,
        ...                              epochs=1, seed=seed, objective="val_accuracy",
        ...                              experiment="shootout", quiet=True)
        >>> comparison = tunelab.compare.optimisers(experiment="shootout")
        optimisers/summary...
        >>> comparison.summary["studies"].to_dict()
        {('build_model/arrays', 'random'): 2, ('build_model/arrays', 'tpe'): 2}
    """
    from tunelab.compare.reports import Query
    from tunelab.compare.reports import optimisers as report

    query = Query(
        experiment=experiment, tracking_uri=tracking_uri, filter=filter, response=response
    )
    return report(query, direction, baseline, target)  # type: ignore[arg-type]
