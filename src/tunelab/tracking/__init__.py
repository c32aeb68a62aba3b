"""Tracking: the only package that calls MLflow (imported when first used, so that
`tunelab.tracking.reachability` can check a URI before MLflow or TensorFlow is loaded)."""

from __future__ import annotations

from typing import Any

__all__ = ["Run", "Tracker", "run_id", "start_artifact_worker"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tunelab.tracking import tracker

        return getattr(tracker, name)
    raise AttributeError(f"module 'tunelab.tracking' has no attribute {name!r}")
