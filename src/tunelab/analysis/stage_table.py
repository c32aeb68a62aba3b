"""A chain of studies stage by stage (e.g. baseline → fractional → full factorial → RSM →
GP-EI): each stage's best objective and its best trial's headline metrics, beside what the
reproduced study claimed for that stage."""

from __future__ import annotations

import pandas as pd

from tunelab.schema import ConfigError


def stage_table(studies: pd.DataFrame) -> pd.DataFrame:
    """One row per stage (its latest study run), in chain order: strategy, trials, every
    `best_*` metric of the study run, and `claimed` where the preset gives one."""
    if studies.empty or "tags.tunelab.stage" not in studies:
        raise ConfigError("no study runs of that chain (tags tunelab.chain / tunelab.stage)")
    latest = studies.sort_values("start_time").groupby("tags.tunelab.stage", as_index=False).last()
    latest = latest.assign(order=latest["tags.tunelab.stage_index"].astype(int))
    latest = latest.sort_values("order")
    best = sorted(c for c in latest if c.startswith("metrics.best_"))
    table = pd.DataFrame(
        {
            "stage": latest["tags.tunelab.stage"],
            "strategy": latest["tags.tunelab.strategy"],
            "trials": latest["metrics.trials"].astype(int),
            **{c.removeprefix("metrics."): latest[c] for c in best},
        }
    )
    if "tags.tunelab.claimed" in latest:
        table["claimed"] = pd.to_numeric(latest["tags.tunelab.claimed"], errors="coerce")
    return table.set_index("stage")
