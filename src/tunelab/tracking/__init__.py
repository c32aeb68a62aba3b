"""Tracking: the only package that calls MLflow."""

from tunelab.tracking.tracker import Run, Tracker, run_id

__all__ = ["Run", "Tracker", "run_id"]
