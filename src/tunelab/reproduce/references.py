"""The reference studies tunelab reproduces: their parts (presets in conf/experiment/), the
figures they report, and their claims as checks over our runs (`claims.Claim`).

Reference figures come from the studies themselves (full data, GPU-sized budgets); they are
printed beside ours, never compared with ours for a verdict. Claims compare our own numbers
with each other: an ordering, a gap, a factor's significance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from tunelab.reproduce.claims import (
    Claim,
    Results,
    Untestable,
    Verdict,
    median,
    ordered,
    percent,
    pick,
)

Figure = Callable[[Results, str], dict[str, float]]  # (results, preset) -> value per label
Check = Callable[[Results], Verdict]


@dataclass(frozen=True)
class Part:
    preset: str  # conf/experiment/<preset>.yaml
    what: str
    reference: str  # the reference's figure, as it reports it
    ours: Figure  # our figure: a value per label (a param value, a stage, a strategy, ...)
    metric: str  # what `ours` measures
    reference_values: dict[str, float] = field(default_factory=dict)  # drawn beside ours
    sweep: bool = False  # a Hydra sweep (`-m`) with its own seeds
    weights: bool = False  # the report shows the weight violins of its best and worst trials
    study_figures: tuple[str, ...] = ()  # the report shows these figures of its study run


@dataclass(frozen=True)
class ReferenceStudy:
    name: str
    source: str
    parts: tuple[Part, ...]
    claims: tuple[Claim, ...]
    needs_cifar10: bool = False


def show(metric: str, value: float) -> str:
    """Accuracies in percent; other figures (F1, FID, IS) as numbers."""
    return percent(value) if "accuracy" in metric else f"{value:.4g}"


# Our figures ---------------------------------------------------------------------------------


def best_trial(metric: str) -> Figure:
    """The test figure of the study's best trial (chosen on validation), mean over seeds."""

    def figure(results: Results, preset: str) -> dict[str, float]:
        return {"best trial": results.study_metric(preset, f"best_trial_{metric}")}

    return figure


def per_value(param: str, metric: str, labels: dict[Any, str] | None = None) -> Figure:
    """A trial metric per value of a tuned param, mean over seeds."""

    def figure(results: Results, preset: str) -> dict[str, float]:
        table = results.by(preset, param, metric)
        return {(labels or {}).get(value, str(value)): v for value, v in table.items()}

    return figure


def per_stage(metric: str, direction: Literal["max", "min"]) -> Figure:
    """A chain's best trial metric per stage, in stage order."""

    def figure(results: Results, preset: str) -> dict[str, float]:
        studies = results.studies_of(preset).sort_values(
            "tags.tunelab.stage_index", key=lambda index: pd.to_numeric(index, errors="coerce")
        )
        out = {}
        for stage in studies["tags.tunelab.stage"]:
            values = results.trial_metric(preset, metric, stage)
            out[stage] = float(values.max() if direction == "max" else values.min())
        return out

    return figure


def per_strategy(metric: str, direction: Literal["max", "min"]) -> Figure:
    """Each study's best trial metric, median over the studies (seeds) of each strategy."""

    def figure(results: Results, preset: str) -> dict[str, float]:
        trials = results.trials_of(preset)
        column = f"metrics.{metric}"
        if column not in trials:
            raise Untestable(f"{preset}: no trial logged {metric}")
        best = trials.groupby("tags.tunelab.study_id")[column].agg(direction)
        strategy = trials.groupby("tags.tunelab.study_id")["study.tags.tunelab.strategy"].first()
        return {name: median(group) for name, group in best.groupby(strategy)}

    return figure


def ours(results: Results, part: Part) -> dict[str, float]:
    return part.ours(results, part.preset)


# Claims ----------------------------------------------------------------------------------------


def figure_of(results: Results, preset: str) -> dict[str, float]:
    """Our figure of the part `preset`, of whichever study it belongs to."""
    (part,) = [p for study in STUDIES.values() for p in study.parts if p.preset == preset]
    return ours(results, part)


def mnist_batch_sizes(results: Results) -> Verdict:
    table = results.by("mnist_mlp/batch_size", "batch_size", "test_accuracy")
    order = {"256": 256, "1": 1, "full": 0}
    return ordered({k: pick(table, v, "mnist_mlp/batch_size") for k, v in order.items()})


def mnist_bad_init(results: Results) -> Verdict:
    accuracy = float(results.trial_metric("mnist_mlp/bad_init", "test_accuracy").mean())
    share = float(results.trial_metric("mnist_mlp/bad_init", "test_top_class_share").mean())
    holds = accuracy < 0.2 and share >= 0.9
    return Verdict.of(
        holds,
        f"test accuracy {percent(accuracy)} (chance 10 %), "
        f"{percent(share)} of test images predicted as one class",
    )


def beats(tuned: str, baseline: str, baseline_figure: Callable[[Results], float]) -> Check:
    def check(results: Results) -> Verdict:
        best = results.study_metric(tuned, "best_trial_test_accuracy")
        hand_set = baseline_figure(results)
        return Verdict.of(
            best > hand_set, f"{tuned}: {percent(best)} against {baseline}: {percent(hand_set)}"
        )

    return check


def mnist_hand_set(results: Results) -> float:
    table = results.by("mnist_mlp/batch_size", "batch_size", "test_accuracy")
    return pick(table, 256, "mnist_mlp/batch_size")


WIDTHS = {
    "[128, 64]": "128-64",
    "[256, 128, 64]": "256-128-64",
    "[512, 256, 128, 64]": "512-256-128-64",
}


def cifar_widths(results: Results) -> Verdict:
    table = figure_of(results, "cifar_mlp/widths")
    widest_first = {label: table.get(label, np.nan) for label in reversed(WIDTHS.values())}
    if any(np.isnan(v) for v in widest_first.values()):
        raise Untestable("cifar_mlp/widths: not every width has a finished trial")
    return ordered(widest_first)


def cifar_mlp_beats_softmax(results: Results) -> Verdict:
    softmax = results.study_metric("cifar_mlp/softmax", "best_trial_test_accuracy")
    worst = min(figure_of(results, "cifar_mlp/widths").values())
    return Verdict.of(
        worst > softmax,
        f"every MLP width ≥ {percent(worst)} against softmax regression {percent(softmax)}",
    )


def cifar_regularisation(results: Results) -> Verdict:
    table = results.trials_of("cifar_mlp/regularisation")
    accuracy = results.trial_metric("cifar_mlp/regularisation", "test_accuracy")
    plain = (table["params.l2"].astype(float) == 0) & (table["params.dropout"].astype(float) == 0)
    if not plain.any():
        raise Untestable("cifar_mlp/regularisation: no trial without L2 and dropout")
    best, unregularised = float(accuracy.max()), float(accuracy[plain].mean())
    row = table.loc[accuracy.idxmax()]
    return Verdict.of(
        best > unregularised,
        f"best {percent(best)} (l2 {row['params.l2']}, "
        f"dropout {row['params.dropout']}) against "
        f"{percent(unregularised)} without",
    )


def cifar_best_width(results: Results) -> float:
    return max(figure_of(results, "cifar_mlp/widths").values())


def cnn_far_above_mlp(results: Results) -> Verdict:
    cnn = results.study_metric("cifar_cnn/baseline", "best_trial_test_accuracy")
    mlps = {}
    for preset in ("cifar_mlp/hyperband", "cifar_mlp/regularisation", "cifar_mlp/widths"):
        try:
            mlps[preset] = max(figure_of(results, preset).values())
        except Untestable:
            continue
    if not mlps:
        raise Untestable("no CIFAR-10 MLP part ran in this reproduction")
    best_mlp = max(mlps, key=mlps.__getitem__)
    gap = cnn - mlps[best_mlp]
    return Verdict.of(
        gap >= 0.10,
        f"CNN {percent(cnn)} against the best MLP ({best_mlp}) "
        f"{percent(mlps[best_mlp])}: {100 * gap:+.1f} points "
        "(claimed far above: ≥ 10 points)",
    )


def anova(results: Results, preset: str, stage: str, response: str) -> pd.DataFrame:
    """The stage's ANOVA of `response` over its factors (main effects, two-factor
    interactions), from its finished trials."""
    from tunelab.analysis import factorial
    from tunelab.schema import ConfigError

    trials = results.trials_of(preset, stage)
    factors = sorted(c.removeprefix("params.") for c in trials if c.startswith("params.coded."))
    try:
        data = factorial.tidy(trials, factors, response)
        return factorial.analyse(data, factors, response, order=2).anova
    except ConfigError as error:
        raise Untestable(f"{preset} (stage {stage}): {error}") from None


def dominant(preset: str, stage: str, response: str, factor: str) -> Check:
    def check(results: Results) -> Verdict:
        table = anova(results, preset, stage, response)
        main = table.loc[[i for i in table.index if i.startswith("coded.") and ":" not in i]]
        if main["F"].isna().all():
            raise Untestable(f"{preset} (stage {stage}): no residual degrees of freedom")
        ranked = main["F"].sort_values(ascending=False)
        top = ranked.index[0].removeprefix("coded.")
        numbers = ", ".join(
            f"{i.removeprefix('coded.')} F = {v:.3g}" for i, v in ranked[:3].items()
        )
        return Verdict.of(top == factor, f"{response}: {numbers}")

    return check


def without_effect(preset: str, stage: str, response: str, factor: str) -> Check:
    def check(results: Results) -> Verdict:
        table = anova(results, preset, stage, response)
        row = table.loc[f"coded.{factor}"]
        if np.isnan(row["PR(>F)"]):
            raise Untestable(f"{preset} (stage {stage}): no residual degrees of freedom")
        return Verdict.of(
            row["PR(>F)"] >= 0.05,
            f"{response}: {factor} F = {row['F']:.3g}, "
            f"p = {row['PR(>F)']:.3g} (no effect: p ≥ 0.05)",
        )

    return check


def guided_fid_falls(results: Results) -> Verdict:
    by_stage = figure_of(results, "guided_doe")
    numbers = list(by_stage.values())
    holds = len(numbers) > 1 and all(b < a for a, b in zip(numbers, numbers[1:], strict=False))
    return Verdict.of(holds, " → ".join(f"{s}: {v:.4g}" for s, v in by_stage.items()))


def gan_order(metric: str, direction: Literal["max", "min"]) -> Check:
    def check(results: Results) -> Verdict:
        table = per_strategy(metric, direction)(results, "gan_shootout")
        order = ["hyperband", "keras_bayesian", "random"]
        missing = [s for s in order if s not in table]
        if missing:
            raise Untestable(f"gan_shootout: no {', '.join(missing)} study")
        sign = 1 if direction == "max" else -1
        values = {s: sign * table[s] for s in order}
        return ordered(values, show=lambda v: f"{sign * v:.4g}")

    return check


BEST_SO_FAR = ("plots/best_so_far.png",)
STUDIES: dict[str, ReferenceStudy] = {}


def _register(study: ReferenceStudy) -> None:
    STUDIES[study.name] = study


_register(
    ReferenceStudy(
        name="mnist_mlp",
        source="MLPs on MNIST (full MNIST, 60k/10k)",
        parts=(
            Part(
                "mnist_mlp/batch_size",
                "128→256 ReLU MLP, batch 1 / 256 / full",
                "96.10 / 98.17 / 95.48 % test acc",
                per_value("batch_size", "test_accuracy", {0: "full"}),
                "test accuracy",
                {"1": 0.9610, "256": 0.9817, "full": 0.9548},
            ),
            Part(
                "mnist_mlp/rho",
                "RMSprop ρ 0.01 vs 0.99",
                "–",
                per_value("rho", "test_accuracy"),
                "test accuracy",
            ),
            Part(
                "mnist_mlp/bad_init",
                "SGD from RandomNormal(mean 10)",
                "stuck at 11.34 %",
                best_trial("test_accuracy"),
                "test accuracy",
                {"best trial": 0.1134},
            ),
            Part(
                "mnist_mlp/regularisation",
                "L1 × L2 × dropout variants",
                "–",
                best_trial("test_accuracy"),
                "test accuracy",
                weights=True,
            ),
            Part(
                "mnist_mlp/hyperband",
                "Hyperband over units × lr × l2, on val accuracy",
                "98.29 % acc",
                best_trial("test_accuracy"),
                "test accuracy",
                {"best trial": 0.9829},
                study_figures=BEST_SO_FAR,
            ),
            Part(
                "mnist_mlp/hyperband_f1",
                "the same Hyperband, on val macro-F1",
                "macro-F1 0.9831",
                best_trial("test_macro_f1"),
                "test macro-F1",
                {"best trial": 0.9831},
            ),
        ),
        claims=(
            Claim(
                "batch_size_order",
                "batch 256 beats batch 1, which beats the full batch (98.17 > 96.10 > 95.48 %)",
                mnist_batch_sizes,
            ),
            Claim(
                "bad_init_stuck",
                "the mean-10 initialiser stays near chance (11.34 %), one class predicted",
                mnist_bad_init,
            ),
            Claim(
                "hyperband_beats_hand_set",
                "Hyperband's best beats the hand-set 128→256 MLP (98.29 > 98.17 %)",
                beats("mnist_mlp/hyperband", "mnist_mlp/batch_size at 256", mnist_hand_set),
            ),
        ),
    )
)

_register(
    ReferenceStudy(
        name="cifar_mlp",
        source="MLPs on CIFAR-10 (40k/10k/10k split)",
        parts=(
            Part(
                "cifar_mlp/softmax",
                "softmax regression on 3,072 pixels",
                "38.60 %",
                best_trial("test_accuracy"),
                "test accuracy",
                {"best trial": 0.3860},
            ),
            Part(
                "cifar_mlp/widths",
                "[128,64] / [256,128,64] / [512,256,128,64]",
                "50.95 / 51.98 / 52.58 %",
                per_value("widths", "test_accuracy", WIDTHS),
                "test accuracy",
                dict(zip(WIDTHS.values(), (0.5095, 0.5198, 0.5258), strict=True)),
            ),
            Part(
                "cifar_mlp/regularisation",
                "L2 × dropout on the widest MLP",
                "best 53.46 %",
                best_trial("test_accuracy"),
                "test accuracy",
                {"best trial": 0.5346},
                weights=True,
            ),
            Part(
                "cifar_mlp/hyperband",
                "Hyperband, max_epochs 50, factor 3, patience 10 (full)",
                "55.17 %, macro-F1 0.5477",
                best_trial("test_accuracy"),
                "test accuracy",
                {"best trial": 0.5517},
                study_figures=BEST_SO_FAR,
            ),
        ),
        claims=(
            Claim(
                "mlp_beats_softmax",
                "every MLP beats softmax regression (≥ 50.95 > 38.60 %)",
                cifar_mlp_beats_softmax,
            ),
            Claim(
                "wider_deeper_better",
                "wider and deeper is better over the three widths (52.58 > 51.98 > 50.95 %)",
                cifar_widths,
            ),
            Claim(
                "regularisation_helps",
                "L2 / dropout lift the widest MLP (53.46 against 52.58 %)",
                cifar_regularisation,
            ),
            Claim(
                "hyperband_beats_hand_set",
                "Hyperband's best beats the hand-set widths (55.17 > 52.58 %)",
                beats("cifar_mlp/hyperband", "the best cifar_mlp/widths", cifar_best_width),
            ),
        ),
        needs_cifar10=True,
    )
)

_register(
    ReferenceStudy(
        name="cifar_cnn",
        source="a CNN on CIFAR-10 (40k/10k/10k split)",
        parts=(
            Part(
                "cifar_cnn/baseline",
                "3 conv blocks + BN, dense 64, augmentation, step LR",
                "80.15 %, macro-F1 0.7978",
                best_trial("test_accuracy"),
                "test accuracy",
                {"best trial": 0.8015},
            ),
            Part(
                "cifar_cnn/hyperband",
                "Hyperband over filters, dense units, lr, optimiser",
                "best hyperparameters never reported",
                best_trial("test_accuracy"),
                "test accuracy",
                study_figures=BEST_SO_FAR,
            ),
        ),
        claims=(
            Claim(
                "cnn_far_above_mlp",
                "the CNN is far above the MLPs on CIFAR-10 (80.15 against 55.17 %)",
                cnn_far_above_mlp,
            ),
        ),
        needs_cifar10=True,
    )
)

_register(
    ReferenceStudy(
        name="cifar_doe",
        source="the 7-factor CIFAR-10 CNN design study",
        parts=(
            Part(
                "cifar_doe",
                "2^(7−4) → 2^7 + ANOVA → RSM and GP-EI over the top three",
                "–",
                per_stage("best_val_accuracy", "max"),
                "best validation accuracy",
            ),
        ),
        claims=(
            Claim(
                "lr_dominant",
                "the learning rate is the dominant factor (2^7 ANOVA)",
                dominant("cifar_doe", "factorial", "best_val_accuracy", "lr"),
            ),
            Claim(
                "guidance_weight_inert",
                "the guidance weight has no effect on the classifier's "
                "accuracy (here it is never given to the CNN)",
                without_effect("cifar_doe", "factorial", "best_val_accuracy", "guidance_weight"),
            ),
        ),
        needs_cifar10=True,
    )
)

_register(
    ReferenceStudy(
        name="guided_doe",
        source="the design study of classifier-guided diffusion (MNIST)",
        parts=(
            Part(
                "guided_doe",
                "baseline → 2^(7−4) → 2^7 + ANOVA → RSM → GP-EI, on FID",
                "FID 158 / 140 / 130 / 120 / 98",
                per_stage("best_fid", "min"),
                "best FID",
                {"baseline": 158, "screening": 140, "factorial": 130, "rsm": 120, "gp_ei": 98},
            ),
        ),
        claims=(
            Claim(
                "fid_falls_by_stage",
                "each stage lowers the best FID (158 → 140 → 130 → 120 → 98)",
                guided_fid_falls,
            ),
            Claim(
                "lr_dominant",
                "the learning rate is the dominant factor of FID (2^7 ANOVA)",
                dominant("guided_doe", "factorial", "best_fid", "lr"),
            ),
            Claim(
                "guidance_weight_no_accuracy_effect",
                "the guidance weight has no effect on the classifier's accuracy",
                without_effect("guided_doe", "factorial", "clean_val_accuracy", "guidance_weight"),
            ),
        ),
    )
)

_register(
    ReferenceStudy(
        name="gan_shootout",
        source="a DCGAN on MNIST tuned three ways, medians over repetitions",
        parts=(
            Part(
                "gan_shootout",
                "Hyperband, Bayesian, random; median best IS per strategy",
                "IS 5.89 / 5.82 / 5.72",
                per_strategy("final_inception_score", "max"),
                "Inception Score",
                {"hyperband": 5.89, "keras_bayesian": 5.82, "random": 5.72},
                sweep=True,
            ),
        ),
        claims=(
            Claim(
                "is_order",
                "Hyperband's generators score the highest IS, then Bayesian, then "
                "random (5.89 > 5.82 > 5.72)",
                gan_order("final_inception_score", "max"),
            ),
            Claim(
                "fid_order",
                "and the lowest FID in the same order (0.18 < 0.19 < 0.29)",
                gan_order("best_fid", "min"),
            ),
        ),
    )
)
