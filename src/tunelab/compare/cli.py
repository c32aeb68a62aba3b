"""`python -m tunelab.compare factorial|optimisers|discriminators|stages --experiment E ...`

Reads the runs of an experiment (any tracking URI: local SQLite, an `mlflow server`, a
PostgreSQL-backed server), analyses them, prints Markdown tables and logs them with plots to a
new run tagged `tunelab.kind=comparison` in the same experiment (`tunelab.compare.reports`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tunelab.compare import reports
from tunelab.schema import ConfigError
from tunelab.tracking import reachability


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m tunelab.compare", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    factorial = commands.add_parser(
        "factorial", help="ANOVA, effects and Lenth's PSE of a factorial design"
    )
    _common(factorial, default_filter="tags.`tunelab.kind` = 'trial'")
    factorial.add_argument("--factors", required=True, help="comma-separated params, e.g. lr,l2")
    factorial.add_argument("--order", type=int, default=2, help="highest interaction order")
    factorial.add_argument("--typ", type=int, choices=(1, 2, 3), default=2, help="ANOVA type")
    optimisers = commands.add_parser(
        "optimisers", help="strategies compared over repeated studies (seeds)"
    )
    _common(optimisers, default_filter="tags.`tunelab.kind` = 'study'")
    optimisers.add_argument(
        "--direction",
        choices=("max", "min"),
        default=None,
        help="of --response (default: the studies' objective's); a trial metric the study "
        "runs lack (e.g. final_inception_score) is each study's best over its trials",
    )
    optimisers.add_argument(
        "--baseline",
        default="random",
        help="strategy whose median scores 1 in the normalised score",
    )
    optimisers.add_argument(
        "--target",
        type=float,
        default=None,
        help="report epochs and wall time until a trial reaches this value",
    )
    discriminators = commands.add_parser(
        "discriminators", help="each strategy's best discriminator judges every best generator"
    )
    _common(discriminators, default_filter="tags.`tunelab.kind` = 'study'")
    discriminators.add_argument(
        "--direction",
        choices=("max", "min"),
        default="min",
        help="how --response picks each strategy's best study",
    )
    discriminators.add_argument(
        "--images", type=int, default=1500, help="generated images per generator, and real images"
    )
    discriminators.add_argument("--seed", type=int, default=0, help="of the latent vectors")
    discriminators.set_defaults(response="best_fid")
    stages = commands.add_parser(
        "stages", help="a chain of studies stage by stage, beside the reproduced study's claims"
    )
    _common(stages, default_filter="tags.`tunelab.kind` = 'study'")
    stages.add_argument(
        "--chain", required=True, help="the chain's study name, e.g. guided_doe-seed0"
    )
    return top


def _common(command: argparse.ArgumentParser, default_filter: str) -> None:
    command.add_argument("--experiment", default="tunelab", help="MLflow experiment name")
    command.add_argument(
        "--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI, else ./mlflow.db"
    )
    command.add_argument(
        "--filter", default=default_filter, help=f"MLflow search filter (default: {default_filter})"
    )
    command.add_argument("--study", default=None, help="only the runs of this study id")
    command.add_argument(
        "--response",
        default=None,
        help="a metric (default: best_<objective> of the runs' one objective)",
    )
    command.add_argument(
        "--cache-dir",
        default=reports.DEFAULT_CACHE,
        type=Path,
        help="Parquet cache of the runs read (keyed by the query)",
    )
    command.add_argument("--refresh", action="store_true", help="query the server again")
    command.add_argument(
        "--export-csv",
        type=Path,
        default=None,
        help="also write the tidy frame of runs to this CSV file",
    )


def query(args: argparse.Namespace) -> reports.Query:
    return reports.Query(
        experiment=args.experiment,
        tracking_uri=args.tracking_uri,
        filter=args.filter,
        study=args.study,
        response=args.response,
        cache_dir=args.cache_dir,
        refresh=args.refresh,
        export_csv=args.export_csv,
    )


COMMANDS = {
    "factorial": lambda a: reports.factorial(
        query(a), [f.strip() for f in a.factors.split(",") if f.strip()], a.order, a.typ
    ),
    "optimisers": lambda a: reports.optimisers(query(a), a.direction, a.baseline, a.target),
    "discriminators": lambda a: reports.discriminators(query(a), a.direction, a.images, a.seed),
    "stages": lambda a: reports.stages(query(a), a.chain),
}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        reachability.check(args.tracking_uri, "--tracking-uri")
        COMMANDS[args.command](args)
    except ConfigError as error:
        print(f"tunelab.compare: error: {error}", file=sys.stderr)
        return 2
    return 0
