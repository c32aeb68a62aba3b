"""Two-level fractional factorial designs 2^(k−p) (pyDOE3), with resolution and aliases.

pyDOE3's `fracfact_by_res` returns wrong designs (e.g. 16 runs for 2^(7−4)), so a design is
given by its generator string, or found for a requested resolution with `fracfact_opt`; the
resolution is computed here as the shortest word of the defining relation.
"""

from __future__ import annotations

import itertools
import string
from dataclasses import dataclass

from tunelab.schema import ConfigError
from tunelab.strategies.base import StudyDesign
from tunelab.strategies.design import design_csv, factors, planned_trials
from tunelab.strategies.plan import FixedPlan, PlannedTrial


@dataclass
class FractionalFactorialSettings:
    generators: str | None = None  # e.g. "a b c ab ac bc abc": 7 factors in 8 runs; wins
    resolution: int | None = 3  # without generators: the fewest runs with this resolution
    replicates: int = 1
    center_points: int = 0
    randomize: bool = True
    # null: the study folder's SQLite file; a postgresql:// URL: workers on any machine
    storage: str | None = None

    def check(self, path: str) -> None:
        if self.generators is None and self.resolution is None:
            raise ConfigError(f"{path}: give generators or a resolution")
        if self.resolution is not None and self.resolution < 3:
            raise ConfigError(f"{path}.resolution: must be at least 3, got {self.resolution}")


def defining_words(generators: str) -> list[str]:
    """The defining relation: every product of the generator words, e.g. ['abd', …]."""
    tokens = generators.split()
    words = []
    for letter, token in zip(string.ascii_lowercase, tokens, strict=False):
        if len(token) > 1:
            words.append(frozenset(token) ^ {letter})
    relation = set()
    for size in range(1, len(words) + 1):
        for combo in itertools.combinations(words, size):
            product: frozenset[str] = frozenset()
            for word in combo:
                product ^= word
            relation.add(product)
    return sorted(("".join(sorted(w)) for w in relation if w), key=lambda w: (len(w), w))


def resolution(generators: str) -> int | None:
    """Length of the shortest defining word (None for a full factorial)."""
    words = defining_words(generators)
    return len(words[0]) if words else None


def generators_for(k: int, minimum_resolution: int) -> str:
    """The smallest 2^(k−p) design (largest p) whose resolution reaches the minimum."""
    import pyDOE3

    for p in range(k - 1, -1, -1):
        if p == 0:
            return " ".join(string.ascii_lowercase[:k])
        if 2 ** (k - p) < k + 1:  # too few runs to estimate every main effect
            continue
        try:
            generators = pyDOE3.fracfact_opt(k, p)[0]
        except ValueError:  # fracfact_opt refuses saturated designs (every interaction used)
            generators = _saturated(k, p)
            if generators is None:
                continue
        found = resolution(generators)
        if found is None or found >= minimum_resolution:
            return generators
    raise AssertionError("unreachable: p = 0 is a full factorial")


def _saturated(k: int, p: int) -> str | None:
    """2^(k−p) using every interaction of the k−p base factors (e.g. 2^(7−4)), if p fits."""
    base = string.ascii_lowercase[: k - p]
    words = ["".join(c) for n in range(2, len(base) + 1) for c in itertools.combinations(base, n)]
    return " ".join([*base, *words]) if len(words) == p else None


class FractionalFactorial(FixedPlan):
    """2^(k−p) screening design over the tuned parameters, e.g. 7 factors in 8 runs::

    python -m tunelab strategy=fractional_factorial strategy.generators="a b c ab ac bc abc"
    """

    Settings = FractionalFactorialSettings

    def plan(self) -> list[PlannedTrial]:
        import pyDOE3

        s = self.settings
        factor_list = factors(self.context.space)
        k = len(factor_list)
        self.generators = s.generators or generators_for(k, s.resolution)
        if len(self.generators.split()) != k:
            raise ConfigError(
                f"strategy.generators: {self.generators!r} defines "
                f"{len(self.generators.split())} factors but model.tune has {k}"
            )
        coded = pyDOE3.fracfact(self.generators)
        self.alias_map = pyDOE3.fracfact_aliasing(coded)[0]
        return planned_trials(coded, factor_list, s.replicates, s.center_points)

    def describe(self) -> StudyDesign:
        letters = string.ascii_lowercase
        names = [f"{letters[i]} = {name}" for i, name in enumerate(self.context.space.names)]
        words = defining_words(self.generators)
        text = "\n".join(
            [
                f"generators: {self.generators}",
                f"resolution: {resolution(self.generators) or 'full factorial'}",
                "defining relation: I = " + " = ".join(words)
                if words
                else "defining relation: none",
                "factors: " + ", ".join(names),
                "",
                "aliases:",
                *self.alias_map,
            ]
        )
        return StudyDesign(
            params={
                "design.runs": len(self.points),
                "design.generators": self.generators,
                "design.resolution": resolution(self.generators) or "full",
            },
            texts={"design/design.csv": design_csv(self.points), "design/aliases.txt": text + "\n"},
        )
