"""`python -m tunelab.workers [--wait] <study folder>`: a worker process of a study.

`tunelab.local_workers` starts these for `workers=N`; a worker started by hand joins a running
study the same way.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import yaml

from tunelab import backend, config, interrupts
from tunelab.local_workers import CONFIG, GO, WORKER
from tunelab.schema import ConfigError, StudyFailed
from tunelab.study import Study


def main(argv: list[str] | None = None) -> int:
    """`python -m tunelab.workers <study folder>`: run trials of that study until its strategy
    has none left. With `--wait` (the coordinator's own workers), first import everything and
    wait for the coordinator's `go` on stdin; without it, the study must be running."""
    interrupts.stop_on_sigterm()
    args = argv if argv is not None else sys.argv[1:]
    wait = args[:1] == ["--wait"]
    (folder,) = args[1:] if wait else args
    if WORKER not in os.environ:  # a worker joining without a number: <host>:<pid>
        os.environ[WORKER] = f"{socket.gethostname()}:{os.getpid()}"
    try:
        raw = yaml.safe_load((Path(folder) / CONFIG).read_text())
        cfg = config.load({**raw, "resume": True, "quiet": True})
        if wait:
            backend.keras()  # TensorFlow's import, while the coordinator sets the study up
            if sys.stdin.buffer.readline() != GO:  # the coordinator stopped first
                return 0
        Study(cfg).work()
    except (ConfigError, StudyFailed) as error:
        print(f"tunelab.workers: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
