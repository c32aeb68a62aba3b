"""The documentation site builds strictly, its configuration reference follows the schema, and
its tutorials' runnable blocks run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT

sys.path.insert(0, str(PROJECT / "docs" / "hooks"))

import commands_reference  # noqa: E402
import config_reference  # noqa: E402

RUNNABLE = re.compile(r"<!-- runnable -->\s*```python\n(.*?)```", re.DOTALL)


def test_the_site_builds_strictly(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d",
                           str(tmp_path / "site")], cwd=PROJECT, capture_output=True,
                          text=True)  # fmt: skip
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
            target = re.search(r"_target_: (\S+)", path.read_text()).group(1)
            settings = getattr(_import(target, "x"), attribute)
            prefix = "hparams." if group == "model" else ""
            for field in dataclasses.fields(settings):
                assert f"`{prefix}{field.name}`" in text, (group, path.stem, field.name)


def test_the_commands_reference_has_every_tunelab_subcommand_s_help():
    main = (PROJECT / "src" / "tunelab" / "__main__.py").read_text()
    dispatched = {" ".join(re.findall(r'"([a-z]+)"', words))
                  for words in re.findall(r"sys\.argv\[1:\d\] == \[([^\]]+)\]", main)}  # fmt: skip
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


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted((PROJECT / "docs" / "tutorials").glob("*.md")),
                         ids=lambda p: p.stem)  # fmt: skip
def test_a_tutorials_runnable_blocks_run(page, tmp_path):
    blocks = RUNNABLE.findall(page.read_text())
    assert blocks, f"{page.name} has no runnable block"
    (tmp_path / "tutorial.py").write_text("\n".join(blocks))
    done = subprocess.run([sys.executable, "tutorial.py"], cwd=tmp_path, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
