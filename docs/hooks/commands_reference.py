"""MkDocs hook: the command-line reference, generated from each command's own `--help` (its
argparse parser) when the site builds, so that the page and the commands cannot disagree."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

MARKER = "<!-- tunelab:commands-reference -->"
COMMANDS = {  # heading: (module, parser arguments)
    "tunelab worker": ("tunelab.workers", {}),
    "tunelab study close": ("tunelab.workers", {"close": True}),
    "tunelab server": ("tunelab.server", {}),
    "tunelab cleanup": ("tunelab.tracking.cleanup", {}),
    "python -m tunelab.compare": ("tunelab.compare.cli", {}),
    "python -m tunelab.reproduce": ("tunelab.reproduce.cli", {}),
}


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, reference())


def reference() -> str:
    parts = []
    for heading, (module, arguments) in COMMANDS.items():
        parser = importlib.import_module(module).parser(**arguments)
        parts.append(f"## `{heading}`\n\n```text\n{_help(parser, heading)}```\n")
        for name, sub in _subcommands(parser):
            parts.append(f"### `{heading} {name}`\n\n```text\n{_help(sub, heading)}```\n")
    return "\n".join(parts)


def _help(parser: argparse.ArgumentParser, heading: str) -> str:
    parser.prog = parser.prog.replace(parser.prog.split()[0], heading.split()[0], 1)
    return parser.format_help()


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    return [
        (name, sub)
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, sub in action.choices.items()
    ]
