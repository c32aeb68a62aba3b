"""Chains of studies: an experiment preset's `stages` run one after another.

Each stage is the preset with its own overrides (`strategy=full_factorial`, ...) and study name
`<study_name>-<stage>`. A stage with `analyse: true` is followed by the factorial ANOVA of its
trials (logged as a comparison run); a later stage with `factors_from: <stage>` tunes only the
`top` factors that ANOVA found most significant, the others held at that stage's best trial's
values, as the CIFAR design study does: screening fraction → full factorial → response surface
and GP-EI over the three strongest factors. With `resume=true` a chain keeps the stages that
had finished and resumes the one that was interrupted.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from tunelab import config
from tunelab.config import Stage, StudyConfig
from tunelab.files import write_atomically
from tunelab.schema import ConfigError


def stage_config(
    cfg: StudyConfig,
    overrides: list[str],
    stage: Stage,
    tune: list[str] | None = None,
    held: dict[str, Any] | None = None,
) -> StudyConfig:
    """The study config of `stage`: the command line, the stage's overrides, its own name;
    optionally only `tune` tuned, and `held` hyperparameters fixed at the given values."""
    extra = ["stages=[]", f"study_name={cfg.study_name}-{stage.name}"]
    if tune is not None:
        extra.append(f"model.tune=[{','.join(tune)}]")
    extra += [f"model.hparams.{name}={_override_value(v)}" for name, v in (held or {}).items()]
    try:
        return config.compose([*overrides, *stage.overrides, *extra])
    except ConfigError as error:
        raise ConfigError(f"stages.{stage.name}: {error}") from None
    except Exception as error:  # Hydra's own errors: a bad override in the stage
        raise ConfigError(f"stages.{stage.name}.overrides: {error}") from None


def run_stages(cfg: StudyConfig, overrides: list[str], report: Any = print) -> list[Any]:
    """Check every stage's config, then run them in order; returns their study summaries."""
    from tunelab.study import Study

    planned = [stage_config(cfg, overrides, stage) for stage in cfg.stages]
    ranked: dict[str, list[str]] = {}
    best: dict[str, dict[str, Any]] = {}
    summaries = []
    ran = False  # a resumed chain that had finished logs no second table
    for index, (stage, stage_cfg) in enumerate(zip(cfg.stages, planned, strict=True)):
        if stage.factors_from:
            tune = stage.tune or ranked[stage.factors_from][: stage.top]
            held = {
                k: v
                for k, v in best[stage.factors_from].items()
                if k not in tune and not stage_cfg.model.is_inert(k)
            }
            why = (
                f"; holding stage {stage.factors_from}'s"
                if stage.tune
                else f", the most significant factors of stage {stage.factors_from}; holding its"
            )
            report(
                f"stage {stage.name}: tuning {', '.join(tune)}{why} best trial's "
                f"{', '.join(f'{k}={v}' for k, v in held.items()) or 'nothing'}"
            )
            stage_cfg = stage_config(cfg, overrides, stage, tune, held)
        tags = {**stage_cfg.extra_tags, **_chain_tags(cfg, stage, index)}
        stage_cfg = dataclasses.replace(stage_cfg, extra_tags=tags)
        study = Study(stage_cfg)
        summary = study.finished_summary()
        if summary is None:
            summary = study.run()
            assert summary is not None, "a stage is one process's study (workers >= 1)"
            ran = True
        else:
            report(f"stage {stage.name}: finished before (study {summary.study_id}); kept")
        summaries.append(summary)
        if stage.analyse:
            ranked[stage.name] = _ranking(study, summary, stage.order, stage.responses)
            best[stage.name] = dict(summary.best_values or {})
    if ran:
        tabulate(cfg, summaries[-1].tracking_uri)
    return summaries


def _chain_tags(cfg: StudyConfig, stage: Stage, index: int) -> dict[str, str]:
    """What `compare stages` finds a chain's studies by, in order, with the claimed values."""
    tags = {
        "tunelab.chain": cfg.study_name,
        "tunelab.stage": stage.name,
        "tunelab.stage_index": str(index),
    }
    if stage.claimed is not None:
        tags["tunelab.claimed"] = str(stage.claimed)
    return tags


def _override_value(value: Any) -> str:
    """A Python value as Hydra override text."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    return repr(value) if isinstance(value, (int, float)) else f"'{value}'"


def _ranking(study: Any, summary: Any, order: int, responses: list[str]) -> list[str]:
    """The stage's factors by significance for its objective, analysed once and kept in its
    study folder (a resumed chain reads them back instead of logging the analysis again);
    `responses` are analysed too, each a comparison run of its own."""
    kept = study.folder.path / "ranked_factors.json"
    if kept.exists():
        return json.loads(kept.read_text())
    ranking = analyse(study.cfg, summary, order)
    for response in responses:
        analyse(study.cfg, summary, order, response)
    write_atomically(kept, json.dumps(ranking))
    return ranking


def analyse(cfg: StudyConfig, summary: Any, order: int, response: str | None = None) -> list[str]:
    """Factorial ANOVA of a finished stage (a comparison run) of `response` (default: the best
    objective); its factors, strongest first."""
    from tunelab.analysis.factorial import ranked_factors
    from tunelab.compare import reports

    factors = [f"coded.{name}" for name in cfg.model.space.names]
    query = _query(
        cfg,
        summary.tracking_uri,
        FINISHED_TRIALS,
        study=summary.study_id,
        response=response or f"best_{cfg.objective.name}",
    )
    result = reports.factorial(query, factors, order)
    return [name.removeprefix("coded.") for name in ranked_factors(result, factors)]


def tabulate(cfg: StudyConfig, tracking_uri: str) -> str:
    """The chain's table, stage by stage (a comparison run); returns its run id."""
    from tunelab.compare import reports

    return reports.stages(
        _query(cfg, tracking_uri, "tags.`tunelab.kind` = 'study'"), cfg.study_name
    )


FINISHED_TRIALS = "tags.`tunelab.kind` = 'trial' AND attributes.status = 'FINISHED'"


def _query(cfg: StudyConfig, tracking_uri: str, filter_string: str, **selection: Any) -> Any:
    """The runs of this chain's experiment, read afresh."""
    from tunelab.compare.reports import Query

    return Query(
        experiment=cfg.tracking.experiment,
        tracking_uri=tracking_uri,
        filter=filter_string,
        cache_dir=Path(cfg.workdir) / "compare-cache",
        refresh=True,
        **selection,
    )
