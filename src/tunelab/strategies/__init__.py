"""Search strategies: one module per `conf/strategy/*.yaml`, all behind `Strategy`."""

from tunelab.strategies.base import Outcome, Proposal, Strategy, StrategyContext, StudyDesign
from tunelab.strategies.plan import FixedPlan, PlannedTrial

__all__ = [
    "FixedPlan",
    "Outcome",
    "PlannedTrial",
    "Proposal",
    "Strategy",
    "StrategyContext",
    "StudyDesign",
]
