"""The metric a study optimises and its direction: which of two scores is better, the best
of many, the running best."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from tunelab.schema import ConfigError

T = TypeVar("T")

Direction = Literal["max", "min"]


@dataclass
class Objective:
    """The metric a study optimises; which ones are valid, and how a trial is scored on it, is
    up to the model's task. Unset, the name is the task's first objective and the direction
    that objective's natural one (min for a loss or FID)."""

    name: str | None = None
    direction: Direction | None = None

    def better(self, a: float, b: float | None) -> bool:
        """True when `a` beats `b` (any value beats None)."""
        if b is None:
            return True
        return a > b if self.direction == "max" else a < b

    def best_of(self, items: list[T], key: Callable[[T], float]) -> T:
        """The item whose `key` is best in this direction (the first of equals)."""
        pick = max if self.direction == "max" else min
        return pick(items, key=key)

    @property
    def sign(self) -> float:
        """+1 where larger is better, -1 where smaller is: `sign * value` is to be maximised."""
        return 1.0 if self.direction == "max" else -1.0

    def best_value(self, values: Any) -> Any:
        """The best of `values`: a pandas Series or GroupBy (per group), or a NumPy array."""
        return values.max() if self.direction == "max" else values.min()

    def running_best(self, values: Any) -> Any:
        """The best so far at each position of an array (NaN skipped)."""
        import numpy as np

        return (np.fmax if self.direction == "max" else np.fmin).accumulate(values)

    def reached(self, value: Any, target: float) -> Any:
        """Whether `value` (a number or an array) is at least as good as `target`."""
        return self.sign * value >= self.sign * target

    def resolved_for(self, task: Any, model: str) -> Objective:
        """This objective with its defaults filled in from `task`; refuses one the task lacks."""
        name = self.name or next(iter(task.objectives))
        if not task.accepts(name):
            valid = ", ".join(task.objectives)
            raise ConfigError(
                f"objective.name: {name!r} is not an objective of model {model}; valid: {valid}"
            )
        return Objective(name, self.direction or task.direction(name))
