"""MkDocs hook: the configuration reference, generated from the schema when the site builds.

Every `model/`, `dataset/` and `strategy/` option of `conf/` is listed with the fields of the
dataclass its `_target_` reads (type from the type hints), the YAML's value at each budget and
the YAML's comment. A field the YAML leaves out fails the build: the YAML is its docs entry.
"""

from __future__ import annotations

import dataclasses
import inspect
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
    parts = [_top_level()]
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


def _field_comments(cls: type) -> dict[str, str]:
    """The comment beside each field of dataclass `cls` (or on the lines just above it)."""
    found, above = {}, []
    for line in inspect.getsource(cls).splitlines():
        if re.match(r"^\s+#", line):
            above.append(line.strip().lstrip("#").strip())
            continue
        match = re.match(r"^\s+([a-z_]\w*): [^=]+=.*?(?:\s#\s?(.*))?$", line)
        if match:
            found[match.group(1)] = match.group(2) or " ".join(above)
        above = []
    return found


def _top_level() -> str:
    """Every top-level key (`tunelab.settings.StudySettings`, which conf/config.yaml extends)
    by its full dotted path, with its type, default and meaning (the comment beside it)."""
    from tunelab.settings import ObjectiveSettings, StudySettings, defaults
    from tunelab.tracking.settings import TrackingSettings

    nested = {"objective": ObjectiveSettings, "tracking": TrackingSettings}
    values = defaults()
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name in typing.get_type_hints(StudySettings):
        if name in GROUPS:
            continue
        holders = [(f"{name}.", nested[name])] if name in nested else [("", StudySettings)]
        for prefix, cls in holders:
            comments = _field_comments(cls)
            hints = typing.get_type_hints(cls)
            keys = [f.name for f in dataclasses.fields(cls)] if prefix else [name]
            for key in keys:
                value = values[name][key] if prefix else values[name]
                text = comments.get(key, "")
                if not text:
                    raise ValueError(f"{cls.__name__}.{key} has no comment: no meaning here")
                meaning = text.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
                shown = f"`{value}`" if isinstance(value, str) else f"`{json.dumps(value)}`"
                rows.append(f"| `{prefix}{key}` | {_type(hints[key])} | {shown} | {meaning} |")
    return (
        "## Top-level keys\n\n`tunelab.settings.StudySettings`, which `conf/config.yaml` "
        "extends: Hydra checks each key's type.\n\n" + "\n".join(rows) + "\n"
    )
