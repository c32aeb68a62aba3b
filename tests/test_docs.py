"""The documentation site builds strictly, its configuration reference follows the schema, and
its tutorials' runnable blocks run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT

sys.path.insert(0, str(PROJECT / "docs" / "hooks"))

import commands_reference  # noqa: E402
import config_reference  # noqa: E402

RUNNABLE = re.compile(r"<!-- runnable -->\s*```(python|bash)\n(.*?)```", re.DOTALL)
STUDY_COMMAND = re.compile(r"^(\s*python -m tunelab)(\s.*)?$")


def test_the_site_builds_strictly(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=PROJECT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "site" / "reference" / "configuration" / "index.html").read_text()
    assert "strategy=hyperband" in page and "max_epochs" in page
    api = (tmp_path / "site" / "reference" / "python-api" / "index.html").read_text()
    assert "best_model_uri" in api and "validation_split" in api


def test_the_configuration_reference_lists_every_setting_of_every_option():
    import dataclasses

    from tunelab.config import CONF_DIR, _import

    text = config_reference.reference()
    for group, attribute in config_reference.GROUPS.items():
        for path in Path(CONF_DIR, group).glob("*.yaml"):
            if "renamed_from:" in path.read_text():  # an old name: listed as one
                assert f"`{group}={path.stem}` (now" in text
                continue
            target = re.search(r"_target_: (\S+)", path.read_text()).group(1)
            settings = getattr(_import(target, "x"), attribute)
            prefix = "hparams." if group == "model" else ""
            for field in dataclasses.fields(settings):
                assert f"`{prefix}{field.name}`" in text, (group, path.stem, field.name)
    top = text.split("## `model`")[0]  # the top-level table: every key by its dotted path
    for key in ("seed", "objective.name", "tracking.experiment", "tracking.retry_seconds"):
        assert f"| `{key}` |" in top, key
    assert "(about 4 minutes) |" in top  # a comment continued on its next line
    assert "&lt;model&gt;-&lt;dataset&gt;" in top  # not swallowed as HTML


def test_the_commands_reference_has_every_tunelab_subcommand_s_help():
    main = (PROJECT / "src" / "tunelab" / "__main__.py").read_text()
    dispatched = {
        " ".join(re.findall(r'"([a-z]+)"', words))
        for words in re.findall(r"sys\.argv\[1:\d\] == \[([^\]]+)\]", main)
    }
    assert dispatched == {"server", "cleanup", "worker", "study close"}
    assert {f"tunelab {command}" for command in dispatched} <= set(commands_reference.COMMANDS)
    page = commands_reference.reference()
    assert page.count("usage: tunelab worker [-h] --study STUDY --storage STORAGE") == 1
    assert "usage: tunelab server [-h] [--state STATE]" in page
    assert "### `python -m tunelab.compare factorial`" in page


def test_a_setting_without_a_yaml_entry_fails_the_build(tmp_path):
    yaml = (PROJECT / "conf" / "strategy" / "random.yaml").read_text()
    (tmp_path / "random.yaml").write_text(yaml.replace("max_trials", "# max_trials"))
    with pytest.raises(ValueError, match="max_trials of RandomSettings is not in the YAML"):
        config_reference._option("strategy", tmp_path / "random.yaml", "Settings")


def steps(text: str) -> list[tuple[str, str]]:
    """A page's runnable blocks in order; consecutive Python blocks are one script, so that a
    block can use what the one before it defined."""
    joined: list[tuple[str, str]] = []
    for language, code in RUNNABLE.findall(text):
        if joined and language == joined[-1][0] == "python":
            joined[-1] = ("python", joined[-1][1] + "\n" + code)
        else:
            joined.append((language, code))
    return joined


def at_smoke_budget(script: str) -> str:
    """A bash block whose study commands (`python -m tunelab …`, not its submodules) run at
    `budget=smoke` unless they set a budget themselves."""
    lines = []
    for line in script.replace("\\\n", " ").splitlines():
        if STUDY_COMMAND.match(line) and "budget=" not in line:
            line += " budget=smoke"
        lines.append(line)
    return "\n".join(lines)


def test_tutorial_commands_run_at_smoke_budget():
    text = """<!-- runnable -->
```bash
python -m tunelab -m strategy=a,b \\
    seed=1
python -m tunelab.compare optimisers --experiment x
python -m tunelab budget=default
```
<!-- runnable -->
```python
a = 1
```
```python
not_run()
```
<!-- runnable -->
```python
print(a)
```
"""
    (bash, script), python = steps(text)
    assert bash == "bash" and python == ("python", "a = 1\n\nprint(a)\n")
    assert at_smoke_budget(script).splitlines() == [
        "python -m tunelab -m strategy=a,b      seed=1 budget=smoke",
        "python -m tunelab.compare optimisers --experiment x",
        "python -m tunelab budget=default",
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "page", sorted((PROJECT / "docs" / "tutorials").glob("*.md")), ids=lambda p: p.stem
)
def test_a_tutorials_runnable_blocks_run(page, tmp_path):
    """Each tutorial's runnable blocks, in order, in a fresh folder, with this Python first on
    PATH; study commands at smoke budget."""
    blocks = steps(page.read_text())
    assert blocks, f"{page.name} has no runnable block"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    for language, code in blocks:
        if language == "bash":
            command = ["bash", "-euo", "pipefail", "-c", at_smoke_budget(code)]
        else:
            (tmp_path / "tutorial.py").write_text(code)
            command = [sys.executable, "tutorial.py"]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{language} block:\n{code}\n{done.stderr[-3000:]}"


PUBLIC_API = {  # object -> whether its example trains (slow)
    "tunelab.api.tune": True,
    "tunelab.api.TuneResult": True,
    "tunelab.keras_tuner.tuners.Tuner": True,
    "tunelab.strategies.base.Strategy": False,
    "tunelab.tasks.base.Task": True,  # imports TensorFlow
    "tunelab.models.common.ModelBuilder": True,
    "tunelab.data.base.DatasetSource": False,
    "tunelab.compare.factorial": True,
    "tunelab.compare.optimisers": True,
}


def public_object(name: str) -> object:
    import importlib

    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=[pytest.mark.slow] if slow else []) for n, slow in PUBLIC_API.items()],
)
def test_each_public_api_docstring_has_arguments_and_an_example_that_runs(
    name, tmp_path, monkeypatch
):
    import doctest

    obj = public_object(name)
    text = obj.__doc__ or ""
    contract = [getattr(obj, m).__doc__ or "" for m in getattr(obj, "__abstractmethods__", ())]
    assert any(w in t for t in [text, *contract] for w in ("Args:", "Attributes:")), name
    assert "Examples:" in text and "+SKIP" not in text, name
    [examples] = doctest.DocTestFinder(recurse=False).find(obj, name, globs={})
    assert len(examples.examples) >= 3, name
    monkeypatch.chdir(tmp_path)  # the examples' ./mlflow.db and .tunelab
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # as a new process: no tracking URI that an earlier test in this one set
    monkeypatch.setattr("mlflow.tracking._tracking_service.utils._tracking_uri", None)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    runner.run(examples, out=report.append)
    assert runner.failures == 0, "".join(report)[-4000:]
