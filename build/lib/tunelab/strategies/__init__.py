"""Search strategies: one module per `conf/strategy/*.yaml`, all behind `Strategy`."""

from tunelab.strategies.base import (
    FixedPlan,
    Outcome,
    PlannedTrial,
    Proposal,
    Strategy,
    StrategyContext,
    StudyDesign,
)

__all__ = [
    "FixedPlan", "Outcome", "PlannedTrial", "Proposal", "Strategy", "StrategyContext",
    "StudyDesign",
]  # fmt: skip
