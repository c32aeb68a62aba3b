"""One report per reference study: a Markdown page (and its HTML rendering, which the MLflow UI
previews) with our figure beside the reference's for every part, the figures that carry the
claims, and each claim's verdict with its numbers."""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.reproduce.claims import Claim, Results, Untestable, Verdict, percent
from tunelab.reproduce.references import Part, ReferenceStudy, ours, show

HTML_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>
body {{font-family: sans-serif; max-width: 60em; margin: 1em auto; line-height: 1.4}}
table {{border-collapse: collapse}} td, th {{border: 1px solid #ccc; padding: 0.2em 0.5em}}
img {{max-width: 100%}}</style></head><body>{body}</body></html>"""


@dataclass
class Report:
    study: ReferenceStudy
    markdown: str
    verdicts: list[tuple[Claim, Verdict]]
    figures: dict[str, bytes] = field(default_factory=dict)  # artifact path -> PNG

    @property
    def html(self) -> str:
        """The Markdown as one self-contained page: figures inlined, since the MLflow UI shows
        an HTML artifact in a frame that cannot fetch its neighbours."""
        import markdown

        body = markdown.markdown(self.markdown, extensions=["tables"])

        def inline(match: re.Match[str]) -> str:
            png = self.figures.get(match.group(1))
            if png is None:
                return match.group(0)
            return f'src="data:image/png;base64,{base64.b64encode(png).decode()}"'

        body = re.sub(r'src="([^"]+\.png)"', inline, body)
        return HTML_PAGE.format(title=f"Reproducing {self.study.name}", body=body)

    def claims_table(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"claim": c.id, "reference": c.text, "verdict": v.status, "ours": v.numbers}
                for c, v in self.verdicts
            ]
        )


def build(
    study: ReferenceStudy,
    results: Results,
    verdicts: list[tuple[Claim, Verdict]],
    about: dict[str, str],
    read_png: Any,
) -> Report:
    """The report of `study`. `about`: budget, seeds, reproduction id, command, version;
    `read_png(run_id, path)` reads a trial's figure (the weight violins)."""
    report = Report(study, "", verdicts)
    lines = [
        f"# Reproducing {study.name}: {study.source}",
        "",
        f"Reproduction `{about['id']}`, budget `{about['budget']}`, seeds "
        f"{about['seeds']}; tunelab {about['version']} (commit {about['commit'][:10]}), "
        f"{date.today().isoformat()}. Regenerate with `{about['command']}`.",
        "",
        "Reference figures come from the study's own full-data runs; ours from the data "
        "sizes given. Each claim is checked on our numbers only.",
        "",
        "## Claims",
        "",
        "| claim | verdict | ours |",
        "| --- | --- | --- |",
    ]
    for claim, verdict in verdicts:
        status = verdict.status if verdict.status != "not reproduced" else "**not reproduced**"
        lines.append(f"| {claim.text} | {status} | {verdict.numbers} |")
    lines += [
        "",
        "## Parts",
        "",
        "| preset | what | ours | reference | data (train / val / test) | ran at | trials |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    sections = []
    for part in study.parts:
        try:
            figure = ours(results, part)
        except Untestable as missing:
            row = [f"`{part.preset}`", part.what, str(missing), part.reference, "–", "–", "–"]
            lines.append(f"| {' | '.join(row)} |")
            continue
        per_seed = {} if part.sweep else _per_seed(results, part)
        values = ", ".join(
            f"{k}: {_spread(part.metric, v, per_seed.get(k, []))}" for k, v in figure.items()
        )
        studies = results.studies_of(part.preset)
        row = [
            f"`{part.preset}`",
            part.what,
            f"{part.metric} {values}",
            part.reference,
            _data_sizes(studies),
            _ran_at(studies),
            _trials(studies),
        ]
        lines.append(f"| {' | '.join(row)} |")
        sections += _figures(report, results, part, figure, per_seed, read_png)
    report.markdown = "\n".join([*lines, "", *sections]) + "\n"
    return report


def _per_seed(results: Results, part: Part) -> dict[str, list[float]]:
    """Our figure of `part` in each seed alone, by label (empty with one seed)."""
    seeds = results.seeds
    if len(seeds) < 2:
        return {}
    values: dict[str, list[float]] = {}
    for seed in seeds:
        try:
            figure = ours(results.of_seed(seed), part)
        except Untestable:
            continue
        for label, value in figure.items():
            values.setdefault(label, []).append(value)
    return values


def _spread(metric: str, mean: float, values: list[float]) -> str:
    """The mean, ± the standard deviation over the seeds when there are several."""
    if len(values) < 2:
        return show(metric, mean)
    sd = float(np.std(values, ddof=1))
    if "accuracy" in metric:
        return f"{100 * mean:.1f} ± {100 * sd:.1f} %"
    return f"{mean:.4g} ± {sd:.2g}"


def _data_sizes(studies: pd.DataFrame) -> str:
    first = studies.iloc[0]
    sizes = [first.get(f"params.data.{k}") for k in ("n_train", "n_val", "n_test")]
    return " / ".join(f"{int(s):,}" if pd.notna(s) else "?" for s in sizes)


def _ran_at(studies: pd.DataFrame) -> str:
    budgets = ", ".join(sorted(set(studies["tags.tunelab.budget"])))
    seeds = sorted(set(studies["tags.tunelab.seed"]), key=int)
    return f"{budgets}, seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)}"


def _trials(studies: pd.DataFrame) -> str:
    if "metrics.trials" not in studies:
        return "?"
    per_study = studies["metrics.trials"].fillna(0).astype(int)
    return (
        f"{per_study.sum()} in {len(per_study)} studies"
        if len(per_study) > 1
        else str(per_study.sum())
    )


def _figures(
    report: Report,
    results: Results,
    part: Part,
    figure: dict[str, float],
    per_seed: dict[str, list[float]],
    read_png: Any,
) -> list[str]:
    from tunelab import plots

    slug = part.preset.replace("/", "-")
    lines = [f"### `{part.preset}`", ""]
    if len(figure) > 1 or part.reference_values or per_seed:
        drawn = plots.ours_and_reference(
            figure, part.reference_values, part.metric, part.what, per_seed
        )
        path = f"figures/{slug}.png"
        report.figures[path] = _png(drawn)
        lines += [f"![{part.preset}]({path})", ""]
    for figure_path in part.study_figures:
        path = f"figures/{slug}-{Path(figure_path).name}"
        report.figures[path] = read_png(
            results.studies_of(part.preset).iloc[0]["run_id"], figure_path
        )
        lines += [
            f"The study's {Path(figure_path).stem.replace('_', ' ')}:",
            "",
            f"![{figure_path}]({path})",
            "",
        ]
    if part.weights:
        trials = results.trials_of(part.preset)
        column = "metrics.test_accuracy"
        if column in trials and trials[column].notna().any():
            ranked = trials.dropna(subset=[column]).sort_values(column)
            for which, row in (("best", ranked.iloc[-1]), ("worst", ranked.iloc[0])):
                path = f"figures/{slug}-weights-{which}.png"
                report.figures[path] = read_png(row["run_id"], "plots/weights.png")
                lines += [
                    f"Weights before / after training, the {which} trial "
                    f"({percent(row[column])} test accuracy):",
                    "",
                    f"![weights of the {which} trial]({path})",
                    "",
                ]
    return lines


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
