"""`python -m tunelab.compare factorial|optimisers|discriminators|stages --experiment E ...`

Reads the runs of an experiment (any tracking URI: local SQLite, an `mlflow server`, a
PostgreSQL-backed server), analyses them, prints Markdown tables and logs them with plots to a
new run tagged `tunelab.kind=comparison` in the same experiment.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

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
    optimisers.add_argument("--direction", choices=("max", "min"), default="max",
                            help="of --response; a trial metric the study runs lack (e.g. "
                                 "final_inception_score) is each study's best over its trials")
    optimisers.add_argument("--baseline", default="random",
                            help="strategy whose median scores 1 in the normalised score")
    optimisers.add_argument("--target", type=float, default=None,
                            help="report epochs and wall time until a trial reaches this value")
    discriminators = commands.add_parser(
        "discriminators", help="each strategy's best discriminator judges every best generator"
    )
    _common(discriminators, default_filter="tags.`tunelab.kind` = 'study'")
    discriminators.add_argument("--direction", choices=("max", "min"), default="min",
                                help="how --response picks each strategy's best study")
    discriminators.add_argument("--images", type=int, default=1500,
                                help="generated images per generator, and real images")
    discriminators.add_argument("--seed", type=int, default=0, help="of the latent vectors")
    discriminators.set_defaults(response="best_fid")
    stages = commands.add_parser(
        "stages", help="a chain of studies stage by stage, beside the reproduced study's claims"
    )
    _common(stages, default_filter="tags.`tunelab.kind` = 'study'")
    stages.add_argument("--chain", required=True,
                        help="the chain's study name, e.g. guided_doe-seed0")
    return top


def _common(command: argparse.ArgumentParser, default_filter: str) -> None:
    command.add_argument("--experiment", default="tunelab", help="MLflow experiment name")
    command.add_argument("--tracking-uri", default=None,
                         help="default: $MLFLOW_TRACKING_URI, else ./mlflow.db")
    command.add_argument("--filter", default=default_filter,
                         help=f"MLflow search filter (default: {default_filter})")
    command.add_argument("--study", default=None, help="only the runs of this study id")
    command.add_argument("--response", default="best_val_accuracy", help="a metric")
    command.add_argument("--cache-dir", default=".tunelab/compare-cache", type=Path,
                         help="Parquet cache of the runs read (keyed by the query)")
    command.add_argument("--refresh", action="store_true", help="query the server again")
    command.add_argument("--export-csv", type=Path, default=None,
                         help="also write the tidy frame of runs to this CSV file")


def _runs(args: argparse.Namespace, filter_string: str) -> Any:
    from tunelab.tracking.runs import runs_frame

    frame = runs_frame(args.tracking_uri, args.experiment, filter_string,
                       cache_dir=args.cache_dir, refresh=args.refresh)  # fmt: skip
    if args.export_csv and filter_string == _filter(args):
        frame.to_csv(args.export_csv, index=False)
    return frame


def _filter(args: argparse.Namespace) -> str:
    if not args.study:
        return args.filter
    study = f"tags.`tunelab.study_id` = '{args.study}'"
    return f"{args.filter} AND {study}" if args.filter else study


def _report(args: argparse.Namespace, title: str, tables: dict, figures: dict,
            params: dict) -> str:  # fmt: skip
    """Print the tables as Markdown and log everything as a comparison run."""
    from rich.console import Console
    from rich.markdown import Markdown

    from tunelab.tracking.runs import log_comparison

    console = Console()
    for name, table in tables.items():
        console.print(Markdown(f"### {name}\n\n{table.to_markdown(floatfmt='.4g')}"))
    params = {"analysis": title, "experiment": args.experiment, "filter": _filter(args),
              "response": args.response, **params}  # fmt: skip
    run_id = log_comparison(args.tracking_uri, args.experiment, f"{title}-analysis", params,
                            tables, figures)  # fmt: skip
    console.print(f"logged as MLflow run {run_id} (tag tunelab.kind=comparison)")
    return run_id


def run_optimisers(args: argparse.Namespace) -> str:
    import pandas as pd

    from tunelab import plots
    from tunelab.compare import optimisers

    studies = _runs(args, _filter(args))
    trials = pd.concat([_trials(args, study_id) for study_id in studies["tags.tunelab.study_id"]])
    studies = optimisers.with_best_of_trials(studies, trials, args.response, args.direction)
    table = optimisers.study_table(studies, args.response)
    result = optimisers.compare(table, trials, args.response, args.direction, args.baseline,
                                args.target)  # fmt: skip
    tables = {"optimisers/summary": result.summary, "optimisers/kruskal": result.kruskal,
              "optimisers/pairwise": result.pairwise, "optimisers/anytime": result.anytime,
              "optimisers/friedman_by_seed": result.friedman,
              "optimisers/paired_by_seed": result.paired, "optimisers/studies": table}  # fmt: skip
    figures = {}
    for task, group in table.groupby("task"):
        slug = task.replace("/", "-")
        figures[f"optimisers/best_per_study_{slug}.png"] = plots.strategy_boxes(
            group, args.response, task)
        if result.curves[task]:
            figures[f"optimisers/best_so_far_{slug}.png"] = plots.best_so_far_bands(
                result.curves[task], args.response, task)
            figures[f"optimisers/best_so_far_time_{slug}.png"] = plots.best_so_far_bands(
                result.time_curves[task], args.response, task, axis="wall time since start (s)")
    params = {"studies": len(table), "tasks": table["task"].nunique(),
              "strategies": ",".join(sorted(table["strategy"].unique())),
              "baseline": args.baseline, "target": args.target}  # fmt: skip
    if len(table["task"].unique()) == 1:
        params.update({f"kruskal.{k}": v for k, v in result.kruskal.iloc[0].items()}
                      if len(result.kruskal) else {})
        params.update({f"friedman.{k}": v for k, v in result.friedman.iloc[0].items()}
                      if len(result.friedman) else {})
    across = result.across_tasks
    if across is not None:
        tables["optimisers/ranks_by_task"] = across.ranks
        tables["optimisers/average_ranks"] = across.average_ranks.to_frame("average_rank")
        if across.friedman is not None:
            params.update({f"tasks.friedman.{k}": v for k, v in across.friedman.items()})
            params["tasks.nemenyi_cd"] = across.critical_difference
            tables["optimisers/nemenyi"] = across.nemenyi
            figures["optimisers/critical_difference.png"] = plots.critical_difference(
                across.average_ranks, across.nemenyi, across.critical_difference)
    return _report(args, "optimisers", tables, figures, params)


def _trials(args: argparse.Namespace, study_id: str) -> Any:
    """The trial runs of one study (MLflow filters have no IN for tags: one query per study);
    an empty frame when the study logged none."""
    import pandas as pd

    try:
        return _runs(args, f"tags.`tunelab.kind` = 'trial' AND "
                           f"tags.`tunelab.study_id` = '{study_id}'")  # fmt: skip
    except ConfigError:
        return pd.DataFrame(columns=["tags.tunelab.study_id"])


def run_stages_table(args: argparse.Namespace) -> str:
    from tunelab import plots
    from tunelab.compare.stages import stage_table

    chain = f"tags.`tunelab.chain` = '{args.chain}'"
    studies = _runs(args, f"{_filter(args)} AND {chain}" if _filter(args) else chain)
    table = stage_table(studies)
    response = args.response if args.response in table else next(
        c for c in table if c.startswith("best_") and not c.startswith("best_trial_"))
    figures = {"stages/by_stage.png": plots.stages(table, response)}
    params = {"chain": args.chain, "stages": len(table), "response": response}
    return _report(args, "stages", {"stages/table": table}, figures, params)


def run_factorial(args: argparse.Namespace) -> Any:
    """Analyse, print and log; returns the FactorialResult."""
    from tunelab import plots
    from tunelab.compare import factorial

    factors = [f.strip() for f in args.factors.split(",") if f.strip()]
    frame = _runs(args, _filter(args))
    data = factorial.tidy(frame, factors, args.response)
    result = factorial.analyse(data, factors, args.response, args.order, args.typ)
    tables = {"factorial/anova": result.anova, "factorial/one_way": result.one_way}
    figures = {"factorial/main_effects.png": plots.main_effects(data, factors, args.response)}
    if len(factors) >= 2 and args.order >= 2:
        figures["factorial/interactions.png"] = plots.interactions(data, factors, args.response)
    params = {"factors": ",".join(factors), "order": args.order, "typ": args.typ,
              "runs": len(data), "formula": result.formula}  # fmt: skip
    if result.effects is not None:
        tables["factorial/effects"] = result.effects
        margin = result.lenth["margin_of_error"] if result.lenth else None
        figures["factorial/half_normal.png"] = plots.half_normal(result.effects["effect"], margin)
    if result.lenth:
        params.update({f"lenth.{k}": v for k, v in result.lenth.items()})
    _report(args, "factorial", tables, figures, params)
    return result


def run_discriminators(args: argparse.Namespace) -> Any:
    """Load each strategy's best generator and discriminator, generate `--images` images per
    generator from one latent seed, and let every discriminator judge them and real images."""
    import numpy as np

    from tunelab import plots
    from tunelab.compare.discriminators import REAL, judge
    from tunelab.models.common import predict_in_batches
    from tunelab.tracking.runs import load_keras_model

    best = _best_study_per_strategy(args)
    real = _real_images(args, best.iloc[0]["run_id"], args.images)
    generated, judges = {}, {}
    for _, study in best.iterrows():
        strategy = study["tags.tunelab.strategy"]
        generator = load_keras_model(args.tracking_uri, study["tags.tunelab.model_uri.model"])
        latent = np.random.default_rng(args.seed).standard_normal(
            (args.images, generator.input_shape[-1])).astype(np.float32)
        generated[strategy] = predict_in_batches(generator, latent)
        judges[strategy] = load_keras_model(
            args.tracking_uri, study["tags.tunelab.model_uri.discriminator"])
    logits = {d: {name: predict_in_batches(model, images)
                  for name, images in {**generated, REAL: real}.items()}
              for d, model in judges.items()}  # fmt: skip
    result = judge(logits)
    tables = {"discriminators/called_real": result.called_real,
              "discriminators/auc": result.auc, "discriminators/confusion": result.confusion,
              "discriminators/studies": best[["tags.tunelab.strategy", "tags.tunelab.study_id",
                                              f"metrics.{args.response}"]]}  # fmt: skip
    figures = {"discriminators/called_real.png": plots.cross_judgement(result.called_real),
               "discriminators/auc.png": plots.cross_judgement(result.auc, "AUC")}  # fmt: skip
    params = {"strategies": ",".join(best["tags.tunelab.strategy"]), "images": args.images,
              "latent_seed": args.seed, "direction": args.direction}  # fmt: skip
    _report(args, "discriminators", tables, figures, params)
    return result


def _best_study_per_strategy(args: argparse.Namespace) -> Any:
    studies = _runs(args, _filter(args))
    column = f"metrics.{args.response}"
    needed = ["tags.tunelab.model_uri.model", "tags.tunelab.model_uri.discriminator", column]
    missing = [c for c in needed if c not in studies]
    if missing:
        raise ConfigError(f"--experiment: no study run has {missing[0].split('.', 1)[1]!r}; "
                          "cross-discriminator evaluation needs GAN studies that logged their "
                          "best generator and discriminator")  # fmt: skip
    usable = studies.dropna(subset=needed)
    if usable.empty:
        raise ConfigError("--experiment: no finished GAN study logged a generator and a "
                          "discriminator")  # fmt: skip
    ordered = usable.sort_values(column, ascending=args.direction == "min")
    return ordered.groupby("tags.tunelab.strategy", sort=True).head(1).sort_values(
        "tags.tunelab.strategy").reset_index(drop=True)


def _real_images(args: argparse.Namespace, run_id: str, n: int) -> Any:
    """`n` held-out real images (test split, then validation) of the study's own dataset."""
    import numpy as np
    import yaml

    from tunelab import config
    from tunelab.data import load_dataset
    from tunelab.tracking.runs import read_text

    cfg = config.load(yaml.safe_load(read_text(args.tracking_uri, run_id, "config/resolved.yaml")))
    data = load_dataset(cfg.dataset.cls, cfg.dataset.settings, cfg.seed)
    return np.concatenate([data.x_test, data.x_val])[:n]


COMMANDS = {"factorial": run_factorial, "optimisers": run_optimisers,
            "discriminators": run_discriminators, "stages": run_stages_table}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        reachability.check(args.tracking_uri, "--tracking-uri")
        COMMANDS[args.command](args)
    except ConfigError as error:
        print(f"tunelab.compare: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
