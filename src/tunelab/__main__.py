"""`python -m tunelab [overrides]`: validate the composed config, then run the study.

Hydra composes `conf/`; `--overrides "a=1 b=2"` splices a whole override string in (this is how
`mlflow run -P overrides=...` arrives). Bad config, or a tracking URI where nothing usable
answers, exits 2 with one line before TensorFlow or MLflow is touched, whether the schema finds
it or Hydra cannot compose it; Ctrl-C and SIGTERM leave the study's runs KILLED; a tracking
server that stops answering mid-study exits 1 with one line. `tunelab server …` is
`tunelab.server`'s command, `tunelab cleanup …` is `tunelab.tracking.cleanup`'s, and `tunelab
worker …` (joining a study from any machine) is `tunelab.workers`'s.
"""

from __future__ import annotations

import os
import shlex
import sys
import warnings
from typing import Any

import hydra
from omegaconf import DictConfig

from tunelab import backend, config, interrupts
from tunelab.schema import ConfigError, Renamed, StudyFailed
from tunelab.tracking import reachability


def expand_overrides(argv: list[str]) -> list[str]:
    """Replace `--overrides "a=1 b=2"` with `a=1 b=2`; drop empty arguments."""
    out: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--overrides":
            out.extend(shlex.split(next(args, "")))
        elif arg.startswith("--overrides="):
            out.extend(shlex.split(arg.split("=", 1)[1]))
        elif arg.strip():
            out.append(arg)
    return out


@hydra.main(version_base="1.3", config_path=config.CONF_DIR, config_name="config")
def app(cfg: DictConfig) -> None:
    try:
        study_cfg = config.from_hydra(cfg)
        backend.require_tensorflow()
        reachability.check(study_cfg.tracking.uri)  # seconds, before TensorFlow is imported
        from tunelab.strategies.base import storage_of

        storage = storage_of(study_cfg.strategy.settings)  # Optuna's, if any
        if storage and storage != "memory":
            reachability.check(storage, "strategy.storage")
        if study_cfg.stages:
            from hydra.core.hydra_config import HydraConfig

            from tunelab.stages import run_stages

            summaries = run_stages(study_cfg, list(HydraConfig.get().overrides.task))
        else:
            from tunelab.study import Study

            summary = Study(study_cfg).run()
            if summary is None:  # workers=0: the study waits for workers
                _print_join(study_cfg)
                return
            summaries = [summary]
    except ConfigError as error:
        print(f"tunelab: error: {error}", file=sys.stderr)
        sys.exit(2)
    except StudyFailed as error:
        print(f"tunelab: error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("tunelab: interrupted; the study's open runs are marked KILLED", file=sys.stderr)
        print("         continue it with the same command and resume=true", file=sys.stderr)
        sys.exit(130)
    from tunelab.progress import print_summary

    for summary in summaries:
        print_summary(study_cfg, summary)


def _print_join(cfg: config.StudyConfig) -> None:
    """How a worker on any machine joins the study `workers=0` created."""
    import mlflow

    from tunelab.joining import portable_uri, storage_url
    from tunelab.study import study_folder
    from tunelab.tracking.reachability import masked

    folder = study_folder(cfg.workdir, cfg.study_name, cfg.tracking)
    print(
        f"study {cfg.study_name} is waiting for workers; on any machine that reaches its "
        "storage and tracking server, run:"
    )
    print(
        f"  tunelab worker --study {cfg.study_name} --storage "
        f"'{masked(portable_uri(storage_url(cfg.strategy.settings, folder)))}' "
        f"--tracking-uri '{portable_uri(mlflow.get_tracking_uri())}'"
    )


def warn_in_one_line() -> None:
    """Print a renamed setting's warning as one line, without Python's file and line."""
    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, Renamed):
            print(f"tunelab: warning: {message}", file=sys.stderr)
        else:
            shown(message, category, *args, **kwargs)

    warnings.showwarning = show


def main() -> None:
    if sys.argv[1:2] == ["server"]:  # `tunelab server start | stop | status`
        from tunelab.server import main as server

        sys.exit(server(sys.argv[2:]))
    if sys.argv[1:2] == ["worker"]:  # `tunelab worker --study --storage`: join from anywhere
        from tunelab.workers import main as worker

        sys.exit(worker(sys.argv[2:]))
    if sys.argv[1:3] == ["study", "close"]:  # a study whose workers all died
        from tunelab.workers import main as worker

        sys.exit(worker(sys.argv[2:]))
    if sys.argv[1:2] == ["cleanup"]:  # `tunelab cleanup`: dead processes' RUNNING runs
        from tunelab.tracking.cleanup import main as cleanup

        sys.exit(cleanup(sys.argv[2:]))
    interrupts.stop_on_sigterm()
    warn_in_one_line()
    overrides = expand_overrides(sys.argv[1:])
    sys.argv = [sys.argv[0], *config.opened(overrides)]
    if os.environ.get("HYDRA_FULL_ERROR"):  # the user asked for Hydra's own reports
        app()
        return
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises what it cannot compose instead of printing
    try:
        app()
    except hydra.errors.HydraException as error:
        print(f"tunelab: error: {config.composition_error(error, overrides)}", file=sys.stderr)
        sys.exit(2)
    finally:
        del os.environ["HYDRA_FULL_ERROR"]


if __name__ == "__main__":
    main()
