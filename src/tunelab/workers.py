"""A worker process of a study: it runs trials until the study's strategy has none left.

    tunelab worker --study NAME --storage URL [--tracking-uri URI] [--workdir DIR]
    tunelab study close --study NAME --storage URL [--tracking-uri URI]

joins a study from any machine, with nothing in common with the study's other processes but
the Optuna storage and the tracking server (`tunelab.joining`); the workers `workers=N` starts
on the study's own machine (`tunelab.local_workers`) join the same way.
"""

from __future__ import annotations

import argparse
import os
import sys

from tunelab import backend, config, interrupts, joining
from tunelab.local_workers import GO, WORKER, label
from tunelab.schema import ConfigError, StudyFailed
from tunelab.tracking.cleanup import this_process


def parser(close: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tunelab study close" if close else "tunelab worker",
        description=(
            "Close a study whose workers all died: run any trials left, then log its best "
            "model and summary and end its MLflow run, even if a dead worker claimed that."
            if close
            else "Join a running study from this machine and run its trials until none are left; "
            "the worker that finishes last closes the study. Only the study's Optuna storage "
            "and tracking server are shared."
        ),
    )
    p.add_argument("--study", required=True, help="the study's name (its study_name)")
    p.add_argument(
        "--storage",
        required=True,
        help="the study's Optuna storage, e.g. postgresql://user@host/db",
    )
    p.add_argument(
        "--tracking-uri",
        help="the MLflow tracking server (default: the one the study was created with)",
    )
    p.add_argument(
        "--workdir",
        help="this worker's own scratch folder (default: .tunelab/workers/<host>:<pid>)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """`tunelab worker` (and `tunelab study close`): join a study and run its trials until
    none is left. With `--wait` (the workers `workers=N` starts), first import everything and
    wait for the study's process to say `go` on stdin."""
    interrupts.stop_on_sigterm()
    args = list(argv if argv is not None else sys.argv[1:])
    if WORKER not in os.environ:  # a worker joining without a number: <host>:<pid>
        os.environ[WORKER] = this_process()
    close = args[:1] == ["close"]
    wait = "--wait" in args
    try:
        options = parser(close).parse_args(
            [a for a in (args[1:] if close else args) if a != "--wait"]
        )
        if wait:
            backend.keras()  # TensorFlow's import, while the study's process sets it up
            if sys.stdin.buffer.readline() != GO:  # the study's process stopped first
                return 0
        return _join(options, close)
    except (ConfigError, StudyFailed) as error:
        print(f"tunelab worker: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _join(args: argparse.Namespace, close: bool = False) -> int:
    """Join the study named in the storage: its config, run and versions come from there."""
    backend.require_tensorflow()
    identity = joining.read(args.storage, args.study)
    raw = identity["config"]
    if raw["dataset"].get("given") or raw["dataset"]["name"] == "arrays":  # (before 2026-12-08)
        raise ConfigError(
            f"--study: {args.study!r} trains on arrays its creator passed to "
            "tunelab.tune, which no other process can read; save them to a file "
            "(dataset=npz or table) to take workers"
        )
    tracking = {**raw["tracking"], "uri": args.tracking_uri or identity["tracking_uri"]}
    workdir = args.workdir or f".tunelab/workers/{label()}"
    cfg = config.load(
        {
            **raw,
            "resume": True,
            "quiet": True,
            "workdir": workdir,
            "tracking": tracking,
            "strategy": {**raw["strategy"], "storage": args.storage},
        }
    )
    joining.check_data(identity, joining.data_path(cfg.dataset.settings))
    from tunelab.study import Study

    summary = Study(cfg).work(identity, close=close)
    if summary is not None:
        best = (
            ""
            if summary.best_score is None
            else (f"; best {cfg.objective.name} {summary.best_score:.4f}")
        )
        command = "tunelab study close" if close else "tunelab worker"
        print(
            f"{command}: closed study {cfg.study_name} ({len(summary.trials)} trials"
            f"{best}); MLflow study run {summary.run_id}: {summary.ui_link}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
