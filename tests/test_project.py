"""The project's own promises: README commands, CI, lint."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import PROJECT


def readme_commands() -> list[str]:
    text = (PROJECT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in first_block.splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_exactly_two_commands_and_ci_runs_the_test_one_verbatim():
    commands = readme_commands()
    assert len(commands) == 2
    install_and_run, install_and_test = commands
    assert install_and_run.endswith("-m tunelab")
    assert "pytest" in install_and_test
    assert install_and_test in (PROJECT / ".ci" / "run").read_text().splitlines()


def test_ci_treats_no_tests_as_failure():
    assert '"$status" -eq 5' in (PROJECT / ".ci" / "run").read_text()


def test_code_is_ruff_clean():
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "src", "tests", "benchmarks"],
        cwd=PROJECT, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
