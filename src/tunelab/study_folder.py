"""A study's own folder: `<workdir>/<store>/<study_name>/`, with its identity and config
(`study.json`), the journal of its finished trials (`trials.jsonl`), the strategy's own state,
checkpoints and the best weights, so that `resume=true` continues it where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, cast

from tunelab import joining
from tunelab.config import StudyConfig, TrackingSettings
from tunelab.files import write_atomically
from tunelab.schema import ConfigError
from tunelab.strategies import Outcome
from tunelab.tracking.reachability import masked


@dataclass
class TrialRecord:
    """One finished trial, as the journal and the best-so-far table keep it."""

    trial_index: int
    trial_id: str
    run_id: str
    status: Literal["COMPLETE", "PRUNED", "FAILED"]
    score: float | None
    epochs_trained: int
    cumulative_epochs: int
    best_so_far: float | None
    wall_time: float
    values: dict[str, Any]
    reason: str = ""  # why a FAILED trial failed

    @property
    def outcome(self) -> Outcome:
        return Outcome(self.status, self.score, self.epochs_trained, self.reason)


TRIAL_COUNT = "strategy.max_trials"  # a resumed study may raise it


def study_folder(workdir: str | Path, study_name: str, tracking: TrackingSettings) -> Path:
    """`<workdir>/<store>/<study_name>`: the folder of the study of that name in its tracking
    store and experiment (`<store>` a hash of both, its `store.json` saying which), so that
    same-named studies in two stores keep apart."""
    import mlflow

    uri = joining.portable_uri(tracking.uri or mlflow.get_tracking_uri())
    key = hashlib.sha256(f"{uri}\n{tracking.experiment}".encode()).hexdigest()[:12]
    store = Path(workdir).resolve() / key
    if not (store / "store.json").exists():
        store.mkdir(parents=True, exist_ok=True)
        described = {"tracking_uri": masked(uri), "experiment": tracking.experiment}
        write_atomically(store / "store.json", json.dumps(described, indent=1))
    return store / study_name


class StudyFolder:
    """The study's work folder (`study_folder`): `study.json` (identity, config),
    `trials.jsonl` (journal)."""

    def __init__(self, cfg: StudyConfig) -> None:
        self.path = study_folder(cfg.workdir, cfg.study_name, cfg.tracking)
        self.meta_file = self.path / "study.json"
        self.journal_file = self.path / "trials.jsonl"
        self.meta: dict[str, Any] = {}
        self.objective = cfg.objective
        self.records: list[TrialRecord] = []
        self.resuming = cfg.resume and self.meta_file.exists()
        self.extended = False  # resumed with more trials than it had
        self.closed_before = False  # resumed after it had finished (extended, or refused)
        if self.resuming:
            self.meta = json.loads(self.meta_file.read_text())
            self.closed_before = bool(self.meta.get("finished"))
            self.extended = _refuse_changed_config(self.meta["fingerprint"], cfg)
            self.meta["fingerprint"] = cfg.fingerprint()
            if self.journal_file.exists():
                lines = self.journal_file.read_text().splitlines()
                self.records = [TrialRecord(**json.loads(line)) for line in lines if line]
        else:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path.mkdir(parents=True)
            self.meta = {
                "study_id": f"{cfg.study_name}-{uuid.uuid4().hex[:8]}",
                "config_hash": cfg.config_hash(),
                "fingerprint": cfg.fingerprint(),
                "finished": False,
            }

    def save(self, **updates: Any) -> None:
        self.meta.update(updates)
        write_atomically(self.meta_file, json.dumps(self.meta, indent=1, default=str))

    def journal(self, record: TrialRecord) -> None:
        self.records.append(record)
        with self.journal_file.open("a") as f:
            f.write(json.dumps(asdict(record), default=str) + "\n")

    def recorded(self, trial_id: str) -> TrialRecord | None:
        return next((r for r in self.records if r.trial_id == trial_id), None)

    def checkpoint(self, trial_id: str) -> Path:
        folder = self.path / "checkpoints"
        folder.mkdir(exist_ok=True)
        return folder / f"{trial_id}.weights.npz"

    def best_weights(self, trial_id: str) -> Path:
        """The weights of a trial that was the best when it finished (the last one of them is
        the study's best; with several workers, any of them may be)."""
        folder = self.path / "best"
        folder.mkdir(exist_ok=True)
        return folder / f"{trial_id}.weights.npz"

    def best_headline(self, trial_id: str) -> Path:
        return self.path / "best" / f"{trial_id}.headline.json"

    def best_record(self) -> TrialRecord | None:
        """The journal's best trial on the study's objective (None before any scored)."""
        return next(iter(self.top_records(1)), None)

    def top_records(self, k: int) -> list[TrialRecord]:
        """The journal's `k` best scored trials, best first (the first of equals first)."""
        scored = [r for r in self.records if r.score is not None]
        sign = self.objective.sign
        return sorted(scored, key=lambda r: -sign * cast(float, r.score))[:k]

    def reload_records(self, lines: list[dict[str, Any]]) -> None:
        """Every worker's journal lines, in the order they were written, renumbered and with
        the running best and epochs counted over them all."""
        self.records = [TrialRecord(**line) for line in lines]
        best, epochs = None, 0
        for index, record in enumerate(self.records):
            epochs += record.epochs_trained
            if record.score is not None and self.objective.better(record.score, best):
                best = record.score
            record.trial_index, record.best_so_far, record.cumulative_epochs = index, best, epochs


def _refuse_changed_config(before: dict[str, Any], cfg: StudyConfig) -> bool:
    """Refuse, naming the keys, a resumed study whose config differs from the one it started
    with; True where the only change is a larger trial count (the study is extended)."""
    a, b = flatten(before), flatten(cfg.fingerprint())
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    raised = [k for k in changed if k == TRIAL_COUNT and _more(b.get(k), a.get(k))]
    refused = [k for k in changed if k not in raised]
    if refused:
        details = "; ".join(f"{cfg.name_of(k)}: {a.get(k)!r} -> {b.get(k)!r}" for k in refused[:8])
        raise ConfigError(
            f"resume: refused, the config differs from the earlier study at {details}. "
            f"Resume with the same settings (only {trial_count(cfg) or 'the trial count'} may "
            "grow), "
            f"or start afresh with {cfg.spell('resume', False)}."
        )
    return bool(raised)


def trial_count(cfg: StudyConfig) -> str | None:
    """The setting that counts this study's trials, as its user names it (`max_trials`,
    `strategy.max_trials`); None for a strategy whose design fixes the count."""
    return cfg.name_of(TRIAL_COUNT) if TRIAL_COUNT in flatten(cfg.fingerprint()) else None


def _more(now: Any, before: Any) -> bool:
    return isinstance(now, int) and isinstance(before, int) and now > before


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as dotted keys (`{"a": {"b": 1}}` is `{"a.b": 1}`)."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}
