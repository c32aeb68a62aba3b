"""Figures a person would rather look at than read: each function returns a matplotlib Figure.

They use matplotlib's object API, not pyplot, so they can be drawn off the main thread.
"""

from __future__ import annotations

import itertools
import textwrap
from typing import Any

import numpy as np
from matplotlib.figure import Figure

MAX_POINTS = 5_000  # weights drawn per layer in a violin (a random subset of larger layers)
DPI = 80  # enough for a 10-class confusion matrix; every trial draws three figures
# Trial figures get fixed margins: `tight_layout` draws a figure twice, and the artifact worker
# shares the cores with training (docs/benchmarks.md, "Measured while building").


def confusion_matrix(counts: np.ndarray, class_names: list[str]) -> Figure:
    """Row-normalised confusion matrix (each true class sums to 1), counts in the cells."""
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros_like(counts, dtype=float), where=rows > 0)
    size = max(4.0, 0.5 * len(class_names) + 2)
    fig = Figure(figsize=(size, size), dpi=DPI)
    ax = fig.subplots()
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i, j in np.ndindex(counts.shape):
        colour = "white" if normalised[i, j] > 0.5 else "black"
        ax.text(j, i, f"{normalised[i, j]:.2f}", ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title("Confusion matrix (row-normalised)")
    label = 6.5 * max(map(len, class_names), default=1)  # pixels of the longest class name
    pixels = size * DPI
    fig.subplots_adjust(
        left=(36 + label) / pixels,
        bottom=(40 + 0.71 * label) / pixels,
        right=1 - 40 / pixels,
        top=1 - 28 / pixels,
    )
    return fig


def learning_curves(history: list[dict[str, float]], panels: dict[str, list[str]]) -> Figure:
    """One panel per entry of `panels` (title -> metrics), each metric per epoch; validation
    metrics dashed. Metrics logged only on some epochs show as points."""
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(5 * len(panels), 4), dpi=DPI)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (title, metrics) in zip(axes, panels.items(), strict=True):
        for metric in metrics:
            values = [h.get(metric, np.nan) for h in history]
            style = "--" if metric.startswith("val_") else "-"
            ax.plot(epochs, values, style, marker="o", label=metric)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.subplots_adjust(left=0.12 / len(panels), right=0.98, bottom=0.13, top=0.92, wspace=0.18)
    return fig


def class_counts(counts: np.ndarray, class_names: list[str]) -> Figure:
    """How many generated images the classifier assigns to each class; the dashed line is an
    even spread. A mode-collapsed generator shows as a few tall bars."""
    fig = Figure(figsize=(6, 3.5), dpi=DPI)
    ax = fig.subplots()
    ax.bar(range(len(class_names)), counts, color="tab:blue")
    ax.axhline(counts.sum() / len(class_names), ls="--", color="tab:grey", label="even")
    ax.set_xticks(range(len(class_names)), class_names)
    ax.set_xlabel("class (as the feature extractor sees it)")
    ax.set_ylabel("generated images")
    ax.set_title(f"Classes of {int(counts.sum())} generated images")
    ax.legend()
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.16, top=0.9)
    return fig


def weight_distributions(
    before: dict[str, np.ndarray], after: dict[str, np.ndarray], seed: int = 0
) -> Figure:
    """One violin pair per layer: the weights before training next to after."""
    rng = np.random.default_rng(seed)
    before, after = subsample_weights(before, seed), subsample_weights(after, seed)
    layers = list(after)
    fig = Figure(figsize=(max(6.0, 1.6 * len(layers)), 4), dpi=DPI)
    ax = fig.subplots()
    for offset, snapshot, colour in ((-0.2, before, "tab:grey"), (0.2, after, "tab:blue")):
        data = [_drawable(snapshot[name], rng) for name in layers]
        parts = ax.violinplot(
            data, positions=np.arange(len(layers)) + offset, widths=0.35, showmedians=True
        )
        for body in parts["bodies"]:  # type: ignore[attr-defined]  # PolyCollections
            body.set_facecolor(colour)
            body.set_alpha(0.6)
    ax.set_xticks(range(len(layers)), layers, rotation=30, ha="right")
    ax.set_ylabel("weight value")
    ax.set_title("Weights per layer: before (grey) and after (blue) training")
    ax.grid(axis="y", alpha=0.3)
    label_height = 26 + 2.5 * max(map(len, layers), default=0)  # pixels, names slanted 30°
    fig.subplots_adjust(left=0.12, right=0.98, top=0.92, bottom=min(0.5, label_height / (4 * DPI)))
    return fig


def best_so_far(trials: list[dict[str, Any]], objective: str) -> Figure:
    """Best objective so far against trial index and against cumulative epochs."""
    fig = Figure(figsize=(10, 4), dpi=DPI)
    axes = fig.subplots(1, 2)
    for ax, x_key, label in zip(
        axes, ("trial_index", "cumulative_epochs"), ("trial", "cumulative epochs"), strict=True
    ):
        xs = [t[x_key] for t in trials]
        ax.plot(xs, [t["score"] for t in trials], "o", alpha=0.4, label="trial")
        ax.step(xs, [t["best_so_far"] for t in trials], where="post", label="best so far")
        ax.set_xlabel(label)
        ax.set_ylabel(objective)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def subsample_weights(snapshot: dict[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """At most MAX_POINTS weights per layer: all a violin needs, and cheap to send around."""
    rng = np.random.default_rng(seed)
    return {
        name: values if len(values) <= MAX_POINTS else rng.choice(values, MAX_POINTS, replace=False)
        for name, values in snapshot.items()
    }


def _drawable(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if np.ptp(values) == 0:  # a constant layer (e.g. zero biases) has no density to draw
        values = values + rng.normal(0, 1e-6, len(values))
    return values


def half_normal(effects: Any, margin_of_error: float | None = None) -> Figure:
    """|effect| against half-normal quantiles, labelled; Lenth's margin of error if given."""
    from scipy import stats

    ordered = effects.abs().sort_values()
    m = len(ordered)
    quantiles = stats.halfnorm.ppf((np.arange(1, m + 1) - 0.5) / m)
    fig = Figure(figsize=(6, 5), dpi=DPI)
    ax = fig.subplots()
    ax.plot(ordered.to_numpy(), quantiles, "o")
    for value, q, name in zip(ordered.to_numpy(), quantiles, ordered.index, strict=True):
        ax.annotate(name, (value, q), textcoords="offset points", xytext=(4, 2), fontsize=8)
    if margin_of_error is not None:
        ax.axvline(margin_of_error, ls="--", color="tab:red", label="Lenth margin of error")
        ax.legend()
    ax.set_xlabel("|effect|")
    ax.set_ylabel("half-normal quantile")
    ax.set_title("Half-normal plot of effects")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def main_effects(data: Any, factors: list[str], response: str) -> Figure:
    """Mean response at each level of each factor."""
    fig = Figure(figsize=(3 * len(factors), 3.5), dpi=DPI)
    axes = np.atleast_1d(fig.subplots(1, len(factors), sharey=True))
    for ax, factor in zip(axes, factors, strict=True):
        means = data.groupby(factor)[response].mean()
        ax.plot([str(v) for v in means.index], means.to_numpy(), "o-")
        ax.set_xlabel(factor)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"mean {response}")
    fig.suptitle("Main effects")
    fig.tight_layout()
    return fig


def interactions(data: Any, factors: list[str], response: str) -> Figure:
    """Two-factor interaction plots: mean response against one factor's levels, a line per level
    of the other (non-parallel lines = an interaction), for every pair of factors."""
    pairs = list(itertools.combinations(factors, 2))
    columns = min(4, len(pairs))
    rows = -(-len(pairs) // columns)
    fig = Figure(figsize=(3.2 * columns, 2.8 * rows), dpi=DPI)
    axes = np.atleast_1d(fig.subplots(rows, columns, sharey=True, squeeze=False)).ravel()
    for ax, (a, b) in zip(axes, pairs, strict=False):
        means = data.groupby([b, a])[response].mean().unstack(a)
        for level, row in means.iterrows():
            ax.plot([str(v) for v in row.index], row.to_numpy(), "o-", label=f"{b}={level}")
        ax.set_xlabel(a)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[len(pairs) :]:
        ax.set_visible(False)
    fig.suptitle(f"Interactions: mean {response}")
    fig.tight_layout()
    return fig


def strategy_boxes(table: Any, response: str, task: str = "") -> Figure:
    """Best objective of each study, one box per strategy, the studies as points."""
    names = sorted(table["strategy"].unique())
    data = [table.loc[table["strategy"] == n, "best"].to_numpy() for n in names]
    fig = Figure(figsize=(max(5.0, 1.5 * len(names)), 4), dpi=DPI)
    ax = fig.subplots()
    ax.boxplot(data, tick_labels=names)
    for i, values in enumerate(data, start=1):
        ax.plot(np.full(len(values), i), values, "o", alpha=0.5, color="tab:blue")
    ax.set_ylabel(response)
    ax.set_title(f"Best objective per study {task}".strip())
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def best_so_far_bands(
    curves: dict[str, Any], response: str, task: str = "", axis: str = "cumulative epochs"
) -> Figure:
    """Median best-so-far against a budget axis per strategy, with the IQR as a band."""
    fig = Figure(figsize=(7, 4.5), dpi=DPI)
    ax = fig.subplots()
    for strategy, curve in sorted(curves.items()):
        median = curve.median(axis=1)
        line = ax.plot(curve.index, median, label=strategy)[0]
        ax.fill_between(
            curve.index,
            curve.quantile(0.25, axis=1),
            curve.quantile(0.75, axis=1),
            color=line.get_color(),
            alpha=0.2,
        )
    ax.set_xlabel(axis)
    ax.set_ylabel(f"{response.removeprefix('best_')}, best so far")
    ax.set_title(f"Anytime performance {task} (median and IQR over repetitions)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def critical_difference(average_ranks: Any, p_values: Any, cd: float) -> Figure:
    """Demšar's critical-difference diagram: average ranks over tasks (1 = best); strategies
    that Nemenyi's test cannot tell apart are joined by a bar."""
    import scikit_posthocs

    fig = Figure(figsize=(7, 1.2 + 0.35 * len(average_ranks)), dpi=DPI)
    ax = fig.subplots()
    scikit_posthocs.critical_difference_diagram(average_ranks, p_values, cd=cd, ax=ax)
    ax.set_title(f"Average rank over tasks (Nemenyi CD = {cd:.2f})", pad=28)
    fig.tight_layout()
    return fig


def cross_judgement(table: Any, what: str = "share called real") -> Figure:
    """A heatmap: rows are discriminators, columns the images they judged, values in [0, 1]."""
    fig = Figure(figsize=(1.3 * table.shape[1] + 3, 0.8 * table.shape[0] + 2), dpi=DPI)
    ax = fig.subplots()
    image = ax.imshow(table.to_numpy(dtype=float), cmap="RdYlGn", vmin=0, vmax=1)
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(table.shape[0]), [str(i) for i in table.index])
    ax.set_xlabel("images from")
    ax.set_ylabel("discriminator of")
    for (i, j), value in np.ndenumerate(table.to_numpy(dtype=float)):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(f"Cross-discriminator evaluation: {what}")
    fig.tight_layout()
    return fig


def gp_posterior(history: list[dict[str, float]]) -> Figure:
    """The GP's prediction (mean ± 2 sd) at each point it chose, the value then observed, and the
    expected improvement, over the GP-driven trials."""
    trials = [h["trial"] for h in history]
    mean = np.array([h["mean"] for h in history])
    std = np.array([h["std"] for h in history])
    fig = Figure(figsize=(8, 6), dpi=DPI)
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.errorbar(trials, mean, yerr=2 * std, fmt="o", capsize=3, label="GP mean ± 2 sd")
    top.plot(trials, [h["observed"] for h in history], "x", color="tab:red", label="observed")
    top.set_ylabel("objective (maximised)")
    top.legend()
    top.grid(alpha=0.3)
    bottom.bar(trials, [h["ei"] for h in history], color="tab:green")
    bottom.set_ylabel("expected improvement")
    bottom.set_xlabel("trial")
    bottom.grid(alpha=0.3)
    fig.suptitle("GP posterior at each chosen point")
    fig.tight_layout()
    return fig


def response_surface(model: Any, names: list[str], a: str, b: str) -> Figure:
    """Contour and surface of a fitted quadratic over factors a and b (coded units), the
    other factors at their centre."""
    import pandas as pd

    axis = np.linspace(-1.5, 1.5, 41)
    ga, gb = np.meshgrid(axis, axis)
    grid = pd.DataFrame({n: np.zeros(ga.size) for n in names})
    grid[a], grid[b] = ga.ravel(), gb.ravel()
    z = np.asarray(model.predict(grid)).reshape(ga.shape)
    fig = Figure(figsize=(11, 4.5), dpi=DPI)
    left = fig.add_subplot(1, 2, 1)
    contour = left.contourf(ga, gb, z, levels=15, cmap="viridis")
    fig.colorbar(contour, ax=left)
    left.set_xlabel(f"{a} (coded)")
    left.set_ylabel(f"{b} (coded)")
    right = fig.add_subplot(1, 2, 2, projection="3d")
    right.plot_surface(ga, gb, z, cmap="viridis")
    right.set_xlabel(a)
    right.set_ylabel(b)
    fig.suptitle(f"Fitted response surface: {a} x {b}")
    fig.tight_layout()
    return fig


def guidance_curve(rows: list[dict[str, float]]) -> Figure:
    """FID, guided-class accuracy and diversity against the guidance weight w."""
    w = [r["guidance_weight"] for r in rows]
    panels = (
        ("fid", "FID (lower is better)"),
        ("guided_class_accuracy", "guided-class accuracy"),
        ("within_class_spread", "within-class spread (diversity)"),
    )
    fig = Figure(figsize=(4 * len(panels), 3.4), dpi=DPI)
    for ax, (key, title) in zip(fig.subplots(1, len(panels)), panels, strict=True):
        ax.plot(w, [r[key] for r in rows], marker="o")
        ax.set(title=title, xlabel="guidance weight w")
        ax.set_xscale("symlog", linthresh=0.5, linscale=0.5)
        ax.set_xticks(w, [f"{x:g}" for x in w], minor=False)
        ax.minorticks_off()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def stages(table: Any, response: str) -> Figure:
    """A chain's best `response` per stage (bars), and the reproduced study's claims (dots)."""
    fig = Figure(figsize=(1.6 * len(table) + 2.5, 3.6), dpi=DPI)
    ax = fig.subplots()
    x = np.arange(len(table))
    ax.bar(x, table[response], color="tab:blue", alpha=0.7, label="measured")
    if "claimed" in table and table["claimed"].notna().any():
        ax.plot(x, table["claimed"], "o", color="tab:red", label="claimed by the study")
    ax.set_xticks(x, table.index)
    ax.set(ylabel=response, title="best per stage of the chain")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def ours_and_reference(
    ours: dict[str, float],
    reference: dict[str, float],
    metric: str,
    title: str,
    per_seed: dict[str, list[float]] | None = None,
) -> Figure:
    """A reproduced part: our figure per label (bars: the mean over seeds; black dots: each
    seed, beside its bar) and the reference's where it gave one (red dots; it ran on full data
    with larger budgets)."""
    labels = list(ours) + [k for k in reference if k not in ours]
    width = max(1.4 * len(labels) + 2.5, 5.0)
    fig = Figure(figsize=(width, 3.6), dpi=DPI)
    ax = fig.subplots()
    x = np.arange(len(labels))
    seeds = per_seed or {}
    ax.bar(
        x,
        [ours.get(k, np.nan) for k in labels],
        color="tab:blue",
        alpha=0.7,
        label="ours, mean over seeds" if seeds else "ours",
    )
    if seeds:
        points = [(i + 0.28, v) for i, k in enumerate(labels) for v in seeds.get(k, [])]
        ax.plot(
            *zip(*points, strict=True),
            "o",
            color="black",
            markersize=4,
            label=f"ours, each seed ({max(map(len, seeds.values()))})",
        )
    if reference:
        ax.plot(
            x,
            [reference.get(k, np.nan) for k in labels],
            "o",
            color="tab:red",
            label="reference (full data)",
        )
    ax.set_xticks(x, labels)
    ax.set(ylabel=metric, title=textwrap.fill(title, int(9 * width)))
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray, target: str) -> Figure:
    """Each evaluated sample's prediction against its true value, with the identity line."""
    fig = Figure(figsize=(5, 5), dpi=DPI)
    ax = fig.subplots()
    ax.scatter(actual, predicted, s=8, alpha=0.6)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="black", linewidth=1, label="predicted = actual")
    ax.set_xlabel(f"actual {target}")
    ax.set_ylabel(f"predicted {target}")
    ax.set_title(f"Predicted against actual (n = {len(actual)})")
    ax.legend(loc="upper left")
    fig.subplots_adjust(left=0.16, bottom=0.12, right=0.96, top=0.92)
    return fig


def residuals(actual: np.ndarray, predicted: np.ndarray, target: str) -> Figure:
    """Histogram of prediction errors (predicted - actual), in the target's units."""
    errors = predicted - actual
    fig = Figure(figsize=(6, 4), dpi=DPI)
    ax = fig.subplots()
    ax.hist(errors, bins=30, color="tab:blue", alpha=0.8)
    ax.axvline(0, color="black", linewidth=1)
    ax.set_xlabel(f"residual: predicted - actual {target}")
    ax.set_ylabel("samples")
    ax.set_title(f"Residuals (mean {errors.mean():.3g}, sd {errors.std():.3g})")
    fig.subplots_adjust(left=0.12, bottom=0.14, right=0.96, top=0.9)
    return fig
