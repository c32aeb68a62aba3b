"""Each comparison as a function: read the runs a `Query` selects, analyse them with
`tunelab.analysis`, print the tables as Markdown and log everything as a comparison run."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tunelab.objective import Direction
from tunelab.schema import ConfigError

DEFAULT_CACHE = Path(".tunelab/compare-cache")


@dataclass
class Query:
    """Which runs a comparison reads, and where from."""

    experiment: str = "tunelab"
    tracking_uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else ./mlflow.db
    filter: str = ""  # an MLflow search filter
    study: str | None = None  # only the runs of this study id
    response: str | None = None  # the metric analysed; None: best_<the studies' objective>
    cache_dir: Path = DEFAULT_CACHE  # Parquet cache of the runs read
    refresh: bool = False  # query the server again
    export_csv: Path | None = None  # also write the tidy frame of runs here

    @property
    def selection(self) -> str:
        """`filter`, narrowed to `study`."""
        if not self.study:
            return self.filter
        study = f"tags.`tunelab.study_id` = '{self.study}'"
        return f"{self.filter} AND {study}" if self.filter else study

    def runs(self, filter_string: str | None = None) -> Any:
        """The runs of `filter_string` (default: `selection`) as one tidy frame."""
        from tunelab.tracking.runs import runs_frame

        filter_string = self.selection if filter_string is None else filter_string
        frame = runs_frame(
            self.tracking_uri,
            self.experiment,
            filter_string,
            cache_dir=self.cache_dir,
            refresh=self.refresh,
        )
        if self.export_csv and filter_string == self.selection:
            frame.to_csv(self.export_csv, index=False)
        return frame

    def answering(self, frame: Any) -> Query:
        """This query with its response set: as given, else `best_<objective>` of the runs'
        one objective (their `tunelab.objective` tag), refused in one line if they have several."""
        if self.response:
            return self
        column = "tags.tunelab.objective"
        found = sorted(frame[column].dropna().unique()) if column in frame else []
        if len(found) != 1:
            raise ConfigError(
                f"response: the runs have {len(found)} objectives "
                f"({', '.join(found) or 'none tagged'}); name the metric to "
                "analyse, e.g. response=best_val_accuracy"
            )
        return replace(self, response=f"best_{found[0].split(' ')[0]}")

    def direction(self, frame: Any) -> Direction:
        """The direction of the runs' objective (max unless their tag says min)."""
        column = "tags.tunelab.objective"
        tags = frame[column].dropna().unique() if column in frame else []
        return "min" if len(tags) == 1 and str(tags[0]).endswith("(min)") else "max"

    def trials(self, study_id: str) -> Any:
        """The trial runs of one study (MLflow filters have no IN for tags: one query per
        study); an empty frame when the study logged none."""
        import pandas as pd

        try:
            return self.runs(
                f"tags.`tunelab.kind` = 'trial' AND tags.`tunelab.study_id` = '{study_id}'"
            )
        except ConfigError:
            return pd.DataFrame(columns=["tags.tunelab.study_id"])


def _report(query: Query, title: str, tables: dict, figures: dict, params: dict) -> str:
    """Print the tables as Markdown and log everything as a comparison run."""
    from rich.console import Console
    from rich.markdown import Markdown

    from tunelab.tracking.runs import log_comparison

    console = Console()
    for name, table in tables.items():
        console.print(Markdown(f"### {name}\n\n{table.to_markdown(floatfmt='.4g')}"))
    params = {
        "analysis": title,
        "experiment": query.experiment,
        "filter": query.selection,
        "response": query.response,
        **params,
    }
    run_id = log_comparison(
        query.tracking_uri, query.experiment, f"{title}-analysis", params, tables, figures
    )
    console.print(f"logged as MLflow run {run_id} (tag tunelab.kind=comparison)")
    return run_id


def factorial(query: Query, factors: list[str], order: int = 2, typ: int = 2) -> Any:
    """ANOVA, effects and Lenth's PSE of a factorial design; returns the FactorialResult."""
    from tunelab import plots
    from tunelab.analysis import factorial

    runs = query.runs()
    query = query.answering(runs)
    response = str(query.response)
    data = factorial.tidy(runs, factors, response)
    result = factorial.analyse(data, factors, response, order, typ)
    tables = {"factorial/anova": result.anova, "factorial/one_way": result.one_way}
    figures = {"factorial/main_effects.png": plots.main_effects(data, factors, response)}
    if len(factors) >= 2 and order >= 2:
        figures["factorial/interactions.png"] = plots.interactions(data, factors, response)
    params = {
        "factors": ",".join(factors),
        "order": order,
        "typ": typ,
        "runs": len(data),
        "formula": result.formula,
    }
    if result.effects is not None:
        tables["factorial/effects"] = result.effects
        margin = result.lenth["margin_of_error"] if result.lenth else None
        figures["factorial/half_normal.png"] = plots.half_normal(result.effects["effect"], margin)
    if result.lenth:
        params.update({f"lenth.{k}": v for k, v in result.lenth.items()})
    _report(query, "factorial", tables, figures, params)
    return result


def optimisers(
    query: Query,
    direction: Direction | None = None,
    baseline: str = "random",
    target: float | None = None,
) -> Any:
    """Strategies compared over repeated studies (in the direction of their objective unless
    given); returns the comparison (`summary`, `kruskal`, `pairwise`, ... DataFrames)."""
    import pandas as pd

    from tunelab import plots
    from tunelab.analysis import optimisers

    studies = query.runs()
    query = query.answering(studies)
    response = str(query.response)
    direction = direction or query.direction(studies)
    trials = pd.concat([query.trials(study_id) for study_id in studies["tags.tunelab.study_id"]])
    studies = optimisers.with_best_of_trials(studies, trials, response, direction)
    table = optimisers.study_table(studies, response)
    result = optimisers.compare(table, trials, response, direction, baseline, target)
    tables = {
        "optimisers/summary": result.summary,
        "optimisers/kruskal": result.kruskal,
        "optimisers/pairwise": result.pairwise,
        "optimisers/anytime": result.anytime,
        "optimisers/friedman_by_seed": result.friedman,
        "optimisers/paired_by_seed": result.paired,
        "optimisers/studies": table,
    }
    figures = {}
    for task, group in table.groupby("task"):
        slug = task.replace("/", "-")
        figures[f"optimisers/best_per_study_{slug}.png"] = plots.strategy_boxes(
            group, response, task
        )
        if result.curves[task]:
            figures[f"optimisers/best_so_far_{slug}.png"] = plots.best_so_far_bands(
                result.curves[task], response, task
            )
            figures[f"optimisers/best_so_far_time_{slug}.png"] = plots.best_so_far_bands(
                result.time_curves[task], response, task, axis="wall time since start (s)"
            )
    params = {
        "studies": len(table),
        "tasks": table["task"].nunique(),
        "strategies": ",".join(sorted(table["strategy"].unique())),
        "baseline": baseline,
        "target": target,
    }
    if len(table["task"].unique()) == 1:
        params.update(
            {f"kruskal.{k}": v for k, v in result.kruskal.iloc[0].items()}
            if len(result.kruskal)
            else {}
        )
        params.update(
            {f"friedman.{k}": v for k, v in result.friedman.iloc[0].items()}
            if len(result.friedman)
            else {}
        )
    across = result.across_tasks
    if across is not None:
        tables["optimisers/ranks_by_task"] = across.ranks
        tables["optimisers/average_ranks"] = across.average_ranks.to_frame("average_rank")
        if across.friedman is not None and across.critical_difference is not None:
            params.update({f"tasks.friedman.{k}": v for k, v in across.friedman.items()})
            params["tasks.nemenyi_cd"] = across.critical_difference
            tables["optimisers/nemenyi"] = across.nemenyi
            figures["optimisers/critical_difference.png"] = plots.critical_difference(
                across.average_ranks, across.nemenyi, across.critical_difference
            )
    _report(query, "optimisers", tables, figures, params)
    return result


def stages(query: Query, chain: str) -> str:
    """A chain of studies stage by stage, beside the reproduced study's claims; returns the
    comparison run's id."""
    from tunelab import plots
    from tunelab.analysis.stage_table import stage_table

    of_chain = f"tags.`tunelab.chain` = '{chain}'"
    studies = query.runs(f"{query.selection} AND {of_chain}" if query.selection else of_chain)
    table = stage_table(studies)
    response = (
        str(query.response)
        if query.response in table
        else next(c for c in table if c.startswith("best_") and not c.startswith("best_trial_"))
    )
    figures = {"stages/by_stage.png": plots.stages(table, response)}
    params = {"chain": chain, "stages": len(table), "response": response}
    return _report(query, "stages", {"stages/table": table}, figures, params)


def discriminators(
    query: Query, direction: Direction = "min", images: int = 1500, seed: int = 0
) -> Any:
    """Load each strategy's best generator and discriminator, generate `images` images per
    generator from one latent seed, and let every discriminator judge them and real images."""
    import numpy as np

    from tunelab import plots
    from tunelab.analysis.discriminators import REAL, judge
    from tunelab.backend import predict_in_batches
    from tunelab.tracking.runs import load_keras_model

    query = query.answering(query.runs())
    best = _best_study_per_strategy(query, direction)
    real = _real_images(query, best.iloc[0]["run_id"], images)
    generated, judges = {}, {}
    for _, study in best.iterrows():
        strategy = study["tags.tunelab.strategy"]
        generator = load_keras_model(query.tracking_uri, study["tags.tunelab.model_uri.model"])
        latent = (
            np.random.default_rng(seed)
            .standard_normal((images, generator.input_shape[-1]))
            .astype(np.float32)
        )
        generated[strategy] = predict_in_batches(generator, latent)
        judges[strategy] = load_keras_model(
            query.tracking_uri, study["tags.tunelab.model_uri.discriminator"]
        )
    logits = {
        d: {
            name: predict_in_batches(model, batch)
            for name, batch in {**generated, REAL: real}.items()
        }
        for d, model in judges.items()
    }
    result = judge(logits)
    tables = {
        "discriminators/called_real": result.called_real,
        "discriminators/auc": result.auc,
        "discriminators/confusion": result.confusion,
        "discriminators/studies": best[
            ["tags.tunelab.strategy", "tags.tunelab.study_id", f"metrics.{query.response}"]
        ],
    }
    figures = {
        "discriminators/called_real.png": plots.cross_judgement(result.called_real),
        "discriminators/auc.png": plots.cross_judgement(result.auc, "AUC"),
    }
    params = {
        "strategies": ",".join(best["tags.tunelab.strategy"]),
        "images": images,
        "latent_seed": seed,
        "direction": direction,
    }
    _report(query, "discriminators", tables, figures, params)
    return result


def _best_study_per_strategy(query: Query, direction: Direction) -> Any:
    studies = query.runs()
    column = f"metrics.{query.response}"
    needed = ["tags.tunelab.model_uri.model", "tags.tunelab.model_uri.discriminator", column]
    missing = [c for c in needed if c not in studies]
    if missing:
        raise ConfigError(
            f"--experiment: no study run has {missing[0].split('.', 1)[1]!r}; "
            "cross-discriminator evaluation needs GAN studies that logged their "
            "best generator and discriminator"
        )
    usable = studies.dropna(subset=needed)
    if usable.empty:
        raise ConfigError(
            "--experiment: no finished GAN study logged a generator and a discriminator"
        )
    ordered = usable.sort_values(column, ascending=direction == "min")
    return (
        ordered.groupby("tags.tunelab.strategy", sort=True)
        .head(1)
        .sort_values("tags.tunelab.strategy")
        .reset_index(drop=True)
    )


def _real_images(query: Query, run_id: str, n: int) -> Any:
    """`n` held-out real images (test split, then validation) of the study's own dataset."""
    import numpy as np
    import yaml

    from tunelab import config
    from tunelab.data import load_dataset
    from tunelab.tracking.runs import read_text

    text = read_text(query.tracking_uri, run_id, "config/resolved.yaml")
    cfg = config.load(yaml.safe_load(text))
    data = load_dataset(cfg.dataset.cls, cfg.dataset.settings, cfg.seed)
    return np.concatenate([data.x_test, data.x_val])[:n]
