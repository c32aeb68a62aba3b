"""Tracking: the only package that calls MLflow."""

from tunelab.tracking.tracker import Tracker

__all__ = ["Tracker"]
