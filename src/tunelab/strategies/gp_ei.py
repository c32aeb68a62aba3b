"""Active learning: a Gaussian process (Matern 5/2 + white noise, scikit-learn) chooses each
next trial by expected improvement (EI) over the best objective seen so far.

The space is mapped to the unit cube (log-scaled where `log: true`; a choice by its index).
Candidates come from a grid (`grid_points` per parameter, e.g. the 10 x 10 x 10 grid over
lr x batch x dropout of the CIFAR study) or are optimised continuously: `candidates` random
points of the cube, the `refine` best of which L-BFGS-B then climbs on EI within the cube.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import norm

from tunelab.files import write_atomically
from tunelab.schema import ConfigError
from tunelab.seeding import derive
from tunelab.space import Param
from tunelab.strategies.base import Outcome, Proposal, Strategy, StrategyContext, StudyDesign


@dataclass
class GPEISettings:
    max_trials: int = 20  # all of them: the random ones, then those the GP chooses
    n_initial: int = 5  # random trials before the GP takes over
    xi: float = 0.01  # exploration margin of EI
    grid_points: int | None = None  # candidates on a grid with this many values per parameter
    candidates: int = 2000  # otherwise: this many random points of the unit cube,
    refine: int = 5  # the best of which L-BFGS-B refines on EI (0 = none)

    def check(self, path: str) -> None:
        if self.n_initial < 1 or self.max_trials < self.n_initial:
            raise ConfigError(
                f"{path}: n_initial must be >= 1 and max_trials >= n_initial, got "
                f"n_initial={self.n_initial}, max_trials={self.max_trials}"
            )
        if self.candidates < 1 or self.refine < 0:
            raise ConfigError(f"{path}: candidates must be >= 1 and refine >= 0")


def to_unit(param: Param, value: Any) -> float:
    if param.type in ("float", "int"):
        lo, hi, v = (math.log(x) if param.log else x for x in (*param.bounds, value))
        return (v - lo) / (hi - lo)
    choices = param.choices
    return choices.index(value) / max(1, len(choices) - 1)


def from_unit(param: Param, u: float) -> Any:
    u = min(1.0, max(0.0, float(u)))
    if param.type in ("float", "int"):
        low, high = param.bounds
        lo, hi = (math.log(x) if param.log else x for x in (low, high))
        value = lo + u * (hi - lo)
        value = math.exp(value) if param.log else value
        if param.type == "int":
            step = int(param.step or 1)
            return int(low) + step * round((value - low) / step)
        return value
    choices = param.choices
    return choices[round(u * (len(choices) - 1))]


class GPEI(Strategy):
    """Bayesian optimisation with expected improvement, e.g.::

    python -m tunelab strategy=gp_ei model.tune=[lr,batch_size,dropout] strategy.grid_points=10
    """

    Settings = GPEISettings
    in_parallel_use = "strategy=optuna_gp (Optuna's Gaussian process)"

    def __init__(self, settings: GPEISettings, context: StrategyContext) -> None:
        super().__init__(settings, context)
        self.params = context.space.params
        if not self.params:
            raise ConfigError("model.tune: gp_ei needs at least one parameter to tune")
        self.rng = np.random.default_rng(derive(context.seed, "gp_ei"))
        self.state_file = context.workdir / "gp_ei.json"
        state: dict[str, Any] = (
            json.loads(self.state_file.read_text())
            if (context.resume and self.state_file.exists())
            else {"x": [], "y": [], "told": 0}
        )
        self.x: list[list[float]] = state["x"]  # unit-cube points with an objective
        self.y: list[float] = state["y"]  # objectives, sign-flipped when minimising
        self.told: int = state["told"]  # every finished trial, failed ones included
        self.history: list[dict[str, float]] = state.get("history", [])
        if "rng" in state:  # a resumed study draws what the uninterrupted one would have
            self.rng.bit_generator.state = state["rng"]

    @property
    def expected_trials(self) -> int:
        return self.settings.max_trials

    def ask(self) -> Proposal | None:
        if self.told >= self.expected_trials:
            return None
        names = list(self.params)
        if self.told < self.settings.n_initial or len(self.y) < 2:
            unit = self.rng.random(len(names))
            info: dict[str, Any] = {"gp.phase": "initial"}
        else:
            unit, info = self._most_promising()
        values = {n: from_unit(self.params[n], u) for n, u in zip(names, unit, strict=True)}
        return Proposal(str(self.told), values, params=info)

    def _most_promising(self) -> tuple[np.ndarray, dict[str, Any]]:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        # One length scale per parameter, kept between 1/100 and 100 of the unit cube (as
        # scikit-optimize does): unbounded, a few points fit a length scale of 1e-5, a GP that
        # predicts its mean everywhere and an EI too flat to choose by.
        d = len(self.params)
        matern = Matern(length_scale=np.ones(d), length_scale_bounds=(1e-2, 1e2), nu=2.5)
        kernel = ConstantKernel() * matern + WhiteKernel(noise_level=1e-3)
        gp = GaussianProcessRegressor(
            kernel,
            normalize_y=True,
            n_restarts_optimizer=2,
            random_state=derive(self.context.seed, "gp", self.told),
        )
        with warnings.catch_warnings():  # a noise level at its bound is normal for clean data
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(np.array(self.x), np.array(self.y))
        candidates = self._candidates()
        mean, std = gp.predict(candidates, return_std=True)
        ei = expected_improvement(mean, std, max(self.y), self.settings.xi)
        if not self.settings.grid_points and self.settings.refine:
            starts = candidates[np.argsort(ei)[::-1][: self.settings.refine]]
            candidates = np.vstack([candidates, self._climbed(gp, starts)])
            mean, std = gp.predict(candidates, return_std=True)
            ei = expected_improvement(mean, std, max(self.y), self.settings.xi)
        best = int(np.argmax(ei))
        info = {
            "gp.phase": "ei",
            "gp.ei": float(ei[best]),
            "gp.mean": float(mean[best]),
            "gp.std": float(std[best]),
        }
        return candidates[best], info

    def _climbed(self, gp: Any, starts: np.ndarray) -> np.ndarray:
        """The end points of L-BFGS-B runs maximising EI from `starts`, bounded to the cube."""
        from scipy.optimize import minimize

        def negative_ei(u: np.ndarray) -> float:
            mean, std = gp.predict(u[None, :], return_std=True)
            return -float(expected_improvement(mean, std, max(self.y), self.settings.xi)[0])

        bounds = [(0.0, 1.0)] * starts.shape[1]
        return np.array(
            [minimize(negative_ei, x0, method="L-BFGS-B", bounds=bounds).x for x0 in starts]
        )

    def _candidates(self) -> np.ndarray:
        d = len(self.params)
        if self.settings.grid_points:
            axis = np.linspace(0, 1, self.settings.grid_points)
            return np.array(np.meshgrid(*[axis] * d, indexing="ij")).reshape(d, -1).T
        return self.rng.random((self.settings.candidates, d))

    def tell(self, proposal: Proposal, outcome: Outcome) -> None:
        self.told += 1
        if outcome.score is not None and outcome.status != "FAILED":
            sign = self.context.objective.sign
            self.x.append([to_unit(self.params[n], proposal.values[n]) for n in self.params])
            self.y.append(sign * outcome.score)
            if proposal.params.get("gp.phase") == "ei":
                self.history.append(
                    {
                        "trial": self.told - 1,
                        "observed": sign * outcome.score,
                        **{
                            k[3:]: v
                            for k, v in proposal.params.items()
                            if k in ("gp.mean", "gp.std", "gp.ei")
                        },
                    }
                )
        state = {
            "x": self.x,
            "y": self.y,
            "told": self.told,
            "history": self.history,
            "rng": self.rng.bit_generator.state,
        }
        write_atomically(self.state_file, json.dumps(state))

    def summary(self, told: Mapping[str, Outcome]) -> StudyDesign:
        if not self.history:
            return StudyDesign()
        from tunelab import plots

        return StudyDesign(figures={"gp_ei/posterior.png": plots.gp_posterior(self.history)})


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float, xi: float) -> np.ndarray:
    """EI of maximisation: (μ − best − ξ) Φ(z) + σ φ(z), z = (μ − best − ξ) / σ; 0 where σ = 0."""
    improvement = mean - best - xi
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std > 0, improvement / std, 0.0)
    return np.where(std > 0, improvement * norm.cdf(z) + std * norm.pdf(z), 0.0)
