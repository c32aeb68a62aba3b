"""Run a reference study's presets as `python -m tunelab` processes, each study tagged with the
reproduction's id and its preset, and read what they logged back from MLflow."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunelab.reproduce.claims import Results
from tunelab.reproduce.references import Part, ReferenceStudy

LOG_TAIL = 3  # lines of a failed part's log printed and kept as its reason


@dataclass(frozen=True)
class Reproduction:
    """One `python -m tunelab.reproduce` invocation."""

    id: str
    budget: str
    seeds: tuple[int, ...]
    tracking_uri: str | None
    experiment_prefix: str
    workdir: Path
    cifar10: str | None

    def experiment(self, study: ReferenceStudy) -> str:
        return f"{self.experiment_prefix}-{study.name}-{self.budget}"

    @property
    def folder(self) -> Path:
        return self.workdir / "reproduction" / self.id

    def query(self, study: ReferenceStudy) -> Any:
        """A comparison-module query on the study's experiment, read afresh."""
        from tunelab.compare.reports import Query

        return Query(
            experiment=self.experiment(study),
            tracking_uri=self.tracking_uri,
            refresh=True,
            cache_dir=self.folder / "compare-cache",
        )

    def commands(self, study: ReferenceStudy, part: Part) -> list[tuple[str, list[str]]]:
        """(label, argv) of each process the part runs: one per seed, or one sweep."""
        # Tag values quoted, or Hydra reads an id such as 41270e15 as a float.
        common = [
            f"experiment={part.preset}",
            f"budget={self.budget}",
            "quiet=true",
            f"workdir={self.workdir}",
            f"tracking.experiment={self.experiment(study)}",
            f"+tags.tunelab.reproduction='{self.id}'",
            f"+tags.tunelab.preset='{part.preset}'",
        ]
        if self.tracking_uri:
            common.append(f"tracking.uri={self.tracking_uri}")
        if study.needs_cifar10 and self.cifar10:
            common.append(f"dataset.path={self.cifar10}")
        tunelab = [sys.executable, "-m", "tunelab"]
        if part.sweep:  # the preset's own seeds
            return [(part.preset, [*tunelab, "-m", *common])]
        return [(f"{part.preset} seed {s}", [*tunelab, *common, f"seed={s}"]) for s in self.seeds]


def run_part(reproduction: Reproduction, study: ReferenceStudy, part: Part) -> str | None:
    """Run the part's processes; None, or why it failed (the end of its log)."""
    for label, argv in reproduction.commands(study, part):
        log = reproduction.folder / "logs" / f"{label.replace('/', '-').replace(' ', '-')}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        print(f"  {label} …", end="", flush=True)
        started = time.perf_counter()
        with log.open("w") as out:
            done = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            tail = [line for line in log.read_text().splitlines() if line.strip()][-LOG_TAIL:]
            print(f" failed after {seconds:.0f} s (exit {done.returncode}; log: {log})")
            return f"failed (exit {done.returncode}): {' / '.join(tail)}"
        print(f" done in {seconds:.0f} s")
    return None


def read_results(
    reproduction: Reproduction, studies: list[ReferenceStudy], missing: dict[str, str]
) -> Results:
    """The study runs and finished trial runs of this reproduction, read back from MLflow."""
    import pandas as pd

    from tunelab.schema import ConfigError

    study_frames, trial_frames = [], []
    for study in studies:
        query = reproduction.query(study)
        try:
            found = query.runs(
                f"tags.`tunelab.kind` = 'study' AND "
                f"tags.`tunelab.reproduction` = '{reproduction.id}'"
            )
        except ConfigError:  # nothing of this study ran
            continue
        study_frames.append(found)
        for study_id in found["tags.tunelab.study_id"]:
            trials = query.trials(study_id)
            if "status" in trials:
                trial_frames.append(trials[trials["status"] == "FINISHED"])
    studies_frame = pd.concat(study_frames, ignore_index=True) if study_frames else pd.DataFrame()
    trials_frame = pd.concat(trial_frames, ignore_index=True) if trial_frames else pd.DataFrame()
    pooled = frozenset(p.preset for study in studies for p in study.parts if p.sweep)
    return Results(studies_frame, trials_frame, missing, pooled)


def previous_verdicts(reproduction: Reproduction, study: ReferenceStudy) -> dict[str, str]:
    """The claims' verdicts of the latest earlier reproduction of `study` at this budget."""
    from tunelab.schema import ConfigError

    query = reproduction.query(study)
    try:
        reports = query.runs(
            f"tags.`tunelab.kind` = 'reproduction' AND "
            f"tags.`tunelab.reproduction` != '{reproduction.id}'"
        )
    except ConfigError:
        return {}
    latest: Any = reports.sort_values("start_time").iloc[-1]
    prefix = "tags.tunelab.claim."
    return {
        k.removeprefix(prefix): v
        for k, v in latest.items()
        if k.startswith(prefix) and isinstance(v, str)
    }
