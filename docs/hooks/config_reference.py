"""MkDocs hook: the configuration reference, generated from the schema when the site builds.

Every `model/`, `dataset/` and `strategy/` option of `conf/` is listed with the fields of the
dataclass its `_target_` reads (type from the type hints), the YAML's value at each budget and
the YAML's comment. A field the YAML leaves out fails the build: the YAML is its docs entry.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from pathlib import Path
from typing import Any

MARKER = "<!-- tunelab:config-reference -->"
GROUPS = {"model": "HParams", "dataset": "Settings", "strategy": "Settings"}
BUDGETS = ("smoke", "default", "full")


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, reference())


def reference() -> str:
    from tunelab.config import CONF_DIR

    conf = Path(CONF_DIR)
    parts = [_top_level(conf / "config.yaml")]
    for group, attribute in GROUPS.items():
        parts.append(f"## `{group}`\n")
        renamed = []
        for path in sorted((conf / group).glob("*.yaml")):
            if "renamed_from:" in path.read_text():  # an old name, which runs the new one
                renamed.append(path.stem)
            else:
                parts.append(_option(group, path, attribute))
        if renamed:
            parts.append(_renamed(group, renamed))
    return "\n".join(parts)


def _renamed(group: str, names: list[str]) -> str:
    from tunelab.schema import RENAMED_STRATEGIES

    listed = ", ".join(f"`{group}={n}` (now `{RENAMED_STRATEGIES[n]}`)" for n in names)
    return f"### Old names\n\nThese still work, with a one-line warning: {listed}.\n"


def _comments(path: Path) -> dict[str, str]:
    """`key: value  # comment` lines of a YAML file, by their (indented) key."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^(\s*)([A-Za-z_][\w]*):.*?\s#\s?(.*)$", line)
        if match:
            found[match.group(2)] = match.group(3).strip().replace("|", "\\|")
    return found


def _by_budget(group: str, path: Path) -> dict[str, dict[str, Any]]:
    """The option's values at each budget (an interpolation of another group's key shown as
    written)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import InterpolationResolutionError

    import tunelab.config  # noqa: F401  (registers ${by_budget:...})

    raw = OmegaConf.load(path)
    values = {}
    for budget in BUDGETS:
        root = OmegaConf.create({"budget": budget, group: raw})
        try:
            values[budget] = OmegaConf.to_container(root, resolve=True)[group]
        except InterpolationResolutionError:
            values[budget] = OmegaConf.to_container(root, resolve=False)[group]
    return values


def _cell(values: list[Any]) -> str:
    shown = [f"`{v}`" if not isinstance(v, (dict, list)) or v else "`{}`" for v in values]
    return shown[1] if len(set(shown)) == 1 else " / ".join(shown)


def _option(group: str, path: Path, attribute: str) -> str:
    from tunelab.config import _import

    budgets = _by_budget(group, path)
    default = budgets["default"]
    cls = _import(default["_target_"], f"{group}._target_")
    comments = _comments(path)
    first = path.read_text().splitlines()[0].lstrip("# ")
    rows = [
        "| key | type | value (smoke / default / full) | meaning |",
        "| --- | --- | --- | --- |",
    ]
    settings = getattr(cls, attribute)
    prefix = "hparams." if group == "model" else ""
    container = default.get("hparams", {}) if group == "model" else default
    hints = typing.get_type_hints(settings)
    for field in dataclasses.fields(settings):
        if not field.init:
            continue
        if field.name not in container:
            raise ValueError(
                f"conf/{group}/{path.name}: {field.name} of {settings.__name__} is "
                "not in the YAML, so it has no docs entry; add it with a comment"
            )
        values = [
            (budgets[b].get("hparams", {}) if group == "model" else budgets[b])[field.name]
            for b in BUDGETS
        ]
        kind = _type(hints[field.name])
        rows.append(
            f"| `{prefix}{field.name}` | {kind} | {_cell(values)} | "
            f"{comments.get(field.name, '')} |"
        )
    if group == "model":
        for key in ("training", "space", "tune", "build", "fit"):
            if key in default:
                values = [budgets[b][key] for b in BUDGETS]
                shown = "(a mapping)" if key == "space" else _cell(values)
                rows.append(f"| `{key}` | | {shown} | {comments.get(key, '')} |")
    return f"### `{group}={path.stem}`\n\n{first}\n\n" + "\n".join(rows) + "\n"


def _type(hint: Any) -> str:
    text = str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")
    text = re.sub(r"^Optional\[(.*)\]$", r"\1 | None", text).replace("tunelab.config.", "")
    return text.replace("|", "or")


def _dotted_comments(path: Path) -> dict[str, str]:
    """Every `key: value  # comment` of a YAML file by its dotted key, a comment continued on
    the lines below (`#` alone, indented past the key) joined to it."""
    found: dict[str, str] = {}
    stack: list[tuple[int, str]] = []  # (indent, key) of the keys above this line
    last = None
    for line in path.read_text().splitlines():
        match = re.match(r"^(\s*)([A-Za-z_][\w]*):(.*)$", line)
        if match:
            indent = len(match.group(1))
            stack = [(i, k) for i, k in stack if i < indent] + [(indent, match.group(2))]
            last = ".".join(k for _, k in stack)
            comment = re.search(r"\s#\s?(.*)$", match.group(3))
            found[last] = comment.group(1).strip() if comment else ""
        elif last and re.match(r"^\s{8,}#", line):  # a comment continued under its key
            found[last] = f"{found[last]} {line.strip().lstrip('#').strip()}".strip()
        else:
            last = None
    return found


def _top_level(path: Path) -> str:
    """Every key of conf/config.yaml with its full dotted path, type (from the dataclass that
    holds it), default and meaning (the YAML's comment)."""
    from omegaconf import OmegaConf

    from tunelab.config import StudyConfig
    from tunelab.objective import Objective
    from tunelab.tracking.settings import TrackingSettings

    holders = {"": StudyConfig, "objective.": Objective, "tracking.": TrackingSettings}
    hints = {
        f"{prefix}{name}": hint
        for prefix, cls in holders.items()
        for name, hint in typing.get_type_hints(cls).items()
    }
    hints["tags"] = hints["extra_tags"]  # StudyConfig's name for them
    values = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    comments = _dotted_comments(path)
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key, text in comments.items():
        if key.split(".")[0] in ("defaults", "hydra") or key in ("objective", "tracking"):
            continue
        if key not in hints:
            raise ValueError(f"conf/config.yaml: {key} is held by no dataclass; add it to one")
        value: Any = values
        for part in key.split("."):
            value = value[part]
        if not text:
            raise ValueError(f"conf/config.yaml: {key} has no comment, so no meaning here")
        shown = f"`{json.dumps(value)}`" if not isinstance(value, str) else f"`{value}`"
        meaning = text.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
        rows.append(f"| `{key}` | {_type(hints[key])} | {shown} | {meaning} |")
    return "## Top-level keys (`conf/config.yaml`)\n\n" + "\n".join(rows) + "\n"
