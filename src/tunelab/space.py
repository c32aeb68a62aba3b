"""The one search-space type, declared once in a model's YAML, and its translations.

A space maps hyperparameter names to `Param`s, written as mappings or in Hydra's sweep syntax
(a string replaces an inherited mapping whole, so a preset can change a parameter's type)::

    space:
      lr: {type: float, low: 1e-4, high: 1e-2, log: true}   # or: tag(log, interval(1e-4, 1e-2))
      units: {type: choice, values: [64, 128, 256]}         # or: choice(64, 128, 256)
      batch_norm: {type: bool}
      depth: {type: int, low: 1, high: 4}                   # or: range(1, 5)

Strategies translate it: `declare_keras_tuner(hp)`, `suggest_optuna(trial)`, `grid()`.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tunelab.schema import ConfigError, build

ParamType = Literal["float", "int", "choice", "bool"]


@dataclass(frozen=True)
class Param:
    """One tunable hyperparameter: a range (float, int), a list of values (choice) or a bool."""

    type: ParamType
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    values: list[Any] | None = None
    # A design factor the model does not take: it is varied and logged, so an analysis can show
    # it has no effect, but it never reaches the model (e.g. a guidance weight in a classifier
    # study, kept for the guided-diffusion design it belongs to).
    inert: bool = False
    # Active only where each condition holds: [{name: num_layers, values: [2, 3]}] (a
    # KerasTuner conditional scope); a fixed plan varies it only there.
    conditions: list[dict[str, Any]] | None = None

    def check(self, path: str) -> None:
        for i, condition in enumerate(self.conditions or []):
            if set(condition) != {"name", "values"} or not isinstance(condition["values"], list):
                raise ConfigError(
                    f"{path}.conditions[{i}]: expected {{name: <parameter>, "
                    f"values: [...]}}, got {condition!r}"
                )
        if self.type in ("float", "int"):
            if self.low is None or self.high is None:
                raise ConfigError(f"{path}: a {self.type} parameter needs low and high")
            if self.low >= self.high:
                raise ConfigError(f"{path}: low ({self.low}) must be below high ({self.high})")
            if self.log and self.low <= 0:
                raise ConfigError(f"{path}: log scale needs low > 0, got {self.low}")
            if self.log and self.step is not None:
                raise ConfigError(f"{path}: log and step cannot be combined")
            if self.type == "int" and not all(
                float(v).is_integer() for v in (self.low, self.high, self.step or 1)
            ):
                raise ConfigError(f"{path}: an int parameter needs integer low, high and step")
            if self.values is not None:
                raise ConfigError(f"{path}: values belong to type choice")
        elif self.type == "choice":
            if any(v is not None for v in (self.low, self.high, self.step)) or self.log:
                raise ConfigError(f"{path}: a choice parameter takes only values")
            if not self.values:
                raise ConfigError(f"{path}: a choice parameter needs a non-empty values list")
            if len(set(map(repr, self.values))) != len(self.values):
                raise ConfigError(f"{path}: values contain duplicates")
        elif any(v is not None for v in (self.low, self.high, self.step, self.values)):
            raise ConfigError(f"{path}: a bool parameter takes no low/high/step/values")

    def described(self) -> dict[str, Any]:
        """This parameter in its YAML form: the fields that say something."""
        return {k: v for k, v in vars(self).items() if v not in (None, False)}

    @property
    def bounds(self) -> tuple[float, float]:
        """(low, high) of a float or int range."""
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} parameter has no low and high")
        return float(self.low), float(self.high)

    @property
    def choices(self) -> list[Any]:
        """All values of a discrete parameter, in declaration order."""
        if self.type == "choice":
            return list(self.values or [])
        if self.type == "bool":
            return [False, True]
        if self.type == "int" and not self.log:
            low, high = self.bounds
            return list(range(int(low), int(high) + 1, int(self.step or 1)))
        raise ValueError(f"a {self.type} parameter with log={self.log} has no finite list")

    def grid_values(self, points: int) -> list[Any]:
        """The values a grid takes: every value of a choice, a bool or a linear int range (at
        its step, default 1); `points` values spread over a float or log-scaled int range
        (log-spaced)."""
        if self.type in ("choice", "bool") or (self.type == "int" and not self.log):
            return self.choices
        spread = np.geomspace if self.log else np.linspace
        values = spread(*self.bounds, points)
        if self.type == "int":
            return sorted({int(round(v)) for v in values})
        return [float(v) for v in values]


@dataclass(frozen=True)
class SearchSpace:
    """Named hyperparameters to tune; everything else is fixed by the model's `hparams`."""

    params: dict[str, Param]

    @classmethod
    def from_config(cls, mapping: dict[str, Any], path: str = "model.space") -> SearchSpace:
        if not isinstance(mapping, dict):
            raise ConfigError(f"{path}: expected a mapping of name -> parameter")
        return cls({name: parse_param(spec, f"{path}.{name}") for name, spec in mapping.items()})

    @property
    def names(self) -> list[str]:
        return list(self.params)

    def declare_keras_tuner(self, hp: Any) -> None:
        """Declare every parameter on a `keras_tuner.HyperParameters` object (a conditional one
        inside its conditional scopes)."""
        self._require_scalar_choices("KerasTuner")
        for name, p in self.params.items():
            with contextlib.ExitStack() as scopes:
                for condition in p.conditions or []:
                    scopes.enter_context(
                        hp.conditional_scope(condition["name"], condition["values"])
                    )
                self._declare(hp, name, p)

    @staticmethod
    def _declare(hp: Any, name: str, p: Param) -> None:
        sampling = "log" if p.log else "linear"
        if p.type == "float":
            hp.Float(name, p.low, p.high, step=p.step, sampling=sampling)
        elif p.type == "int":
            low, high = p.bounds
            hp.Int(name, int(low), int(high), step=int(p.step or 1), sampling=sampling)
        elif p.type == "choice":
            hp.Choice(name, p.choices, ordered=_is_numeric(p.choices))
        else:
            hp.Boolean(name)

    def suggest_optuna(self, trial: Any) -> dict[str, Any]:
        """Ask an `optuna.Trial` for one value per parameter."""
        self._require_scalar_choices("Optuna")
        values: dict[str, Any] = {}
        for name, p in self.params.items():
            if p.type == "float":
                values[name] = trial.suggest_float(name, p.low, p.high, log=p.log, step=p.step)
            elif p.type == "int":
                low, high = p.bounds
                values[name] = trial.suggest_int(
                    name, int(low), int(high), step=int(p.step or 1), log=p.log
                )
            else:
                values[name] = trial.suggest_categorical(name, p.choices)
        return values

    def _require_scalar_choices(self, library: str) -> None:
        for name, p in self.params.items():
            if p.type == "choice" and any(isinstance(v, (list, dict)) for v in p.values or []):
                raise ConfigError(
                    f"model.space.{name}: {library} cannot tune list-valued choices; "
                    "use strategy=grid for them"
                )

    def require_ranges(self, who: str) -> None:
        """Refuse, naming it, a choice or bool parameter in a space `who` searches as ranges."""
        for name, p in self.params.items():
            if p.type not in ("float", "int"):
                raise ConfigError(
                    f"model.space.{name}: {who} needs float or int ranges, not a "
                    f"{p.type}; leave it out of model.tune or use another "
                    "strategy"
                )

    def grid(self, points: int = 3, max_points: int = 1000) -> list[dict[str, Any]]:
        """Every combination of the parameters' grid values (`Param.grid_values`), first
        parameter varying slowest; refused when there are more than `max_points`."""
        axes = {name: p.grid_values(points) for name, p in self.params.items()}
        size = math.prod(len(values) for values in axes.values())
        if size > max_points:
            shape = " x ".join(f"{name} {len(values)}" for name, values in axes.items())
            raise ConfigError(
                f"strategy.max_points: the grid has {size:,} points ({shape}), more than "
                f"{max_points:,}; tune fewer parameters (model.tune), lower strategy.points or "
                "raise strategy.max_points"
            )
        combos = itertools.product(*axes.values())
        plan = [self.active(dict(zip(self.names, combo, strict=True))) for combo in combos]
        unique = {repr(point): point for point in plan}  # one per active combination
        return list(unique.values())

    def active(self, values: dict[str, Any]) -> dict[str, Any]:
        """`values` without the parameters whose conditions they do not meet."""
        return {
            name: value
            for name, value in values.items()
            if all(values.get(c["name"]) in c["values"] for c in self.params[name].conditions or [])
        }

    @property
    def conditional(self) -> list[str]:
        """The parameters active only under a condition."""
        return [name for name, p in self.params.items() if p.conditions]

    def size(self) -> float:
        """Number of distinct points (inf when any parameter is continuous)."""
        try:
            return float(math.prod(len(p.choices) for p in self.params.values()))
        except ValueError:
            return math.inf


def parse_param(spec: Any, path: str) -> Param:
    """A `Param` from a mapping or from Hydra's sweep syntax (`choice`, `interval`, `range`)."""
    if isinstance(spec, str):
        spec = _from_sweep_syntax(spec, path)
    return build(Param, spec, path)


def _from_sweep_syntax(text: str, path: str) -> dict[str, Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    usage = (
        "write choice(a, b, ...), interval(low, high), tag(log, interval(low, high)), "
        "range(start, stop[, step]) or a mapping with type"
    )
    try:
        sweep = OverridesParser.create().parse_override(f"x={text}").value()
    except Exception:  # Hydra raises its own parse errors
        raise ConfigError(f"{path}: cannot read {text!r}; {usage}") from None
    if isinstance(sweep, ChoiceSweep):
        return {"type": "choice", "values": list(sweep.list)}
    if isinstance(sweep, IntervalSweep):
        return {"type": "float", "low": sweep.start, "high": sweep.end, "log": "log" in sweep.tags}
    if isinstance(sweep, RangeSweep):
        start, stop, step = sweep.start, sweep.stop, sweep.step
        if isinstance(start, int) and isinstance(stop, int) and isinstance(step, int):
            last = start + (stop - 1 - start) // step * step
            return {"type": "int", "low": start, "high": last, "step": step}
    raise ConfigError(f"{path}: {text!r} is not a search range; {usage}")


def _is_numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
