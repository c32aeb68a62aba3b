"""The result of a generative metric."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Score:
    """A metric's value (NaN with a `reason` when it cannot be computed), its spread over
    subsets or splits where it has one, and the samples per side it used."""

    value: float
    std: float | None = None
    n: int = 0
    reason: str = ""

    @property
    def finite(self) -> bool:
        return math.isfinite(self.value)
