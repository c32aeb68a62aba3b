"""The one interface every search strategy implements: ask → (report per epoch) → tell.

The runner loops `while (proposal := strategy.ask()) is not None`, trains the proposal, feeds
each epoch's objective to `report` (a True answer stops the trial as PRUNED) and hands the
outcome to `tell`. It never asks which strategy it holds. Strategies persist whatever they need
to resume under `context.workdir`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from tunelab.objective import Objective
from tunelab.schema import ConfigError
from tunelab.space import SearchSpace


@runtime_checkable
class Shareable(Protocol):
    """Settings of a strategy whose trials workers may share: where its Optuna study lives
    (None: the study folder's SQLite file; a postgresql:// URL: workers on any machine)."""

    storage: str | None


def storage_of(settings: Any) -> str | None:
    """`strategy.storage` of a strategy that has one, else None."""
    return settings.storage if isinstance(settings, Shareable) else None


@dataclass
class StrategyContext:
    """What a strategy may know about its study."""

    space: SearchSpace
    objective: Objective
    seed: int
    workdir: Path  # private to this study; exists
    resume: bool
    epochs: int  # the model's configured training epochs
    shared: bool = False  # other processes run trials of this study too (workers=N)
    joining: bool = False  # this process joins a study another one started and runs
    worker: str = "0"  # this process's worker label (0: the coordinator, or the only process)
    # the model declares its space as it builds (KerasTuner's build(hp)): a proposal may leave
    # values to be drawn when the model asks for them (`Proposal.hp`)
    define_by_run: bool = False
    continue_with: str = "resume=true"  # how its user continues it (`resume=True` in Python)
    name: str = ""  # the strategy's name (its YAML's), which seeds what it draws


@dataclass
class Proposal:
    """One trial to run: tuned values and, for multi-fidelity strategies, its epoch window."""

    trial_id: str
    values: dict[str, Any]
    epochs: int | None = None  # train until this epoch; None = the model's epochs
    initial_epoch: int = 0
    warm_start_from: str | None = None  # trial id whose final weights this trial continues
    tags: dict[str, str] = field(default_factory=dict)  # strategy internals (bracket, round)
    params: dict[str, Any] = field(default_factory=dict)  # extra params (coded levels, order)
    handle: Any = field(default=None, repr=False)  # the strategy's own trial object
    # for a model that defines its space: the strategy's KerasTuner HyperParameters for it (an
    # oracle's trial, Optuna's define-by-run drawer); the runner hands back the one it used
    hp: Any = field(default=None, repr=False)


@dataclass
class Outcome:
    """How a trial ended. `score` is the best objective over its epochs (None if none ran)."""

    status: Literal["COMPLETE", "FAILED", "PRUNED"]
    score: float | None
    epochs_trained: int = 0
    message: str = ""


class Strategy(ABC):
    """Base of all strategies: `ask` for a trial, `report` its epochs, `tell` how it ended.

    A strategy is made once per study with its settings (an instance of its `Settings`
    dataclass, checked by the schema) and a `StrategyContext`; the runner then asks until it
    gets None. To use one of your own, name it in a strategy YAML (`name: every_choice`,
    `_target_: mypackage.EveryChoice`, then its settings) in a folder given with
    `--config-dir`, and run `python -m tunelab strategy=every_choice`.

    Args:
        settings: the strategy's settings, an instance of `Settings`.
        context: the study's search space, objective, seed and private folder.

    Examples:
        A strategy that tries every grid point of the space once, in a seeded order:

        >>> import random
        >>> from dataclasses import dataclass
        >>> from pathlib import Path
        >>> from tunelab.objective import Objective
        >>> from tunelab.space import SearchSpace
        >>> from tunelab.strategies import Outcome, Proposal, Strategy, StrategyContext
        >>> @dataclass
        ... class ShuffledGridSettings:
        ...     points: int = 2  # per numeric parameter
        >>> class ShuffledGrid(Strategy):
        ...     Settings = ShuffledGridSettings
        ...     def __init__(self, settings, context):
        ...         super().__init__(settings, context)
        ...         self.todo = context.space.grid(settings.points)
        ...         random.Random(context.seed).shuffle(self.todo)
        ...         self.best = None
        ...     def ask(self):
        ...         if not self.todo:
        ...             return None
        ...         return Proposal(trial_id=str(len(self.todo)), values=self.todo.pop())
        ...     def tell(self, proposal, outcome):
        ...         if outcome.score is not None and self.context.objective.better(
        ...                 outcome.score, self.best and self.best[1]):
        ...             self.best = (proposal.values, outcome.score)
        >>> space = SearchSpace.from_config({
        ...     "lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
        ...     "units": {"type": "choice", "values": [32, 64]}})
        >>> context = StrategyContext(space=space, objective=Objective("val_accuracy", "max"),
        ...                           seed=0, workdir=Path("."), resume=False, epochs=5)
        >>> strategy = ShuffledGrid(ShuffledGridSettings(), context)
        >>> while (proposal := strategy.ask()) is not None:  # what the runner does
        ...     accuracy = 0.9 - abs(proposal.values["lr"] - 0.01)  # a trial's best epoch
        ...     strategy.tell(proposal, Outcome("COMPLETE", score=accuracy, epochs_trained=5))
        >>> strategy.best
        ({'lr': 0.001, 'units': 64}, 0.891)
    """

    Settings: ClassVar[type]
    keeps_checkpoints: ClassVar[bool] = False  # True: proposals may warm-start from a trial
    parallel: ClassVar[bool] = False  # True: `workers=N` processes may share one study
    in_parallel_use: ClassVar[str] = "strategy=tpe"  # what to run with workers=N instead
    conditional: ClassVar[bool] = False  # True: varies a conditional parameter only where active

    def __init__(self, settings: Any, context: StrategyContext) -> None:
        self.settings = settings
        self.context = context
        if context.space.conditional and not self.conditional:
            refuse_conditional(context.space, type(self).__name__)

    @abstractmethod
    def ask(self) -> Proposal | None:
        """The next trial to run, or None when the study is complete."""

    def report(self, proposal: Proposal, epoch: int, value: float) -> bool:
        """The objective after `epoch`; return True to stop (prune) the trial now."""
        return False

    @abstractmethod
    def tell(self, proposal: Proposal, outcome: Outcome) -> None:
        """Record how the trial ended."""

    def abandoned(self) -> dict[str, str]:
        """Trials another worker started and left (it died), with why; each is run again under
        a new id. Only strategies of shared studies have any."""
        return {}

    def pending_elsewhere(self) -> bool:
        """Whether other workers still run trials of this study (or trials wait to run)."""
        return False

    @property
    def expected_trials(self) -> int | None:
        """Total trials of the whole study when known in advance (for the progress bar)."""
        return None

    def describe(self) -> StudyDesign:
        """What the study run should record about the plan itself (a design matrix, aliases)."""
        return StudyDesign()

    def summary(self, told: Mapping[str, Outcome]) -> StudyDesign:
        """What the study run should record once every trial is told (e.g. a GP's posterior);
        `told`: every trial's outcome by trial id, whichever process or session ran it."""
        return StudyDesign()


def refuse_conditional(space: SearchSpace, strategy: str) -> None:
    """One line naming a conditional parameter that `strategy` would vary in every run, and the
    `space=` entry that declares it unconditionally."""
    name = space.conditional[0]
    param = space.params[name]
    where = " and ".join(f"{c['name']} in {c['values']}" for c in param.conditions or [])
    bare = {k: v for k, v in param.described().items() if k != "conditions"}
    raise ConfigError(
        f"model.space.{name}: active only where {where}, but {strategy} varies every parameter "
        f"in every run; declare it unconditionally with space={{{name!r}: {bare!r}}} (its value "
        "is then unused where inactive), or use strategy=grid, random or tpe"
    )


@dataclass
class StudyDesign:
    params: dict[str, Any] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)  # artifact path -> content
    figures: dict[str, Any] = field(default_factory=dict)  # artifact path -> matplotlib Figure
