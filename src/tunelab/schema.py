"""Typed settings from plain mappings, with one clear error line per mistake.

`build(Settings, mapping, "strategy")` checks every key against the dataclass fields and their
type hints (int, float, str, bool, Literal, Optional, nested dataclasses, list, dict) and
returns the instance. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value is wrong; the message names the key and what would be valid."""


class ModelError(ConfigError):
    """A user's model or data cannot be studied at all (a build that returns no compiled model,
    labels that do not fit it, an objective it does not report): raised in a trial, it stops
    the study instead of failing one trial after another."""


class Renamed(FutureWarning):
    """A setting or option given by its old name: it still works, under its new one."""


# strategies' old names: `strategy=bayesian` and `strategy=gp` are YAMLs of conf/strategy/ that
# say `renamed_from`; the comparisons read old studies' `tunelab.strategy` tags by these
RENAMED_STRATEGIES = {"bayesian": "keras_bayesian", "gp": "optuna_gp"}


class StudyFailed(RuntimeError):
    """A study cannot go on (its first trials all failed the same way); one line says why."""


def one_line(reason: str, limit: int = 300) -> str:
    """A failure's reason on one line (a library's message may span several), shortened."""
    text = " ".join(reason.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build(cls: type[T], mapping: Any, path: str) -> T:
    """Build dataclass `cls` from `mapping`, the config at dotted `path`."""
    if not isinstance(mapping, dict):
        raise ConfigError(f"{path}: expected a mapping, got {mapping!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise ConfigError(
            f"{_join(path, unknown[0])}: unknown key; valid keys: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    values = {}
    for name, field in fields.items():
        key = _join(path, name)
        if name in mapping:
            values[name] = coerce(hints[name], mapping[name], key)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: missing value")
    instance = cls(**values)
    check = getattr(instance, "check", None)
    if check is not None:
        check(path)
    return instance


def coerce(hint: Any, value: Any, key: str) -> Any:
    """Return `value` checked against type `hint` (ints accepted where floats are expected)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return coerce(option, value, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: invalid value {value!r}")
    if origin is Literal:
        if value not in args:
            choices = ", ".join(str(a) for a in args)
            raise ConfigError(f"{key}: {value!r} is not valid; valid choices: {choices}")
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build(hint, value, key)
    if hint is Any:
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return [coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported type hint {hint!r} for {key}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
