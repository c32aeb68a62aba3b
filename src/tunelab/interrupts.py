"""SIGTERM stops a study as Ctrl-C does, even when a library swallows the interrupt.

The handler raises `KeyboardInterrupt` in whatever Python code runs when the signal lands. If
that code belongs to TensorFlow, Keras or MLflow, the exception can be swallowed (a `__del__`)
or turned into another error (a failing trial). So the handler also remembers the signal, and
the study checks at every epoch and every trial whether one has arrived.
"""

from __future__ import annotations

import signal
from typing import Any

_received: int | None = None


def stop_on_sigterm() -> None:
    """SIGTERM raises `KeyboardInterrupt` in this (the main) thread, and is remembered."""
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: Any) -> None:
    global _received
    _received = signum
    raise KeyboardInterrupt(f"signal {signum}")


def requested() -> bool:
    """Whether a SIGTERM arrived, wherever its `KeyboardInterrupt` went."""
    return _received is not None


def check() -> None:
    """Raise `KeyboardInterrupt` again if a SIGTERM arrived (it may have been swallowed)."""
    if _received is not None:
        raise KeyboardInterrupt(f"signal {_received}")
