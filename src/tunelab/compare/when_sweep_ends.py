"""A Hydra callback that runs the comparison module once a sweep (`-m`) has finished."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback


class CompareWhenSweepEnds(Callback):
    """`hydra.callbacks.compare: {_target_: ...CompareWhenSweepEnds, command: optimisers}`."""

    def __init__(self, command: str = "optimisers", arguments: list[str] | None = None) -> None:
        self.command = command
        self.arguments = list(arguments or [])

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        from tunelab.compare.cli import main

        tracking = ["--tracking-uri", config.tracking.uri] if config.tracking.uri else []
        main([self.command, "--experiment", config.tracking.experiment, *tracking, *self.arguments])
