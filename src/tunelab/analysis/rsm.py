"""Response surfaces: a full quadratic model (statsmodels OLS) in coded units, its fit, lack of
fit from replicated points, and the stationary point with its nature."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats


@dataclass
class QuadraticFit:
    coefficients: pd.DataFrame  # coded units: estimate, std err, t, p
    natural_coefficients: pd.Series  # the same model fitted on natural units (log10 if log)
    r2: float
    adj_r2: float
    lack_of_fit: dict[str, float] | None  # F and p, when replicated points give pure error
    stationary_point: dict[str, float]  # coded units
    nature: str  # "maximum", "minimum", "saddle point" or none
    eigenvalues: list[float]
    model: object  # the fitted statsmodels results, for predictions


def formula(names: list[str]) -> str:
    linear = list(names)
    interactions = [f"{a}:{b}" for a, b in itertools.combinations(names, 2)]
    squares = [f"I({n} ** 2)" for n in names]
    return "y ~ " + " + ".join(linear + interactions + squares)


def fit_quadratic(coded: pd.DataFrame, natural: pd.DataFrame, y: np.ndarray) -> QuadraticFit:
    """`coded` and `natural`: one column per factor (same names); `y`: the responses."""
    names = list(coded.columns)
    model = smf.ols(formula(names), coded.assign(y=y)).fit()
    natural_model = smf.ols(formula(names), natural.assign(y=y)).fit()
    table = pd.DataFrame(
        {"estimate": model.params, "std_err": model.bse, "t": model.tvalues, "p": model.pvalues}
    )
    b = np.array([model.params[n] for n in names])
    B = np.zeros((len(names), len(names)))
    for i, n in enumerate(names):
        B[i, i] = model.params[f"I({n} ** 2)"]
    for (i, a), (j, c) in itertools.combinations(enumerate(names), 2):
        B[i, j] = B[j, i] = model.params[f"{a}:{c}"] / 2
    eigenvalues = np.linalg.eigvalsh(B)
    singular = np.linalg.matrix_rank(B) < len(names)
    stationary = np.full(len(names), np.nan) if singular else -0.5 * np.linalg.solve(B, b)
    if singular:
        nature = "none (a ridge: the quadratic part is singular)"
    elif np.all(eigenvalues < 0):
        nature = "maximum"
    elif np.all(eigenvalues > 0):
        nature = "minimum"
    else:
        nature = "saddle point"
    return QuadraticFit(
        coefficients=table,
        natural_coefficients=natural_model.params,
        r2=float(model.rsquared),
        adj_r2=float(model.rsquared_adj),
        lack_of_fit=lack_of_fit(coded, y, model),
        stationary_point=dict(zip(names, stationary.tolist(), strict=True)),
        nature=nature,
        eigenvalues=[float(e) for e in eigenvalues],
        model=model,
    )


def lack_of_fit(coded: pd.DataFrame, y: np.ndarray, model) -> dict[str, float] | None:
    """Residual SS split into pure error (within replicated points) and lack of fit."""
    groups = pd.Series(y).groupby([repr(tuple(r)) for r in coded.to_numpy()])
    pure_ss = float(sum(((g - g.mean()) ** 2).sum() for _, g in groups))
    pure_df = int(sum(len(g) - 1 for _, g in groups))
    lof_df = int(model.df_resid) - pure_df
    if pure_df == 0 or lof_df <= 0 or pure_ss == 0:
        return None
    lof_ss = float(model.ssr) - pure_ss
    f = (lof_ss / lof_df) / (pure_ss / pure_df)
    return {
        "F": f,
        "p": float(stats.f.sf(f, lof_df, pure_df)),
        "df_lack_of_fit": lof_df,
        "df_pure_error": pure_df,
    }
