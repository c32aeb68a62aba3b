"""A user's own model: a KerasTuner-style `build(hp)` function or `keras_tuner.HyperModel`.

`HyperModelFamily.of(build)` makes the family of one user model. Its space is the one the model
declares as it builds (`tunelab.hyperparameters.discover`), with a declared `space=` laid over
it; a trial's `hp` is KerasTuner's `HyperParameters`, filled by whichever strategy runs. A
HyperModel's own `fit(hp, model, x, y, **kwargs)` trains its trials, as in KerasTuner.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, ClassVar

from tunelab.models.common import ModelBuilder
from tunelab.schema import ConfigError, ModelError
from tunelab.space import SearchSpace
from tunelab.tasks.supervised import Supervised


@dataclass
class NoFixedValues:
    """A user's model fixes its own values in its code."""


class HyperModelFamily(ModelBuilder):
    """The family of one user model: `HyperModelFamily.of(build)` from Python, or
    `configured("mypkg.models:build_model")` from the config (`model=hypermodel`)."""

    HParams = NoFixedValues
    task = Supervised
    defines_space = True
    name: ClassVar[str] = "hypermodel"  # the build function's or HyperModel class's name
    build_path: ClassVar[str | None] = None  # `module:attribute`, imported on first use
    _hypermodel: ClassVar[Any] = None  # the keras_tuner.HyperModel

    @classmethod
    def of(cls, build: Any) -> type[HyperModelFamily]:
        """The family of `build`: a function `build(hp)`, or a `keras_tuner.HyperModel` (class
        or instance)."""
        from tunelab.hyperparameters import as_hypermodel

        hypermodel = as_hypermodel(build)
        name = hypermodel.name or type(hypermodel).__name__
        return type(f"HyperModelFamily[{name}]", (cls,), {"_hypermodel": hypermodel, "name": name})

    @classmethod
    def configured(cls, path: Any) -> type[HyperModelFamily]:
        """The family of the build function or HyperModel at `path` (`module:attribute`), whose
        module is found now and imported (with TensorFlow) only when the study starts. The
        working directory is searched first, as `python -m` does."""
        import importlib.util

        if not isinstance(path, str) or ":" not in path:
            raise ConfigError(
                f"model.build: expected module:attribute, e.g. "
                f"mypkg.models:build_model, got {path!r}"
            )
        module, _, attribute = path.partition(":")
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise ConfigError(
                f"model.build: no module {module!r} on the path (the working "
                f"directory {os.getcwd()} and the installed packages)"
            )
        return type(f"HyperModelFamily[{path}]", (cls,), {"build_path": path, "name": attribute})

    @classmethod
    def hypermodel(cls) -> Any:
        """The user's `keras_tuner.HyperModel` (its module imported on first use)."""
        if cls._hypermodel is None and cls.build_path:
            import importlib

            from tunelab.hyperparameters import as_hypermodel

            module, _, attribute = cls.build_path.partition(":")
            try:
                imported = importlib.import_module(module)
            except Exception as error:  # the user's module: its own error, in one line
                raise ModelError(
                    f"model.build: importing {module!r} failed: {type(error).__name__}: {error}"
                ) from error
            found = getattr(imported, attribute, None)
            if found is None:
                raise ModelError(f"model.build: module {module!r} has no {attribute!r}")
            cls._hypermodel = as_hypermodel(found)
        return cls._hypermodel

    @classmethod
    def build(cls, hp: Any, spec: Any) -> Any:
        """The user's model for `hp`, its weights created (`spec`: the data it trains on)."""
        model = cls.hypermodel().build(hp)
        check_compiled(model)
        if spec is not None:
            if not model.built:
                build_weights(model, spec.x_train)
            spec.check_model(model)
        return model

    @classmethod
    def searched_space(cls, declared: SearchSpace) -> SearchSpace:
        """What the model declares when built with defaults (and with each conditional scope
        active), with the `declared` parameters laid over it."""
        from tunelab.hyperparameters import discover, search_space

        hypermodel = cls.hypermodel()
        try:
            found = discover(hypermodel, check_compiled)
        except ModelError:
            raise
        except Exception as error:  # the user's code: its last line, as a trial would fail
            raise ModelError(
                f"model.build: raised {type(error).__name__}: {error} when built "
                "with its hyperparameters' defaults"
            ) from error
        return search_space(found, declared)

    @classmethod
    def hparams_for(cls, fixed: Any, values: dict[str, Any], drawn: Any = None) -> Any:
        """KerasTuner's HyperParameters for one trial: the strategy's own (an oracle's trial, or
        Optuna's define-by-run drawer) or, without one, `values` with defaults for the rest."""
        from tunelab.hyperparameters import TrialHyperParameters

        if drawn is None:
            return TrialHyperParameters(values)
        if isinstance(drawn, TrialHyperParameters):
            return drawn
        return TrialHyperParameters.of(drawn)

    @classmethod
    def tuned_values(cls, hp: Any, proposed: dict[str, Any]) -> dict[str, Any]:
        """The values the model read: a parameter inactive in this trial is left out."""
        return hp.used_values()

    @classmethod
    def logged_params(cls, hp: Any) -> dict[str, Any]:
        return hp.used_values()

    @classmethod
    def fit(cls, hp: Any, model: Any, **kwargs: Any) -> Any:
        """The HyperModel's own `fit` where it has one, called as KerasTuner calls it (the data
        positional, the rest, callbacks included, as keywords); else `model.fit`."""
        from tunelab.hyperparameters import overrides_fit

        hypermodel = cls.hypermodel()
        if not overrides_fit(hypermodel):
            return model.fit(**kwargs)
        args = [kwargs.pop("x")] + ([kwargs.pop("y")] if "y" in kwargs else [])  # as search's
        return hypermodel.fit(hp, model, *args, **kwargs)


def check_compiled(model: Any) -> None:
    """Refuse, in one line, a build that returns no compiled `keras.Model`."""
    import keras

    if not isinstance(model, keras.Model):
        raise ModelError(
            f"model.build: returned {type(model).__name__}, not a keras.Model; "
            "build(hp) must return a compiled model"
        )
    if not getattr(model, "compiled", False):
        raise ModelError(
            "model.build: returned an uncompiled model; call model.compile(optimizer"
            "=..., loss=..., metrics=[...]) in build(hp) before returning it"
        )


def build_weights(model: Any, x: Any) -> None:
    """Create the weights of a model built without an input shape (a `Sequential` without
    `Input`), so that saved weights can be loaded into it."""
    import numpy as np

    from tunelab.data.supervised import head, streamed

    if streamed(x):
        x = head(x, 1)
    if isinstance(x, dict):
        model({k: np.asarray(v)[:1] for k, v in x.items()})
        return
    try:
        model.build((None, *np.shape(x)[1:]))
    except Exception:  # a subclassed model that cannot build from a shape alone
        model(np.asarray(x)[:1])
