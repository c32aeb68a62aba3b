"""A rich progress bar over trials showing the best objective so far.

In Jupyter rich draws it as a widget, which needs `ipywidgets` (`pip install tunelab[notebook]`);
without it, each trial prints one line instead.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tunelab.schema import one_line


class TrialProgress:
    """`with TrialProgress(cfg, expected, done) as bar: bar.advance(record)`; silent if quiet."""

    def __init__(self, cfg: Any, expected: int | None, done: list[Any]) -> None:
        self.objective = cfg.objective.name
        self.console = Console(stderr=True)
        self.lines = not cfg.quiet and self.console.is_jupyter and not _widgets()
        self.expected, self.done = expected, len(done)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[best]}"),
            console=self.console,
            disable=cfg.quiet or self.lines,
        )
        best = done[-1].best_so_far if done else None
        self.task = self.progress.add_task(
            cfg.study_name, total=expected, completed=len(done), best=self._best(best)
        )

    def _best(self, value: float | None) -> str:
        return f"best {self.objective}={value:.4f}" if value is not None else ""

    def advance(self, record: Any) -> None:
        self.progress.update(self.task, advance=1, best=self._best(record.best_so_far))
        self.done += 1
        if self.lines:
            print(
                f"trial {self.done}/{self.expected or '?'} {record.status.lower()}  "
                f"{self._best(record.best_so_far)}",
                flush=True,
            )
        if record.status == "FAILED":
            self.console.print(
                f"trial {record.trial_id} failed: {one_line(record.reason, 200)}",
                style="yellow",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )

    def __enter__(self) -> TrialProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def _widgets() -> bool:
    """Whether ipywidgets, which rich's live display needs in Jupyter, is installed."""
    import importlib.util

    return importlib.util.find_spec("ipywidgets") is not None
