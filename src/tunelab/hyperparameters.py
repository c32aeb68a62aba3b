"""A user's `build(hp)` under every strategy: KerasTuner's `HyperParameters`, drawn by tunelab.

A model written for KerasTuner declares its space as it builds (`hp.Int("units", 32, 512)`), so
the space is found the way KerasTuner finds it: `discover` builds once with defaults and again
until every conditional scope has been active; names that first appear later (a layer loop's
`units_2`) join when they do. A trial's `TrialHyperParameters` holds the values its strategy
chose, draws the ones it has not got (`draw`: Optuna's define-by-run `trial.suggest_*`; without
it, the default, as KerasTuner does) and remembers which names the model read, so that only
active values are logged. Importing this module imports KerasTuner (and TensorFlow).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any, Literal

import keras_tuner as kt
from keras_tuner.src.engine.hyperparameters import hp_types

from tunelab.schema import ConfigError
from tunelab.space import Param, SearchSpace

Draw = Callable[[Any], Any]  # a KerasTuner hyperparameter -> its value in this trial


class TrialHyperParameters(kt.HyperParameters):
    """KerasTuner's `HyperParameters` for one trial: `values` chosen up front, the others drawn
    by `draw` (or their defaults) when the model first asks; `used` lists what it read."""

    def __init__(self, values: dict[str, Any] | None = None, draw: Draw | None = None) -> None:
        super().__init__()
        self.values.update(values or {})
        self.draw = draw
        self.used: dict[str, None] = {}  # names read while active, in order (an ordered set)

    @classmethod
    def of(cls, hp: kt.HyperParameters) -> TrialHyperParameters:
        """A copy of KerasTuner's `hp` (an oracle's trial), space and values."""
        return cls.from_config(hp.get_config())  # KerasTuner's own copy, as this class

    def _register(self, hyperparameter: Any, overwrite: bool = False) -> Any:
        name = hyperparameter.name
        if self.draw and name not in self.values and self.is_active(hyperparameter):
            self.values[name] = self.draw(hyperparameter)
        return super()._register(hyperparameter, overwrite)

    def _retrieve(self, hp: Any) -> Any:
        value = super()._retrieve(hp)
        if self._conditions_are_active(hp.conditions):
            self.used[hp.name] = None
        return value

    def get(self, name: str) -> Any:
        value = super().get(name)
        self.used[self._get_name(name)] = None
        return value

    def used_values(self) -> dict[str, Any]:
        """The values the model read, in the order it read them (tuned ones, not `Fixed`)."""
        fixed = {p.name for p in self.space if isinstance(p, hp_types.Fixed)}
        return {n: self.values[n] for n in self.used if n in self.values and n not in fixed}


def as_hypermodel(build: Any) -> kt.HyperModel:
    """`build` as a `keras_tuner.HyperModel`: a HyperModel instance or class as it is (a class
    is instantiated), a function `build(hp)` wrapped."""
    if isinstance(build, type) and issubclass(build, kt.HyperModel):
        build = build()
    if isinstance(build, kt.HyperModel):
        return build
    if not callable(build):
        raise ConfigError(
            f"model.build: expected a function build(hp) or a keras_tuner."
            f"HyperModel, got {type(build).__name__}"
        )
    return _FunctionHyperModel(build)


class _FunctionHyperModel(kt.HyperModel):
    def __init__(self, build: Callable[[Any], Any]) -> None:
        super().__init__(name=getattr(build, "__name__", "build"))
        self.function = build

    def build(self, hp: Any) -> Any:
        return self.function(hp)


def overrides_fit(hypermodel: kt.HyperModel) -> bool:
    """Whether the HyperModel has a `fit` of its own (KerasTuner then calls it for training)."""
    return type(hypermodel).fit is not kt.HyperModel.fit


def discover(hypermodel: kt.HyperModel, check: Callable[[Any], None]) -> kt.HyperParameters:
    """The space `hypermodel` declares, as KerasTuner's tuners find it: build with defaults,
    then again with each never-active conditional scope's parent set to activate it. `check`
    sees every model built (a build that returns no compiled model is refused there)."""
    hp = TrialHyperParameters()
    hypermodel.declare_hyperparameters(hp)
    never_active: list[Any] = []
    seen: list[Any] = []
    for _ in range(100):  # KerasTuner loops until done; a bound keeps a bad build from spinning
        check(hypermodel.build(hp))
        for scope in hp.active_scopes:
            if scope not in seen:
                seen.append(copy.deepcopy(scope))
            if scope in never_active:
                never_active.remove(scope)
        never_active += [
            copy.deepcopy(s) for s in hp.inactive_scopes if s not in seen and s not in never_active
        ]
        if not never_active:
            break
        hp = TrialHyperParameters.of(hp)
        for condition in never_active[0]:
            hp.values[condition.name] = condition.values[0]
        hp.ensure_active_values()
    return hp


def search_space(hp: kt.HyperParameters, declared: SearchSpace) -> SearchSpace:
    """The discovered space as tunelab's (for fixed plans, GP-EI and the study's record), with
    what `declared` (`space=`) gives laid over it: a declared name replaces the discovered one."""
    params: dict[str, Param] = {}
    for p in hp.space:
        if p.name in declared.params:
            params[p.name] = declared.params[p.name]
        elif not isinstance(p, hp_types.Fixed):
            params[p.name] = to_param(p)
    for name, param in declared.params.items():
        params.setdefault(name, param)
    return SearchSpace(params)


def to_param(p: Any) -> Param:
    """A KerasTuner hyperparameter as a tunelab `Param` (its conditions kept)."""
    conditions = [{"name": c.name, "values": list(c.values)} for c in p.conditions] or None
    if isinstance(p, hp_types.Boolean):
        return Param("bool", conditions=conditions)
    if isinstance(p, hp_types.Choice):
        return Param("choice", values=list(p.values), conditions=conditions)
    log = p.sampling == "log"
    kind: Literal["int", "float"] = "int" if isinstance(p, hp_types.Int) else "float"
    if log and p.step:  # KerasTuner's multiplicative steps: a list of values
        return Param("choice", values=_log_steps(p), conditions=conditions)
    step = p.step if kind == "float" else (p.step or 1)
    return Param(kind, low=p.min_value, high=p.max_value, log=log, step=step, conditions=conditions)


def _log_steps(p: Any) -> list[Any]:
    count = int(math.floor(math.log(p.max_value / p.min_value, p.step) + 1e-9)) + 1
    values = [p.min_value * p.step**i for i in range(count)]
    return [int(round(v)) for v in values] if isinstance(p, hp_types.Int) else values


def optuna_draw(trial: Any, overrides: SearchSpace) -> Draw:
    """Optuna's define-by-run: each hyperparameter a model asks for becomes `trial.suggest_*`
    (as `overrides` declares it, where it does)."""

    def draw(p: Any) -> Any:
        if isinstance(p, hp_types.Fixed):
            return p.value
        param = overrides.params.get(p.name) or to_param(p)
        return SearchSpace({p.name: param}).suggest_optuna(trial)[p.name]

    return draw
