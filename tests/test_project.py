"""The project's own promises: README commands, CI, hooks, a wheel that runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
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


def test_ci_installs_the_chromium_the_browser_test_drives():
    ci = (PROJECT / ".ci" / "run").read_text()
    assert ci.index("apt-get install -y chromium") < ci.index("python -m pytest")


def tunelab_imports() -> dict[str, set[str]]:
    """Each tunelab module and the tunelab modules it imports, at the top or inside a function
    (but not under `if TYPE_CHECKING:`), its own parent packages left out."""
    import ast

    source = PROJECT / "src"
    modules = {}
    for path in source.rglob("*.py"):
        parts = path.relative_to(source).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        typing_only = {
            id(node)
            for branch in ast.walk(tree)
            if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.unparse(branch.test)
            for node in ast.walk(branch)
        }
        imported = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
        graph[name] = {
            m for m in imported & set(modules) if m != name and not name.startswith(f"{m}.")
        }
    return graph


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle in `graph` (a depth-first search), or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target, [*path, target])):
                return cycle
        state[node] = "done"
        return None

    return next((c for n in sorted(graph) if n not in state and (c := visit(n, [n]))), None)


def package_imports(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph folded onto tunelab's packages (`tunelab.tasks.base` is
    `tunelab.tasks`; a top-level module stands for itself), without self-imports."""

    def package(module: str) -> str:
        parts = module.split(".")
        nested = len(parts) > 2 or (PROJECT / "src" / Path(*parts) / "__init__.py").exists()
        return ".".join(parts[:2]) if nested else module

    folded: dict[str, set[str]] = {}
    for module, targets in graph.items():
        folded.setdefault(package(module), set())
        for target in targets:
            folded.setdefault(package(target), set())
            if package(target) != package(module):
                folded[package(module)].add(package(target))
    return folded


def test_tunelab_has_no_import_cycle_between_modules_or_packages():
    assert import_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    graph = tunelab_imports()
    assert {"tunelab.workers", "tunelab.study"} <= graph.keys()
    assert "tunelab.study" in graph["tunelab.workers"]  # imports inside functions count
    assert import_cycle(graph) is None
    packages = package_imports(graph)
    assert "tunelab.tasks" in packages["tunelab.models"]  # a family names its task
    assert import_cycle(packages) is None


BOTTOM = {"tunelab.logged", "tunelab.objective", "tunelab.plots", "tunelab.schema"}


def test_tracking_imports_nothing_above_it():
    """The tracker logs plain containers (`tunelab.logged`) and knows the objective; it never
    imports the config, the tasks, the models or the runner."""
    packages = package_imports(tunelab_imports())
    assert packages["tunelab.tracking"] <= BOTTOM, packages["tunelab.tracking"] - BOTTOM
    for module in BOTTOM:
        assert packages[module] <= BOTTOM, (module, packages[module] - BOTTOM)


def test_code_is_ruff_clean():
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "src", "tests", "benchmarks"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_test_command_runs_the_lint_format_and_type_hooks():
    config = (PROJECT / ".pre-commit-config.yaml").read_text()
    assert "pre-commit run --all-files" in readme_commands()[1]
    for entry in ("entry: ruff check", "entry: ruff format --check", "entry: mypy"):
        assert entry in config
    assert "repo: local" in config and "language: system" in config  # offline


@pytest.mark.slow
def test_a_wheel_installed_outside_the_repo_runs_a_study(tmp_path):
    """conf/ travels inside the wheel: installed into a fresh venv (the dependencies borrowed
    from this one, tunelab itself only from the wheel) and run from a folder outside the repo."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing but the wheel
    source = tmp_path / "source"  # setuptools builds in the source tree: a copy keeps it clean
    shutil.copytree(
        PROJECT,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", ".tunelab", "mlruns", "build", "*.egg-info", "__pycache__", "*_cache"
        ),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
        ],
        check=True,
        capture_output=True,
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run(
        [python, "-c", purelib], capture_output=True, text=True, check=True
    ).stdout.strip()
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (wheel,) = (tmp_path / "dist").glob("tunelab-*.whl")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "-q",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [python, "-c", "import tunelab; print(tunelab.__file__)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    assert where.startswith(str(venv))
    out = subprocess.run(
        [
            python,
            "-m",
            "tunelab",
            "budget=smoke",
            "dataset=digits",
            "strategy=random",
            "strategy.max_trials=1",
            "quiet=true",
            f"workdir={elsewhere / 'work'}",
            f"tracking.uri=sqlite:///{elsewhere / 'mlflow.db'}",
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "MLflow study run" in out.stderr  # quiet=true: the summary goes to stderr
