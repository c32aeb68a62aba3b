"""Factorial analysis of runs: ANOVA (statsmodels), effects of two-level factors, Lenth's
pseudo standard error for unreplicated designs, and a one-way ANOVA per factor (scipy)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats

from tunelab.schema import ConfigError


@dataclass
class FactorialResult:
    formula: str
    anova: pd.DataFrame  # statsmodels anova_lm; F and p are NaN when no residual df is left
    effects: pd.DataFrame | None  # two-level designs: effect = 2 x coefficient on ±1 codes
    lenth: dict[str, float] | None  # unreplicated two-level designs: PSE and margin of error
    one_way: pd.DataFrame  # per factor: scipy.stats.f_oneway across its levels


def tidy(frame: pd.DataFrame, factors: list[str], response: str) -> pd.DataFrame:
    """The factor and response columns, renamed to plain names, checked."""
    columns = {_column(frame, f): f for f in factors}
    columns[_column(frame, response, prefer="metrics.")] = response
    data = frame[list(columns)].rename(columns=columns)
    bad = data[pd.to_numeric(data[response], errors="coerce").isna()]
    if len(bad):
        run = frame.loc[bad.index[0], "run_id"] if "run_id" in frame else bad.index[0]
        raise ConfigError(f"--response: {response} is missing or not numeric in run {run}")
    data[response] = data[response].astype(float)
    for factor in factors:
        if data[factor].nunique() < 2:
            raise ConfigError(f"--factors: {factor} has one level only ({data[factor].iloc[0]})")
    return data


def _column(frame: pd.DataFrame, name: str, prefer: str = "params.") -> str:
    for prefix in ("", prefer, "params.", "metrics.", "tags."):
        if prefix + name in frame.columns:
            return prefix + name
    known = sorted(c.split(".", 1)[1] for c in frame.columns if "." in c)
    raise ConfigError(
        f"{name!r} is neither a param, a metric nor a tag of these runs; known: {', '.join(known)}"
    )


def terms(factors: list[str], order: int, wrap: str = "C({})") -> list[str]:
    """Main effects and interactions up to `order`, e.g. C(a), C(b), C(a):C(b)."""
    return [
        ":".join(wrap.format(f) for f in combo)
        for size in range(1, order + 1)
        for combo in itertools.combinations(factors, size)
    ]


def analyse(
    data: pd.DataFrame, factors: list[str], response: str, order: int = 2, typ: int = 2
) -> FactorialResult:
    """OLS with main effects and interactions up to `order`, then `anova_lm(typ=typ)`.

    Factors are categorical, except in a two-level design with centre points (coded ±1, and 0
    for every factor at once): there they are the numeric codes, and a `curvature` term (1 at
    the centre points) tests the centre against the corners, as Montgomery (§ 6.8) does.
    """
    safe, data = _safe_names(data, factors, response)
    centre = _centre_points(data, list(safe))
    if centre is None:
        wrap = "C({}, Sum)" if typ == 3 else "C({})"  # type III needs sum-to-zero contrasts
        formula = "y ~ " + " + ".join(terms(list(safe), order, wrap))
    else:
        wrap = "{}"
        data = data.assign(curvature=centre.astype(float))
        formula = "y ~ " + " + ".join(terms(list(safe), order, wrap)) + " + curvature"
    model = smf.ols(formula, data=data).fit()
    if model.df_resid > 0:
        anova = sm.stats.anova_lm(model, typ=typ)
    else:  # saturated: sums of squares only (sequential; equal to type II when orthogonal)
        with np.errstate(divide="ignore", invalid="ignore"):
            anova = sm.stats.anova_lm(model, typ=1)
        anova[["F", "PR(>F)"]] = np.nan  # no residual: no F test (see Lenth's PSE instead)
    anova = _relabel(anova, safe, wrap)
    effects = lenth = None
    corners = data if centre is None else data[~centre]
    if all(corners[f].nunique() == 2 for f in safe):
        effects = _relabel(two_level_effects(corners, list(safe), "y", order), safe, "{}")
        if model.df_resid == 0:
            lenth = lenth_pse(effects["effect"].to_numpy())
            effects["significant"] = effects["effect"].abs() > lenth["margin_of_error"]
    one_way = pd.DataFrame(
        [(name, *_one_way(data, f, "y")) for f, name in safe.items()], columns=["factor", "F", "p"]
    ).set_index("factor")
    readable = f"{response} ~ " + " + ".join(terms(factors, order, "{}"))
    return FactorialResult(readable, anova, effects, lenth, one_way)


def ranked_factors(result: FactorialResult, factors: list[str]) -> list[str]:
    """Factors by the significance of their main effect: ANOVA p-value, or where the design is
    saturated (no p-values) the sum of squares, largest first."""
    main = result.anova.loc[factors]
    keys = main.assign(p=main["PR(>F)"].fillna(np.inf), ss=-main["sum_sq"])
    return list(keys.sort_values(["p", "ss"]).index)


def _centre_points(data: pd.DataFrame, factors: list[str]) -> pd.Series | None:
    """Which runs are centre points, if the factors are a two-level design's codes (±1) with
    centre points (0 for every factor); else None."""
    codes = data[factors].apply(pd.to_numeric, errors="coerce")
    centre = (codes == 0).all(axis=1)
    corners = codes[~centre]
    if not centre.any() or corners.empty or not corners.isin([-1, 1]).all().all():
        return None
    return centre


def _safe_names(
    data: pd.DataFrame, factors: list[str], response: str
) -> tuple[dict[str, str], pd.DataFrame]:
    """Formula-safe column names (x0, x1, …, y): factor names such as `C` or `coded.lr` are not."""
    safe = {f"x{i}": name for i, name in enumerate(factors)}
    renamed = data.rename(columns={name: key for key, name in safe.items()} | {response: "y"})
    return safe, renamed


def _relabel(table: pd.DataFrame, safe: dict[str, str], wrap: str) -> pd.DataFrame:
    labels = {}
    for term in table.index:
        parts = term.split(":")
        names = [next((n for k, n in safe.items() if wrap.format(k) == p), p) for p in parts]
        labels[term] = ":".join(names)
    return table.rename(index=labels)


def two_level_effects(
    data: pd.DataFrame, factors: list[str], response: str, order: int
) -> pd.DataFrame:
    """Effects (high minus low mean) of main effects and interactions, from OLS on ±1 codes;
    the lower of a factor's two values is coded −1."""
    coded = pd.DataFrame(
        {f: np.where(data[f] == sorted(data[f].unique())[0], -1.0, 1.0) for f in factors}
    )
    coded[response] = data[response].to_numpy()
    model = smf.ols(f"{response} ~ " + " + ".join(terms(factors, order, "{}")), coded).fit()
    effects = 2 * model.params.drop("Intercept")
    return pd.DataFrame({"effect": effects, "coefficient": model.params.drop("Intercept")})


def lenth_pse(effects: np.ndarray) -> dict[str, float]:
    """Lenth (1989): PSE = 1.5 median(|e| : |e| < 2.5 s0), s0 = 1.5 median|e|; margin of error
    t(0.975, m/3) x PSE."""
    absolute = np.abs(effects)
    s0 = 1.5 * np.median(absolute)
    pse = 1.5 * np.median(absolute[absolute < 2.5 * s0])
    margin = stats.t.ppf(0.975, len(effects) / 3) * pse
    return {"s0": float(s0), "pse": float(pse), "margin_of_error": float(margin)}


def _one_way(data: pd.DataFrame, factor: str, response: str) -> tuple[float, float]:
    groups = [g[response].to_numpy() for _, g in data.groupby(factor)]
    result = stats.f_oneway(*groups)
    return float(result.statistic), float(result.pvalue)
