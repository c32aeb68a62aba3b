"""`tunelab cleanup` (or `python -m tunelab.tracking.cleanup`): runs a dead process left RUNNING
(kill -9, a crash, a machine that went away) become KILLED, with the reason.

Every study and trial run carries `tunelab.process=<host>:<pid>`, the process that writes it
(a resumed study's run takes its new process). A run on this host whose process is gone (or
whose pid now belongs to a process started after the run) is dead; runs of other hosts are left
alone unless `--gone-host` names the host. `resume=true` does this for its own study by itself.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

PROCESS = "tunelab.process"  # <host>:<pid> of the process that writes the run
REASON = "tunelab.failure_reason"
SHARED = "tunelab.shared"  # a study run any of its workers ends, not the process that made it


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Verdict:
    run_id: str
    name: str
    dead: bool
    why: str


def judge(process: str, started_ms: int, gone_hosts: set[str]) -> tuple[bool, str]:
    """Whether the process that wrote a run started at `started_ms` is dead, and why."""
    import psutil

    host, _, pid = process.rpartition(":")
    if host in gone_hosts:
        return True, f"its host {host} is gone (tunelab cleanup --gone-host)"
    if host != socket.gethostname():
        return False, f"written on {host}: run tunelab cleanup there, or name it --gone-host"
    try:
        created = psutil.Process(int(pid)).create_time()
    except (psutil.NoSuchProcess, ValueError):
        return True, f"its process {process} is gone"
    if created * 1000 > started_ms + 1000:  # the pid was reused by a later process
        return True, f"its process {process} is gone (the pid is another process's now)"
    return False, f"its process {process} is alive"


def running_runs(
    client: MlflowClient, experiment_ids: list[str], gone_hosts: set[str]
) -> list[Verdict]:
    """Every RUNNING run of the experiments, each judged dead or alive."""
    runs = client.search_runs(experiment_ids, "attributes.status = 'RUNNING'", max_results=50000)
    verdicts = []
    for run in runs:
        process = run.data.tags.get(PROCESS)
        name = run.data.tags.get("mlflow.runName", "")
        if process is None:
            why = f"no {PROCESS} tag: not a tunelab run, or an older one"
            verdicts.append(Verdict(run.info.run_id, name, False, why))
            continue
        if run.data.tags.get(SHARED) == "true":
            why = "a shared study's run: its workers close it (or tunelab study close)"
            verdicts.append(Verdict(run.info.run_id, name, False, why))
            continue
        dead, why = judge(process, run.info.start_time, gone_hosts)
        verdicts.append(Verdict(run.info.run_id, name, dead, why))
    return verdicts


def kill(client: MlflowClient, verdict: Verdict) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    client.set_tag(verdict.run_id, REASON, f"{verdict.why}; ended by tunelab cleanup, {stamp}")
    client.set_terminated(verdict.run_id, "KILLED")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tunelab cleanup",
        description="Mark runs still RUNNING whose process is dead as KILLED, with the reason "
        "(tag tunelab.failure_reason). Runs of other hosts are left alone unless --gone-host "
        "names their host.",
    )
    p.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else ./mlflow.db")
    p.add_argument(
        "--experiment",
        action="append",
        default=[],
        help="experiment name (repeatable; default: every experiment)",
    )
    p.add_argument(
        "--gone-host",
        action="append",
        default=[],
        help="a host whose processes are all dead (a lost machine; repeatable)",
    )
    p.add_argument("--dry-run", action="store_true", help="list, change nothing")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from tunelab.schema import ConfigError
    from tunelab.tracking import reachability

    try:
        reachability.check(args.tracking_uri, "--tracking-uri")
    except ConfigError as error:
        print(f"tunelab cleanup: error: {error}", file=sys.stderr)
        return 2
    from mlflow.tracking import MlflowClient

    client = MlflowClient(reachability.effective_uri(args.tracking_uri))
    if args.experiment:
        found = {name: client.get_experiment_by_name(name) for name in args.experiment}
        if missing := [name for name, e in found.items() if e is None]:
            names = sorted(e.name for e in client.search_experiments())
            print(
                f"tunelab cleanup: error: --experiment: no experiment {missing[0]!r}; "
                f"there are {', '.join(names)}",
                file=sys.stderr,
            )
            return 2
        ids = [e.experiment_id for e in found.values() if e is not None]
    else:
        ids = [e.experiment_id for e in client.search_experiments()]
    verdicts = running_runs(client, ids, set(args.gone_host))
    for verdict in verdicts:
        if verdict.dead and not args.dry_run:
            kill(client, verdict)
        action = ("KILLED" if not args.dry_run else "would kill") if verdict.dead else "left"
        print(f"{action:10} {verdict.run_id} {verdict.name}: {verdict.why}")
    dead = sum(v.dead for v in verdicts)
    print(f"{len(verdicts)} running, {dead} dead" + (" (dry run)" if args.dry_run else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
