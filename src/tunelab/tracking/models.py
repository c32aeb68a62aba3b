"""The best model logged to MLflow, and registered: a version of the registered model whose
`champion` alias moves only when a version beats it on the same objective."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from tunelab.logged import SharedModel
from tunelab.objective import Direction, Objective
from tunelab.tracking.runs import mlflow_params

CHAMPION = "champion"


def log_model_into(run_id: str, model: Any, name: str = "model", **kwargs: Any) -> Any:
    """`mlflow.tensorflow.log_model` into run `run_id`, which it ends; a `PythonModel` (a
    Keras network behind a user's preprocessing) through `mlflow.pyfunc.log_model`, with the
    artifacts its `saved_artifacts` writes."""
    import keras
    import mlflow.pyfunc
    import mlflow.tensorflow
    import tensorflow

    requirements = [
        f"mlflow=={mlflow.__version__}",
        f"keras=={keras.__version__}",
        f"tensorflow=={tensorflow.__version__}",
    ]  # inferring the requirements would cost seconds per study
    # the logged model belongs to the active run's experiment (MLflow takes no experiment id)
    with (
        tempfile.TemporaryDirectory() as folder,
        mlflow.start_run(run_id=run_id, nested=mlflow.active_run() is not None),
    ):
        if isinstance(model, mlflow.pyfunc.PythonModel):
            # tunelab's own model class: MLflow's warning that pickling a user's object may run
            # code when loaded is not for the user (it needs tunelab installed to load)
            logger = logging.getLogger("mlflow.pyfunc")
            level = logger.level
            logger.setLevel(logging.ERROR)
            try:
                return mlflow.pyfunc.log_model(
                    name=name,
                    python_model=model,
                    artifacts=model.saved_artifacts(Path(folder)),
                    pip_requirements=requirements,
                    **kwargs,
                )
            finally:
                logger.setLevel(level)
        return mlflow.tensorflow.log_model(
            model, name=name, pip_requirements=requirements, **kwargs
        )


def shared_model_run(client: MlflowClient, experiment_id: str, shared: SharedModel) -> str:
    """The id of the run that holds `shared` (a model trained once, e.g. a feature extractor),
    found by its kind and key in the experiment or logged now, once."""
    tags = {"tunelab.kind": shared.kind, "tunelab.key": shared.key}
    query = " AND ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    found = client.search_runs(
        [experiment_id], query + " AND attributes.status = 'FINISHED'", max_results=1
    )
    if found:
        return found[0].info.run_id
    run = client.create_run(experiment_id, run_name=f"{shared.kind}-{shared.key}", tags=tags)
    shared_id = run.info.run_id
    client.log_batch(
        shared_id,
        params=mlflow_params(shared.params),
        metrics=[
            Metric(k, float(v), int(time.time() * 1000), 0) for k, v in shared.metrics.items()
        ],
    )
    if shared.model is not None:
        log_model_into(shared_id, shared.model)
    client.set_terminated(shared_id, "FINISHED")
    return shared_id


def register(
    client: MlflowClient,
    name: str,
    model_uri: str,
    objective: str,
    direction: Direction,
    score: float,
) -> dict[str, Any]:
    """Register `model_uri` as a version of model `name`; move the `champion` alias to it only
    if it beats the champion. The score, objective and direction are model-version tags, so
    the next study compares against the champion on the same objective."""
    version = mlflow.register_model(model_uri, name).version
    for key, value in (("objective", objective), ("direction", direction), ("score", score)):
        client.set_model_version_tag(name, version, key, str(value))
    champion = _champion(client, name)
    if champion is None:
        promote, reason = True, "first registered version"
    elif champion.tags.get("objective") != objective:
        promote, reason = False, f"champion was chosen on {champion.tags.get('objective')}"
    else:
        best = float(champion.tags["score"])
        promote = Objective(objective, direction).better(score, best)
        reason = f"{objective} {score:.4f} vs champion v{champion.version} {best:.4f}"
    if promote:
        client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, "champion_decision", reason)
    return {"name": name, "version": int(version), "champion": promote, "reason": reason}


def _champion(client: MlflowClient, name: str) -> Any:
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None
