"""The study's configuration schema: turns Hydra's composed config into typed, checked settings.

Everything here runs before TensorFlow is imported, so a typo costs a fraction of a second.
Each `model/`, `dataset/` and `strategy/` YAML names its implementation with `_target_`; that
class carries its own settings dataclass (`HParams` or `Settings`), so adding a component is one
module plus one YAML and nothing here changes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from tunelab.objective import Objective
from tunelab.schema import RENAMED_STRATEGIES, ConfigError, Renamed, build
from tunelab.settings import StudySettings, register_schema
from tunelab.settings import defaults as settings_defaults
from tunelab.space import Param, SearchSpace
from tunelab.tracking.settings import TrackingSettings

if TYPE_CHECKING:  # the builders import Keras lazily, but config stays light
    from tunelab.models.common import ModelBuilder

# conf/ inside the package: in the repo a symlink to the top-level conf/, in a wheel a copy
CONF_DIR = str(Path(__file__).resolve().parent / "conf")
T = TypeVar("T")
Budget = Literal["smoke", "default", "full"]
BUDGETS = ("smoke", "default", "full")


@dataclass
class TrainingSettings:
    """Fixed training settings of a model (strategies such as Hyperband may set the epochs)."""

    epochs: int = 10
    early_stopping_patience: int = 0  # 0 = off

    def check(self, path: str) -> None:
        if self.epochs < 1:
            raise ConfigError(f"{path}.epochs: must be at least 1, got {self.epochs}")


@dataclass
class Stage:
    """One study of a chain (`stages:` in an experiment preset, run by tunelab.stages)."""

    name: str
    overrides: list[str] = field(default_factory=list)  # laid over the preset, e.g. strategy=rsm
    analyse: bool = False  # factorial ANOVA of this stage's trials, logged as a comparison run
    responses: list[str] = field(default_factory=list)  # ANOVA'd too, besides the objective
    order: int = 1  # highest interaction order of that ANOVA
    factors_from: str | None = None  # tune only the most significant factors of that stage
    top: int = 3  # how many of them
    tune: list[str] | None = None  # with factors_from: these instead of its top factors
    claimed: float | None = None  # what the reproduced study claims for this stage's objective

    def check(self, path: str) -> None:
        if self.order < 1 or self.top < 1:
            raise ConfigError(f"{path}: order and top must be at least 1")


@dataclass
class Component:
    """A resolved `model`, `dataset` or `strategy` group: its name, class and checked settings."""

    name: str
    cls: type
    settings: Any


@dataclass
class ModelConfig:
    name: str
    cls: type[ModelBuilder]
    training: TrainingSettings
    hparams: Any  # the builder's HParams dataclass: the fixed values
    space: SearchSpace
    task: Any  # the settings of the model's task (its `Settings` dataclass)

    def hparams_for(self, values: dict[str, Any], drawn: Any = None) -> Any:
        """The builder's hyperparameters with the tuned `values` laid over the fixed ones (inert
        factors left out: the model does not take them); `drawn`: the strategy's own
        hyperparameter object, for a model that defines its space as it builds."""
        taken = {k: v for k, v in values.items() if not self.is_inert(k)}
        return self.cls.hparams_for(self.hparams, taken, drawn)

    def is_inert(self, name: str) -> bool:
        param = self.space.params.get(name)
        return param is not None and param.inert


@dataclass
class StudyConfig:
    seed: int
    repetition: int
    budget: Budget
    objective: Objective
    study_name: str
    resume: bool
    quiet: bool
    workdir: str
    tracking: TrackingSettings
    model: ModelConfig
    dataset: Component
    strategy: Component
    stages: list[Stage] = field(default_factory=list)
    stop_after_identical_failures: int = StudySettings.stop_after_identical_failures
    workers: int = StudySettings.workers
    keep_weights: int = StudySettings.keep_weights
    resolved: dict[str, Any] = field(repr=False, default_factory=dict)
    extra_tags: dict[str, str] = field(default_factory=dict)  # `tags`, and a chain's on its stages
    caller: Literal["config", "python"] = "config"  # how error messages spell a setting
    python_names: dict[str, str] = field(default_factory=dict)  # dotted key -> tune's argument

    def spell(self, key: str, value: Any) -> str:
        """`key=value` as this study's user writes it: `resume=False` from Python
        (`tunelab.tune`), `resume=false` on the command line or in YAML."""
        if self.caller == "python":
            return f"{self.name_of(key)}={value!r}"
        return f"{key}={json.dumps(value) if value is None or isinstance(value, bool) else value}"

    @property
    def shared(self) -> bool:
        """Whether other processes may run this study's trials: its own `workers=N`, or any
        worker that joins through a database server holding its Optuna study."""
        from tunelab.strategies.base import storage_of

        storage = storage_of(self.strategy.settings) or ""
        return self.workers != 1 or storage.startswith("postgresql")

    def name_of(self, key: str) -> str:
        """A dotted config key as this study's user names it (`model.training.epochs` is
        `epochs` for `tunelab.tune`): `python_names` maps whole keys, or prefixes (ending in
        a dot) to what replaces them."""
        if self.caller != "python":
            return key
        if key in self.python_names:
            return self.python_names[key]
        prefixes = [p for p in self.python_names if p.endswith(".") and key.startswith(p)]
        if not prefixes:
            return key
        prefix = max(prefixes, key=len)
        return self.python_names[prefix] + key.removeprefix(prefix)

    def fingerprint(self) -> dict[str, Any]:
        """What must not change between an interrupted study and its resumption."""
        ignored = (
            "resume",
            "quiet",
            "tracking",
            "workdir",
            "repetition",
            "stop_after_identical_failures",  # a resumed study may set it to 0
            "tags",
            "workers",
            "keep_weights",
        )
        return {k: v for k, v in self.resolved.items() if k not in ignored}

    def config_hash(self) -> str:
        text = json.dumps(self.fingerprint(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# keys of these mappings are anyone's: `model.fit.batch_size=64` needs no `+`
OPEN_MAPPINGS = ("model.fit.", "tags.")
# settings' old names, which still work with a warning (strategies': schema.RENAMED_STRATEGIES)
RENAMED_OVERRIDES = {"strategy.n_trials", "strategy.iterations"}
RENAMED_OVERRIDES_SHORT = {key.removeprefix("strategy.") for key in RENAMED_OVERRIDES}

TOP_LEVEL = {f.name for f in fields(StudySettings)}


def register_resolvers() -> None:
    """The schema of conf/config.yaml (`StudySettings`) in Hydra's ConfigStore, and
    `${by_budget:smoke,default,full}`, which picks a value by the root `budget` key.

    An explicit override (`strategy.max_trials=5`) replaces the whole interpolation, so what a
    user types always wins over the budget.
    """
    from omegaconf import OmegaConf

    register_schema()

    def by_budget(smoke: Any, default: Any, full: Any, *, _root_: Any) -> Any:
        return {"smoke": smoke, "full": full}.get(_root_.get("budget"), default)

    if not OmegaConf.has_resolver("by_budget"):
        OmegaConf.register_new_resolver("by_budget", by_budget)


def compose(overrides: list[str] | None = None) -> StudyConfig:
    """The checked config `python -m tunelab <overrides>` would run (for notebooks and tests)."""
    return from_hydra(_hydra_compose(overrides or []))


def _hydra_compose(overrides: list[str]) -> Any:
    """Hydra's composed config, unchecked."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    overrides = opened(overrides)
    if GlobalHydra.instance().is_initialized():  # inside `python -m tunelab` (a chain's stage)
        return hydra_compose(config_name="config", overrides=overrides)
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


def opened(overrides: list[str]) -> list[str]:
    """`overrides` with those that add a key Hydra's struct mode would refuse marked `++`:
    any key of an open mapping (`model.fit.batch_size=64`: what `keras.Model.fit` takes) and
    the renamed settings, which the schema then renames with a warning."""
    marked = []
    for override in overrides:
        key = override.partition("=")[0]
        if key.startswith(OPEN_MAPPINGS) or key in RENAMED_OVERRIDES:
            override = f"++{override}"
        marked.append(override)
    return marked


StrategyChoice = Any  # a strategy's name, a `_target_` mapping (as its YAML) or its class


def strategy_class(strategy: StrategyChoice, config_dir: str | None = None) -> type:
    """The class of `strategy` (one line listing the valid names if a name is none)."""
    if isinstance(strategy, type):
        return strategy
    if isinstance(strategy, Mapping):
        target = strategy.get("_target_")
    else:
        target = _named_strategy(strategy, "default", config_dir)["_target_"]
    return _import(_str(target, "strategy._target_"), "strategy._target_")


def settings_class(cls: type) -> Any:
    """A strategy class's `Settings` dataclass (one line if it has none)."""
    found = getattr(cls, "Settings", None)
    if found is None:
        raise ConfigError(f"strategy: {cls.__name__} has no Settings dataclass")
    return found


def strategy_component(
    strategy: StrategyChoice,
    settings: dict[str, Any],
    budget: Budget = "default",
    config_dir: str | None = None,
) -> Component:
    """`strategy` with `settings` laid over it, checked: a name, composed as `python -m
    tunelab [--config-dir <config_dir>] strategy=<name> budget=<budget>` composes it; a
    mapping as a strategy YAML holds (`_target_`, then settings); or a `Strategy` subclass."""
    from omegaconf import OmegaConf

    if isinstance(strategy, type):
        _require_implemented(strategy, strategy.__name__, "strategy")
        built = build(settings_class(strategy), settings, "strategy")
        return Component(strategy.__name__, strategy, built)
    if isinstance(strategy, Mapping):
        target = _str(strategy.get("_target_"), "strategy._target_")
        named = {"name": target.rpartition(".")[2], **strategy, **settings}
        return _component(_strategy_group(named), "strategy", "Settings")
    group = OmegaConf.merge(_named_strategy(strategy, budget, config_dir), settings)  # any keys
    resolved = OmegaConf.to_container(
        OmegaConf.create({"budget": budget, "s": group}), resolve=True
    )
    return _component(_strategy_group(_as_dict(_as_dict(resolved)["s"])), "strategy", "Settings")


def _named_strategy(name: Any, budget: str, config_dir: str | None) -> Any:
    """Strategy `name`'s YAML as Hydra composes it, read again once a strategy YAML changes."""
    if not isinstance(name, str):
        raise ConfigError(
            "strategy: expected a strategy's name, a mapping with its _target_ or a "
            f"Strategy subclass, got {name!r}"
        )
    folders = [Path(CONF_DIR), *([Path(config_dir).resolve()] if config_dir else [])]
    edited = max((f.stat().st_mtime for d in folders for f in d.glob("strategy/*.yaml")), default=0)
    return _strategy_yaml(name, budget, config_dir, edited)


@functools.lru_cache(maxsize=16)
def _strategy_yaml(name: str, budget: str, config_dir: str | None, edited: float) -> Any:
    """Strategy `name`'s group as Hydra composes it, interpolations unresolved; read again
    when a strategy YAML was `edited` (its newest modification time) since."""
    from omegaconf import OmegaConf

    overrides = [f"strategy={name}", f"budget={budget}"]
    if config_dir is not None:
        overrides.append(f"hydra.searchpath=[file://{Path(config_dir).resolve()}]")
    try:
        composed = _hydra_compose(overrides)
    except Exception as error:  # Hydra's: an unknown strategy, most likely
        raise ConfigError(composition_error(error, overrides, config_dir)) from None
    return OmegaConf.create(OmegaConf.to_container(composed.strategy))


def composition_error(error: Exception, overrides: list[str], config_dir: str | None = None) -> str:
    """One line saying why Hydra could not compose the config from `overrides`: an option no
    group has (with the group's valid choices), a key the config lacks (with the keys it has
    there), an unreadable override, or else Hydra's own message."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf import OmegaConf

    if isinstance(error, OverrideParseException):
        reason = str(error).splitlines()[0]
        return (
            f"{error.override}: cannot read this override ({reason}); see "
            "https://hydra.cc/docs/advanced/override_grammar/basic/"
        )
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        group, _, option = error.missing_cfg_file.partition("/")
        folders = [Path(d) / group for d in (CONF_DIR, config_dir) if d is not None]
        if option and folders[0].is_dir():  # experiment presets nest: experiment=mnist_mlp/rho
            choices = sorted(
                {
                    f.relative_to(folder).with_suffix("").as_posix()
                    for folder in folders
                    for f in folder.rglob("*.yaml")
                    if f.stem not in RENAMED_STRATEGIES or group != "strategy"
                }
            )
            return f"{group}: {option!r} is not valid; valid choices: {', '.join(choices)}"
    if (wrong := _wrong_type(error.__cause__)) is not None:
        return wrong
    missing = getattr(error.__cause__, "full_key", None)  # the key, or its first missing parent
    refused = [o for o in overrides if missing and _sets_key_under(o, missing)]
    if refused:
        try:  # the config as it is without the refused override
            composed = _hydra_compose([o for o in overrides if o not in refused])
        except Exception:  # the others cannot be composed alone (a sweep): say less
            composed = None
        parent = (missing or "").rpartition(".")[0]
        node = OmegaConf.select(composed, parent) if composed is not None and parent else composed
        if node is not None:
            valid = ", ".join(sorted(str(k) for k in node if not str(k).startswith("_")))
            return f"{missing}: unknown key; valid keys: {valid}"
    lines = [line.strip().rstrip(".") for line in str(error).splitlines() if line.strip()]
    return "; ".join(lines)


TYPE_NAMES = {"Integer": "an integer", "Float": "a number", "bool": "true or false"}


def _wrong_type(cause: BaseException | None) -> str | None:
    """One line for a value the schema's type refuses (`seed=abc`), None for another error."""
    from omegaconf.errors import ConfigKeyError, ValidationError

    if not isinstance(cause, ValidationError) or isinstance(cause, ConfigKeyError):
        return None
    text = str(cause)
    found = re.match(r"Value '(.*)' of type '.*' could not be converted to (\w+)", text)
    found = found or re.match(r"Value '(.*)' is not a valid (bool)", text)
    if found is None:
        return f"{cause.full_key}: {text.splitlines()[0]}"
    value, kind = found.groups()
    return f"{cause.full_key}: expected {TYPE_NAMES.get(kind, kind.lower())}, got {value!r}"


def _sets_key_under(override: str, key: str) -> bool:
    """Whether `override` (`a.b=v`) sets `key` or a key below it."""
    return f"{override.partition('=')[0]}.".startswith(f"{key}.")


def from_hydra(cfg: Any) -> StudyConfig:
    """Check Hydra's composed config under its own budget, then under the other budgets too,
    so a typo in a `full`-only value fails today rather than on the big machine."""
    from omegaconf import OmegaConf

    study = load(_as_dict(OmegaConf.to_container(cfg, resolve=True)))
    for other in BUDGETS:
        if other != study.budget:
            variant = OmegaConf.merge(cfg, {"budget": other})
            try:
                load(_as_dict(OmegaConf.to_container(variant, resolve=True)))
            except ConfigError as error:
                raise ConfigError(f"{error} (with budget={other})") from None
    return study


def load(raw: dict[str, Any]) -> StudyConfig:
    """Check a composed config (a plain dict with interpolations resolved) and type it."""
    unknown = sorted(set(raw) - TOP_LEVEL)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key; valid keys: {', '.join(sorted(TOP_LEVEL))}")
    given = {k: v for k, v in raw.items() if v is not None}  # a stored config may lack keys
    raw = {**settings_defaults(), **given, "strategy": _strategy_group(_group(raw, "strategy"))}
    budget = raw["budget"]
    if budget not in BUDGETS:
        raise ConfigError(f"budget: {budget!r} is not valid; valid choices: {', '.join(BUDGETS)}")
    seed = _int(raw["seed"], "seed")
    model = _model(_group(raw, "model"))
    dataset = _component(_group(raw, "dataset"), "dataset", "Settings")
    strategy = _component(_group(raw, "strategy"), "strategy", "Settings")
    study_name = raw["study_name"] or f"{model.name}-{dataset.name}-{strategy.name}-seed{seed}"
    objective = build(Objective, raw["objective"], "objective")
    objective = objective.resolved_for(model.cls.task, model.name)
    if hasattr(model.task, "objective"):  # a task that draws the objective's learning curve
        model.task = replace(model.task, objective=objective.name)
    return StudyConfig(
        seed=seed,
        repetition=_int(raw["repetition"], "repetition"),
        budget=budget,
        objective=objective,
        study_name=_str(study_name, "study_name"),
        resume=_bool(raw["resume"], "resume"),
        quiet=_bool(raw["quiet"], "quiet"),
        workdir=_str(raw["workdir"], "workdir"),
        tracking=build(TrackingSettings, raw["tracking"], "tracking"),
        model=model,
        dataset=dataset,
        strategy=strategy,
        stages=_stages(raw["stages"]),
        stop_after_identical_failures=_non_negative(
            raw["stop_after_identical_failures"], "stop_after_identical_failures"
        ),
        resolved={**raw, "study_name": study_name, "objective": vars(objective)},
        extra_tags=_tags(raw["tags"]),
        workers=_workers(raw["workers"], strategy),
        keep_weights=_at_least_one(raw["keep_weights"], "keep_weights"),
    )


def _workers(value: Any, strategy: Component) -> int:
    workers = _int(value, "workers")
    if workers < 0:
        raise ConfigError(f"workers: must be at least 0, got {workers}")
    cls: Any = strategy.cls  # a Strategy subclass (not imported here: no TensorFlow)
    if workers != 1 and not cls.parallel:
        raise ConfigError(
            f"workers: strategy={strategy.name} runs in one process; with "
            f"workers={workers} use {cls.in_parallel_use}"
        )
    return workers


def _tags(tags: Any, prefix: str = "tags") -> dict[str, str]:
    """`tags` as MLflow tags: nested keys joined by dots (`tags.team.name=x` -> `team.name`)."""
    if not isinstance(tags, dict):
        raise ConfigError(f"{prefix}: expected a mapping of tag names to values, got {tags!r}")
    flat: dict[str, str] = {}
    for key, value in tags.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in _tags(value, f"{prefix}.{key}").items()})
        else:
            flat[str(key)] = str(value)
    return flat


def _strategy_group(group: dict[str, Any]) -> dict[str, Any]:
    """The strategy's settings under today's names: an old strategy name (a YAML that says
    `renamed_from`) or setting is renamed, with a warning naming the new one."""
    group = dict(group)
    old = group.pop("renamed_from", None)
    if old is not None:
        renamed(f"strategy={old}", f"strategy={group.get('name')}")
    if "n_trials" in group:
        renamed("strategy.n_trials", "strategy.max_trials")
        group["max_trials"] = group.pop("n_trials")
    if "iterations" in group:  # gp_ei's GP-chosen trials, after its n_initial random ones
        renamed("strategy.iterations", "strategy.max_trials (n_initial + iterations)")
        group["max_trials"] = group.get("n_initial", 5) + group.pop("iterations")
    return group


def renamed(old: str, new: str) -> None:
    """Warn, once per process, that `old` is now `new`."""
    import warnings

    if old not in _WARNED:
        _WARNED.add(old)
        warnings.warn(Renamed(f"{old} is now {new}; the old name will go"), stacklevel=3)


_WARNED: set[str] = set()


def _group(raw: dict[str, Any], path: str) -> dict[str, Any]:
    group = raw.get(path)
    if not isinstance(group, dict):
        raise ConfigError(f"{path}: missing; choose one with {path}=<option>")
    return group


def _split(group: dict[str, Any], path: str) -> tuple[str, type, dict[str, Any]]:
    group = dict(group)
    name = group.pop("name", None)
    target = group.pop("_target_", None)
    if not isinstance(name, str):
        raise ConfigError(f"{path}.name: missing; every {path} YAML names itself")
    if not isinstance(target, str):
        raise ConfigError(f"{path}._target_: missing; name the class that implements {name!r}")
    return name, _import(target, f"{path}._target_"), group


def _component(group: dict[str, Any], path: str, settings_attr: str) -> Component:
    name, cls, rest = _split(group, path)
    return Component(name, cls, build(getattr(cls, settings_attr), rest, path))


def _model(group: dict[str, Any]) -> ModelConfig:
    name, cls, rest = _split(group, "model")
    cls = cast("type[ModelBuilder]", cls)
    if not isinstance(getattr(cls, "task", None), type):
        raise ConfigError(
            f"model._target_: {cls.__name__} names no task; set its `task` to a "
            "tunelab.tasks class, e.g. Classification"
        )
    _require_implemented(cls.task, f"{cls.__name__}'s task {cls.task.__name__}", "model._target_")
    allowed = {"training", "hparams", "space", "tune", "task"}
    if cls.defines_space:  # a user's build(hp): its import path and fixed `fit` arguments
        allowed |= {"build", "fit"}
    unknown = sorted(set(rest) - allowed)
    if unknown:
        valid = ", ".join(sorted(allowed))
        raise ConfigError(f"model.{unknown[0]}: unknown key; valid keys: {valid}")
    training = build(TrainingSettings, rest.get("training", {}), "model.training")
    fixed = rest.get("hparams", {})
    hparams: Any = build(cls.HParams, fixed, "model.hparams")  # the builder's own dataclass
    space = _tuned(SearchSpace.from_config(rest.get("space") or {}), rest.get("tune"))
    if cls.defines_space:
        cls = cast(Any, cls).configured(rest.get("build"))
        task_settings = {**(rest.get("task") or {}), "fit": rest.get("fit") or {}}
        own: Any = build(cls.task.Settings, task_settings, "model.task")
        return ModelConfig(name, cls, training, hparams, space, own)
    for pname, param in space.params.items():
        if param.inert:
            if hasattr(hparams, pname):
                raise ConfigError(
                    f"model.space.{pname}: inert, but model {name} takes it; "
                    "drop inert: true to tune it"
                )
            continue
        if not hasattr(hparams, pname):
            valid = ", ".join(sorted(vars(hparams)))
            raise ConfigError(f"model.space.{pname}: unknown hyperparameter; valid: {valid}")
        for value in _probe_values(param):
            build(cls.HParams, {**vars(hparams), pname: value}, "model.space")
    task: Any = build(cls.task.Settings, rest.get("task") or {}, "model.task")
    return ModelConfig(name, cls, training, hparams, space, task)


def _stages(raw: Any) -> list[Stage]:
    """A chain's stages: unique names; `factors_from` names an earlier stage that analyses."""
    if not isinstance(raw, list):
        raise ConfigError(f"stages: expected a list of stages, got {raw!r}")
    stages: list[Stage] = []
    for i, item in enumerate(raw):
        stage = build(Stage, item, f"stages[{i}]")
        earlier = {s.name: s for s in stages}
        if stage.name in earlier:
            raise ConfigError(f"stages[{i}].name: {stage.name!r} is used twice")
        source = stage.factors_from
        if source is not None and not (source in earlier and earlier[source].analyse):
            valid = ", ".join(n for n, s in earlier.items() if s.analyse) or "none"
            raise ConfigError(
                f"stages[{i}].factors_from: {source!r} is not an earlier stage "
                f"with analyse: true; valid choices: {valid}"
            )
        stages.append(stage)
    return stages


def _tuned(space: SearchSpace, tune: Any) -> SearchSpace:
    """The declared space narrowed to `model.tune` (null = every declared parameter)."""
    if tune is None:
        return space
    if not isinstance(tune, list):
        raise ConfigError(f"model.tune: expected a list of names or null, got {tune!r}")
    for name in tune:
        if name not in space.params:
            declared = ", ".join(space.names) or "nothing"
            raise ConfigError(
                f"model.tune: {name!r} is not declared in model.space; declared: {declared}"
            )
    return SearchSpace({name: space.params[name] for name in tune})


def _probe_values(param: Param) -> list[Any]:
    """Values that exercise the hyperparameter's type: the bounds or every choice."""
    if param.type == "int":
        return [int(v) for v in param.bounds]
    if param.type == "float":
        return list(param.bounds)
    return param.choices


def _as_dict(container: Any) -> dict[str, Any]:
    if not isinstance(container, dict):
        raise ConfigError(f"the composed config is not a mapping: {container!r}")
    return container


def _import(target: str, path: str) -> type:
    """The class `target` names; refused if it leaves an abstract method unimplemented."""
    module_name, _, attr = target.rpartition(".")
    try:
        import importlib

        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(f"{path}: cannot import {target!r} ({error})") from None
    _require_implemented(cls, target, path)
    return cls


def _require_implemented(cls: Any, name: str, path: str) -> None:
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        raise ConfigError(
            f"{path}: {name} does not implement {', '.join(missing)}; "
            f"define {' and '.join(missing)} in it"
        )


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    return value


def _non_negative(value: Any, key: str) -> int:
    if _int(value, key) < 0:
        raise ConfigError(f"{key}: must be 0 or more, got {value}")
    return value


def _at_least_one(value: Any, key: str) -> int:
    if _int(value, key) < 1:
        raise ConfigError(f"{key}: must be at least 1, got {value}")
    return value


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    return value


def _str(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


register_resolvers()
