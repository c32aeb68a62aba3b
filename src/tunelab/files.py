"""State files that survive `kill -9` (written to a temporary file, then renamed over), and
a lock file that local worker processes take turns on."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def write_atomically(path: str | Path, text: str) -> None:
    """Replace `path` with `text` in one step: readers see the old or the new file, never half."""
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


@contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) while the block runs; the kernel
    releases it if the process dies."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
