"""Search strategies: one module per `conf/strategy/*.yaml`, all behind `Strategy`."""

from tunelab.strategies.base import Outcome, Proposal, Strategy, StrategyContext

__all__ = ["Outcome", "Proposal", "Strategy", "StrategyContext"]
