"""Fault injection for the tests: the runner calls `reached(point, count)` at named points, and
a test that sets $TUNELAB_TEST_KILL to `<point>:<count>` (any process) or
`<point>:<count>@<worker>` (one worker) makes the process SIGKILL itself there.

Points: `journaled` (the count-th trial is in the journal, its strategy not told yet) and
`epoch` (an epoch of this process's count-th trial has ended, nothing of it logged yet).
"""

from __future__ import annotations

import os
import signal

from tunelab.local_workers import label

KILL = "TUNELAB_TEST_KILL"


def reached(point: str, count: int) -> None:
    wanted = os.environ.get(KILL)
    if wanted and wanted in (f"{point}:{count}", f"{point}:{count}@{label()}"):
        os.kill(os.getpid(), signal.SIGKILL)
