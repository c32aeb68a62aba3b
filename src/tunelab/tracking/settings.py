"""Where and how a study is tracked: the `tracking` group of the config."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.schema import ConfigError


@dataclass
class TrackingSettings:
    uri: str | None = None
    experiment: str = "tunelab"
    register: bool = False
    model_name: str = "tunelab"
    log_model: bool = True
    retry_seconds: float | None = None  # how long to wait for a server that stopped answering

    def check(self, path: str) -> None:
        if self.retry_seconds is not None and self.retry_seconds < 0:
            raise ConfigError(
                f"{path}.retry_seconds: must be >= 0 (or null), got {self.retry_seconds}"
            )
