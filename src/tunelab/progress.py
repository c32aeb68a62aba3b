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


def print_summary(cfg: Any, summary: Any) -> None:
    """The study's closing table: trials, best objective and values, registry, its run and
    the MLflow UI link (on stderr when quiet)."""
    from rich.table import Table

    table = Table(title=f"study {summary.study_id}", show_header=False)
    failed = sum(r.status == "FAILED" for r in summary.trials)
    pruned = sum(r.status == "PRUNED" for r in summary.trials)
    table.add_row("trials", f"{len(summary.trials)} ({pruned} pruned, {failed} failed)")
    if summary.best_score is not None:
        table.add_row(f"best {cfg.objective.name}", f"{summary.best_score:.4f}")
        table.add_row(
            "best hyperparameters",
            ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in summary.best_values.items()
            ),
        )
    if summary.registered:
        r = summary.registered
        table.add_row("registered", f"{r['name']} v{r['version']} (champion: {r['champion']})")
    table.add_row("MLflow study run", summary.run_id)
    console = Console(stderr=cfg.quiet)
    console.print(table)
    console.print(f"Open in the MLflow UI: {summary.ui_link}", soft_wrap=True)
    if not summary.tracking_uri.startswith("http"):
        console.print(
            f"  (start it with: mlflow ui --backend-store-uri {summary.tracking_uri})",
            soft_wrap=True,
        )
