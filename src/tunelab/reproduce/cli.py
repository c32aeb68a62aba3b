"""`python -m tunelab.reproduce [--studies mnist_mlp,cifar_mlp,...] [--budget default] ...`

Runs the presets of the reference studies (conf/experiment/) at one budget, reads the finished
runs back from MLflow, checks each study's claims against our numbers and logs one report per
study (Markdown and HTML) as a run tagged `tunelab.kind=reproduction` in the experiment
`<prefix>-<study>-<budget>`. --parts runs only the named presets; the claims on the others
are not testable. CIFAR-10 studies need a local copy (--cifar10); without one they
are skipped. With --check the exit code is 1 when a claim that the latest earlier reproduction
at this budget reproduced is no longer reproduced.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import uuid
from pathlib import Path
from typing import Any

from tunelab.reproduce import claims
from tunelab.reproduce.references import STUDIES, ReferenceStudy
from tunelab.schema import ConfigError
from tunelab.tracking import reachability

BUDGETS = ("smoke", "default", "full")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m tunelab.reproduce",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument(
        "--studies",
        default=",".join(STUDIES),
        help=f"comma-separated reference studies (default: all: {', '.join(STUDIES)})",
    )
    top.add_argument(
        "--budget",
        choices=BUDGETS,
        default="default",
        help="smoke (plumbing, minutes), default (CPU-sized), full (the reference "
        "scale: needs full MNIST / CIFAR-10 and days on 2 cores)",
    )
    top.add_argument(
        "--parts",
        metavar="PRESETS",
        help="comma-separated presets of the chosen studies to run, e.g. mnist_mlp/hyperband "
        "(default: every part; the rest are reported as not run)",
    )
    top.add_argument(
        "--seeds",
        default="0",
        help="comma-separated seeds of every preset (a sweep preset keeps its own)",
    )
    top.add_argument(
        "--cifar10",
        metavar="PATH",
        help="a local CIFAR-10 (keras .npz or cifar-10-batches-py), passed on as "
        "dataset.path; without it the CIFAR-10 studies are skipped",
    )
    top.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a claim reproduced by the latest earlier reproduction "
        "at this budget is no longer reproduced",
    )
    top.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else ./mlflow.db")
    top.add_argument(
        "--experiment-prefix",
        default="reproduction",
        help="each study's runs and report go to <prefix>-<study>-<budget>",
    )
    top.add_argument(
        "--workdir",
        type=Path,
        default=Path(".tunelab"),
        help="the studies' work folder (caches shared with other studies); "
        "reproduce restarts studies of the presets' names there",
    )
    top.add_argument(
        "--reuse",
        metavar="ID",
        help="report on an earlier reproduction's runs instead of running again",
    )
    top.add_argument(
        "--list", action="store_true", help="print the studies, their parts and claims, and exit"
    )
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        studies = _chosen(args.studies)
        parts = _chosen_parts(args.parts, studies)
        if args.list:
            _print_list(studies)
            return 0
        reachability.check(args.tracking_uri, "--tracking-uri")
        seeds = tuple(_seed(s) for s in args.seeds.split(",") if s.strip())
        regressed = reproduce(args, studies, seeds, parts)
    except ConfigError as error:
        print(f"tunelab.reproduce: error: {error}", file=sys.stderr)
        return 2
    if args.check and regressed:
        print(f"tunelab.reproduce: no longer reproduced: {', '.join(regressed)}", file=sys.stderr)
        return 1
    return 0


def reproduce(
    args: argparse.Namespace, studies: list[ReferenceStudy], seeds: tuple[int, ...], parts: set[str]
) -> list[str]:
    """Run (or reuse) the studies' `parts`, report each study; the claims that regressed, as
    study.claim."""
    from tunelab.reproduce.runner import Reproduction, read_results, run_part

    reproduction = Reproduction(
        id=args.reuse or uuid.uuid4().hex[:8],
        budget=args.budget,
        seeds=seeds,
        tracking_uri=args.tracking_uri,
        experiment_prefix=args.experiment_prefix,
        workdir=args.workdir,
        cifar10=args.cifar10,
    )
    missing: dict[str, str] = {}
    print(
        f"reproduction {reproduction.id} (budget {args.budget}, seeds {', '.join(map(str, seeds))})"
    )
    skipped = {s.name for s in studies if s.needs_cifar10 and not args.cifar10}
    for study in studies:
        if study.name in skipped:
            print(
                f"{study.name}: skipped: CIFAR-10 needs a local copy (--cifar10 PATH); "
                "nothing is faked"
            )
            missing.update({p.preset: "skipped: no --cifar10" for p in study.parts})
            continue
        if args.reuse:
            continue
        print(f"{study.name}:")
        for part in study.parts:
            if part.preset not in parts:
                missing[part.preset] = "not run (not in --parts)"
                continue
            failed = run_part(reproduction, study, part)
            if failed:
                missing[part.preset] = failed
    results = read_results(reproduction, studies, missing)
    regressed = []
    for study in studies:
        if study.name not in skipped:  # a skipped study gets no report
            regressed += [f"{study.name}.{c}" for c in _report(reproduction, study, results, args)]
    return regressed


def _report(
    reproduction: Any, study: ReferenceStudy, results: claims.Results, args: argparse.Namespace
) -> list[str]:
    """Check, report and log one study; the claims that regressed since the previous
    reproduction at this budget (when --check)."""
    from functools import partial

    from tunelab import __version__
    from tunelab.reproduce import report as reports
    from tunelab.reproduce.runner import previous_verdicts
    from tunelab.study import git_commit
    from tunelab.tracking.runs import log_report, read_bytes

    verdicts = claims.check_all(study.claims, results)
    before = previous_verdicts(reproduction, study) if args.check else {}
    command = [
        "python -m tunelab.reproduce",
        f"--studies {study.name}",
        f"--budget {reproduction.budget}",
        f"--seeds {','.join(map(str, reproduction.seeds))}",
    ]
    if args.parts:
        command.append(f"--parts {args.parts}")
    if study.needs_cifar10:
        command.append(f"--cifar10 {shlex.quote(args.cifar10 or 'PATH')}")
    about = {
        "id": reproduction.id,
        "budget": reproduction.budget,
        "seeds": ", ".join(map(str, reproduction.seeds)),
        "version": __version__,
        "commit": git_commit(),
        "command": " ".join(command),
    }
    read_png = partial(read_bytes, reproduction.tracking_uri)
    report = reports.build(study, results, verdicts, about, read_png)
    table = report.claims_table()
    files: dict[str, str | bytes] = {
        "report.md": report.markdown,
        "report.html": report.html,
        "tables/claims.csv": table.to_csv(index=False),
        **report.figures,
    }
    folder = reproduction.folder / study.name  # the same files, beside the studies' logs
    for path, content in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    tags = {
        "tunelab.kind": "reproduction",
        "tunelab.reference": study.name,
        "tunelab.reproduction": reproduction.id,
        "tunelab.budget": reproduction.budget,
        **{f"tunelab.claim.{c.id}": v.status for c, v in verdicts},
    }
    params = {
        "study": study.name,
        "budget": reproduction.budget,
        "seeds": about["seeds"],
        "parts": ",".join(p.preset for p in study.parts),
    }
    run_id = log_report(
        reproduction.tracking_uri,
        reproduction.experiment(study),
        f"reproduction-{study.name}",
        params,
        tags,
        files,
    )
    print(
        f"\n{study.name}: report logged as MLflow run {run_id} "
        f"(experiment {reproduction.experiment(study)}; also {folder / 'report.md'})"
    )
    for claim, verdict in verdicts:
        print(f"  {verdict.status:>14}  {claim.id}: {verdict.numbers}")
    return claims.regressions(before, {c.id: v.status for c, v in verdicts})


def _chosen(names: str) -> list[ReferenceStudy]:
    return [STUDIES[n] for n in _pick("--studies", names, list(STUDIES))]


def _chosen_parts(names: str | None, studies: list[ReferenceStudy]) -> set[str]:
    """The presets to run: those named in --parts, else (none or "") every part of `studies`."""
    presets = [p.preset for s in studies for p in s.parts]
    return set(_pick("--parts", names, presets) if names else presets)


def _pick(flag: str, names: str, valid: list[str]) -> list[str]:
    """The comma-separated `names`, each one of `valid`."""
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in valid]
    if unknown or not chosen:
        raise ConfigError(
            f"{flag}: {unknown[0] if unknown else names!r} is not valid; "
            f"valid choices: {', '.join(valid)}"
        )
    return chosen


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--seeds: {text!r} is not an integer") from None


def _print_list(studies: list[ReferenceStudy]) -> None:
    for study in studies:
        needs = " (needs --cifar10)" if study.needs_cifar10 else ""
        print(f"{study.name}: {study.source}{needs}")
        for part in study.parts:
            print(f"  part  {part.preset}: {part.what}; reference {part.reference}")
        for claim in study.claims:
            print(f"  claim {claim.id}: {claim.text}")
