"""KerasTuner's Bayesian oracle, proposing exactly what KerasTuner's own proposes, faster.

To propose one trial, `BayesianOptimizationOracle.populate_space` fits a Gaussian process and
climbs the upper confidence bound `mu - beta * sigma` by L-BFGS-B from 50 random starts. It
gives scipy no gradient, so scipy estimates one by forward differences: d + 1 predictions of
one row each per step, every one through sklearn's and scipy's input checks and scipy's
generic finite-difference machinery. Here the same steps are taken with less around them:

- `QuickGPR.predict` does sklearn's posterior arithmetic for one-target fits without the
  checks, and `QuickGPR.predict_rows` predicts a point and its d neighbours with one covariance
  call, each row bit for bit what `predict` gives it alone;
- the oracle hands L-BFGS-B the value and the very gradient scipy would compute (2-point
  differences, absolute step 1e-8, stepping back at the upper bound), so L-BFGS-B takes the
  same path and the proposals are KerasTuner's, bit for bit (tested).

What it saves is in docs/benchmarks.md ("Measured while building").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize
from scipy.linalg import get_lapack_funcs
from scipy.spatial.distance import cdist
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import Matern

Covariance = Callable[[np.ndarray], np.ndarray]  # rows -> k(rows, training points)

UCB_STARTS = 50  # KerasTuner 1.4.8's populate_space: L-BFGS-B starts per proposal
STEP = 1e-8  # L-BFGS-B's default absolute finite-difference step (`eps`)
MAXFUN = 15000  # L-BFGS-B's default budget of function evaluations


class QuickGPR(GaussianProcessRegressor):
    """sklearn's regressor; a fitted one predicts mean and std of a float array unchecked."""

    def fit(self, X: Any, y: Any) -> QuickGPR:
        super().fit(X, y)
        self._covariance = self._covariance_with_training_points()
        lower = self.L_  # scipy's solve_triangular(L_, b, lower=True) makes the same call
        self._trtrs = get_lapack_funcs(("trtrs",), (lower, np.empty((1, 1))))[0]
        self._trtrs_args = (lower, 1, 0) if lower.flags.f_contiguous else (lower.T, 0, 1)
        return self

    def _covariance_with_training_points(self) -> Covariance:
        kernel = self.kernel_
        if type(kernel) is Matern and kernel.nu == 2.5 and np.ndim(kernel.length_scale) == 0:
            # Matern.__call__(X, Y) for nu=2.5, step for step, Y / length_scale done once
            length_scale = np.squeeze(kernel.length_scale).astype(float)
            scaled_train = self.X_train_ / length_scale

            def matern(X: np.ndarray) -> np.ndarray:
                K = cdist(X / length_scale, scaled_train, metric="euclidean") * math.sqrt(5)
                return (1.0 + K + K**2 / 3.0) * np.exp(-K)

            return matern
        return lambda X: kernel(X, self.X_train_)

    def _quick(self, X: Any) -> bool:
        fitted_on_one_target = hasattr(self, "_covariance") and np.ndim(self._y_train_std) == 0
        return (
            fitted_on_one_target
            and isinstance(X, np.ndarray)
            and X.ndim == 2
            and X.dtype == np.float64
        )

    def predict(self, X: Any, return_std: bool = False, return_cov: bool = False) -> Any:
        if not (return_std and not return_cov and self._quick(X)):
            return super().predict(X, return_std=return_std, return_cov=return_cov)
        # sklearn 1.9's posterior branch for return_std=True with one target, step for step
        k_trans = self._covariance(X)
        mean = self._y_train_std * (k_trans @ self.alpha_) + self._y_train_mean
        lower, is_lower, transposed = self._trtrs_args
        v, info = self._trtrs(lower, k_trans.T, lower=is_lower, trans=transposed)
        if info != 0:
            return super().predict(X, return_std=True)  # let scipy raise its own error
        var = self.kernel_.diag(X).copy()
        var -= np.einsum("ij,ji->i", v.T, v)
        var[var < 0] = 0.0  # sklearn warns, then does the same
        return mean, np.sqrt(var * self._y_train_std**2)

    def predict_rows(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of every row of X (float64, 2-D), each exactly what `predict` returns
        for that row alone. Covariances and the prior variance are elementwise, so they are
        computed for all rows at once; the matrix products run row by row, because BLAS and
        LAPACK round a batch differently from a single row."""
        if not self._quick(X):
            rows = [self.predict(X[i : i + 1], return_std=True) for i in range(len(X))]
            return np.array([m[0] for m, _ in rows]), np.array([s[0] for _, s in rows])
        k_trans, prior = self._covariance(X), self.kernel_.diag(X)
        lower, is_lower, transposed = self._trtrs_args
        scale, std_y, mean_y = self._y_train_std**2, self._y_train_std, self._y_train_mean
        means, stds = np.empty(len(X)), np.empty(len(X))
        for i in range(len(X)):
            k = k_trans[i : i + 1]
            v, info = self._trtrs(lower, k.T, lower=is_lower, trans=transposed)
            if info != 0:
                means[i : i + 1], stds[i : i + 1] = super().predict(X[i : i + 1], return_std=True)
                continue
            means[i] = std_y * (k @ self.alpha_)[0] + mean_y
            var = prior[i] - np.einsum("ij,ji->i", v.T, v)[0]
            stds[i] = math.sqrt(max(var, 0.0) * scale)
        return means, stds


def quick_bayesian_oracle(oracle_cls: type) -> type:
    """`oracle_cls` (a `BayesianOptimizationOracle`) fitting a `QuickGPR` with the same settings
    and climbing the upper confidence bound with the gradient scipy would estimate."""

    class QuickBayesianOracle(oracle_cls):
        def _make_gpr(self) -> QuickGPR:
            gpr = super()._make_gpr()
            return QuickGPR(**gpr.get_params(deep=False))

        def populate_space(self, trial_id: str) -> dict[str, Any]:
            """KerasTuner 1.4.8's `populate_space`, step for step, but for the gradient."""
            completed = [t for t in self.trials.values() if t.status == "COMPLETED"]
            dimensions = len(self.hyperparameters.space)
            if len(completed) < (self.num_initial_points or max(3 * dimensions, 3)):
                return self._random_populate_space()
            x, y = self._vectorize_trials()
            self.gpr.fit(np.nan_to_num(x, posinf=0, neginf=0), np.nan_to_num(y, posinf=0, neginf=0))
            bounds = self._get_hp_bounds()
            starts = self._random_state.uniform(
                bounds[:, 0], bounds[:, 1], size=(UCB_STARTS, bounds.shape[0])
            )
            # with finite differences scipy counts d + 1 evaluations per value and gradient
            options = {"maxfun": MAXFUN // (bounds.shape[0] + 1)}
            best_value, best_x = float("inf"), None
            for start in starts:
                result = scipy.optimize.minimize(
                    self._ucb_and_gradient,
                    x0=start,
                    jac=True,
                    bounds=bounds,
                    method="L-BFGS-B",
                    options=options,
                )
                if result.fun < best_value:
                    best_value, best_x = result.fun, result.x
            return {"status": "RUNNING", "values": self._vector_to_values(best_x)}

        def _ucb_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
            """`mu - beta * sigma` at x (in the unit cube) and its forward-difference gradient
            as scipy's `approx_derivative` takes it for L-BFGS-B: step 1e-8, negated where it
            would leave the cube, divided by the step as actually represented."""
            step = np.where(x + STEP > 1.0, -STEP, STEP)
            points = np.tile(x, (x.size + 1, 1))
            points[np.arange(1, x.size + 1), np.arange(x.size)] = x + step
            mean, std = self.gpr.predict_rows(points)
            ucb = mean - self.beta * std
            return float(ucb[0]), (ucb[1:] - ucb[0]) / ((x + step) - x)

    QuickBayesianOracle.__name__ = oracle_cls.__name__
    return QuickBayesianOracle
