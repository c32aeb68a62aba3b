"""`python -m tunelab.compare factorial --experiment E --factors a,b,c --response METRIC`

Reads the runs of an experiment (any tracking URI: local SQLite, an `mlflow server`, a
PostgreSQL-backed server), analyses them, prints Markdown tables and logs them with plots to a
new run tagged `tunelab.kind=comparison` in the same experiment.
"""

from __future__ import annotations

import argparse
import sys

from tunelab.schema import ConfigError


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m tunelab.compare", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    factorial = commands.add_parser(
        "factorial", help="ANOVA, effects and Lenth's PSE of a factorial design"
    )
    factorial.add_argument("--experiment", default="tunelab", help="MLflow experiment name")
    factorial.add_argument("--tracking-uri", default=None,
                           help="default: $MLFLOW_TRACKING_URI, else ./mlflow.db")  # fmt: skip
    factorial.add_argument("--filter", default="tags.`tunelab.kind` = 'trial'",
                           help="MLflow search filter (default: every trial run)")
    factorial.add_argument("--study", default=None,
                           help="only the runs of this study id")  # fmt: skip
    factorial.add_argument("--factors", required=True, help="comma-separated params, e.g. lr,l2")
    factorial.add_argument("--response", default="best_val_accuracy", help="a metric")
    factorial.add_argument("--order", type=int, default=2, help="highest interaction order")
    factorial.add_argument("--typ", type=int, choices=(1, 2, 3), default=2, help="ANOVA type")
    return top


def run_factorial(args: argparse.Namespace) -> str:
    from rich.console import Console
    from rich.markdown import Markdown

    from tunelab import plots
    from tunelab.compare import factorial
    from tunelab.tracking.runs import log_comparison, runs_frame

    factors = [f.strip() for f in args.factors.split(",") if f.strip()]
    if args.study:
        study = f"tags.`tunelab.study_id` = '{args.study}'"
        args.filter = f"{args.filter} AND {study}" if args.filter else study
    frame = runs_frame(args.tracking_uri, args.experiment, args.filter)
    data = factorial.tidy(frame, factors, args.response)
    result = factorial.analyse(data, factors, args.response, args.order, args.typ)
    tables = {"factorial/anova": result.anova, "factorial/one_way": result.one_way}
    figures = {"factorial/main_effects.png": plots.main_effects(data, factors, args.response)}
    if result.effects is not None:
        tables["factorial/effects"] = result.effects
        margin = result.lenth["margin_of_error"] if result.lenth else None
        figures["factorial/half_normal.png"] = plots.half_normal(result.effects["effect"], margin)
    console = Console()
    console.print(Markdown(f"**{len(data)} runs**, model `{result.formula}`"))
    for name, table in tables.items():
        console.print(Markdown(f"### {name}\n\n{table.to_markdown(floatfmt='.4g')}"))
    if result.lenth:
        console.print(Markdown("Lenth: " + ", ".join(f"{k} = {v:.4g}"
                                                    for k, v in result.lenth.items())))  # fmt: skip
    params = {"analysis": "factorial", "experiment": args.experiment, "filter": args.filter,
              "factors": ",".join(factors), "response": args.response, "order": args.order,
              "typ": args.typ, "runs": len(data)}  # fmt: skip
    if result.lenth:
        params.update({f"lenth.{k}": v for k, v in result.lenth.items()})
    run_id = log_comparison(args.tracking_uri, args.experiment, "factorial-analysis", params,
                            tables, figures)  # fmt: skip
    console.print(f"logged as MLflow run {run_id} (tag tunelab.kind=comparison)")
    return run_id


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        run_factorial(args)
    except ConfigError as error:
        print(f"tunelab.compare: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
