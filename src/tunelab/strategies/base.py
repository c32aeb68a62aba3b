"""The one interface every search strategy implements: ask → (report per epoch) → tell.

The runner loops `while (proposal := strategy.ask()) is not None`, trains the proposal, feeds
each epoch's objective to `report` (a True answer stops the trial as PRUNED) and hands the
outcome to `tell`. It never asks which strategy it holds. Strategies persist whatever they need
to resume under `context.workdir`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from tunelab.config import Objective
from tunelab.files import write_atomically
from tunelab.schema import ConfigError
from tunelab.seeding import derive
from tunelab.space import SearchSpace

if TYPE_CHECKING:
    from tunelab.strategies.shared_plan import SharedPlan


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
    """Base of all strategies. Subclasses set `Settings` (a dataclass) and implement ask/tell."""

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

    def summary(self) -> StudyDesign:
        """What the study run should record once every trial is told (e.g. a GP's posterior)."""
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


@dataclass
class PlannedTrial:
    values: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)


class FixedPlan(Strategy):
    """A strategy whose trials are all known up front: a grid or a designed experiment.

    Subclasses implement `plan()`. Points run in plan order, or in a seeded random order when
    `settings.randomize` is true; finished points are remembered in the work folder so a resumed
    study runs only the rest. With `workers=N` the points not done wait in a queue that every
    worker takes from (`SharedPlan`), so each runs once.
    """

    parallel = True

    def __init__(self, settings: Any, context: StrategyContext) -> None:
        super().__init__(settings, context)
        self.points = self.plan()
        self.order = list(range(len(self.points)))
        if getattr(settings, "randomize", False):
            np.random.default_rng(derive(context.seed, "run order")).shuffle(self.order)
        self.state_file = context.workdir / "plan_done.json"
        resumed = context.resume and self.state_file.exists()
        self.done: set[int] = set(json.loads(self.state_file.read_text())) if resumed else set()
        self.queue: SharedPlan | None = None
        if context.shared:
            from tunelab.strategies.shared_plan import SharedPlan

            todo = [index for index in self.order if index not in self.done]
            self.queue = SharedPlan(context.workdir, todo, context.joining)

    @abstractmethod
    def plan(self) -> list[PlannedTrial]:
        """Every trial of the study, in standard order."""

    def ask(self) -> Proposal | None:
        if self.queue is not None:
            taken = self.queue.take()
            return None if taken is None else self._proposal(*taken)
        return next((self._proposal(i) for i in self.order if i not in self.done), None)

    def _proposal(self, index: int, handle: Any = None) -> Proposal:
        point = self.points[index]
        params = {**point.params, "standard_order": index, "run_order": self.order.index(index)}
        return Proposal(self._trial_id(index), point.values, params=params, handle=handle)

    def _trial_id(self, index: int) -> str:
        return f"{index:0{len(str(len(self.points)))}d}"

    def tell(self, proposal: Proposal, outcome: Outcome) -> None:
        index = int(proposal.trial_id)
        if self.queue is None:
            self.done.add(index)
            write_atomically(self.state_file, json.dumps(sorted(self.done)))
            return
        score = outcome.score if outcome.status == "COMPLETE" else None
        self.queue.finish(index, proposal.handle, score)
        with self.queue.lock():  # every worker's points
            done = json.loads(self.state_file.read_text()) if self.state_file.exists() else []
            self.done = {*done, index}
            write_atomically(self.state_file, json.dumps(sorted(self.done)))

    def abandoned(self) -> dict[str, str]:
        if self.queue is None:
            return {}
        return {self._trial_id(i): why for i, why in self.queue.abandoned().items()}

    def pending_elsewhere(self) -> bool:
        return self.queue is not None and self.queue.pending_elsewhere()

    @property
    def expected_trials(self) -> int:
        return len(self.points)
