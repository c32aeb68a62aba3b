"""Where and how a study is tracked: the `tracking` group of the config."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.schema import ConfigError


@dataclass
class TrackingSettings:
    uri: str | None = None  # null: $MLFLOW_TRACKING_URI, else MLflow's default (./mlflow.db)
    experiment: str = "tunelab"  # the MLflow experiment the study's runs go to
    register: bool = False  # register the best model; its alias champion moves if it wins
    model_name: str = "tunelab"  # the registered model's name
    log_model: bool = True  # log the best trial's model to the study run
    # how long to wait for a server that stopped answering before the study stops (resumable);
    # null: MLflow's retries (about 4 minutes)
    retry_seconds: float | None = None

    def check(self, path: str) -> None:
        if self.retry_seconds is not None and self.retry_seconds < 0:
            raise ConfigError(
                f"{path}.retry_seconds: must be >= 0 (or null), got {self.retry_seconds}"
            )
