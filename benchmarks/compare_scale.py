"""The comparison module against a raw paginated `search_runs`, on 10,000 runs, side by side.

Logs N synthetic trial runs (7 two-level factors and a seed as params; three metrics; no
training) into a SQLite store, serves it with a local `mlflow server`, then times over HTTP:
a raw paginated `MlflowClient.search_runs` with pages of 1,000 and with the largest page the
server allows, `python -m tunelab.compare factorial` reading the runs afresh (`--refresh`),
and the same analysis again from its Parquet cache, all in one process with the imports done
beforehand. Prints absolute times and the ratios.

    python benchmarks/compare_scale.py                  # 10,000 runs
    python benchmarks/compare_scale.py --runs 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tunelab.server import start_mlflow_server

FACTORS = ["a", "b", "c", "d", "e", "f", "g"]
EXPERIMENT = "compare-scale"


def log_synthetic_runs(store_uri: str, runs: int, seed: int = 0) -> None:
    """Trial runs whose response has known main effects (a, b) and one interaction (a:c)."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store_uri)
    experiment_id = client.create_experiment(EXPERIMENT)
    rng = np.random.default_rng(seed)
    levels = rng.choice([-1, 1], size=(runs, len(FACTORS)))
    now = int(time.time() * 1000)
    for i, row in enumerate(levels):
        a, b, c = row[:3]
        accuracy = 0.9 + 0.02 * a - 0.01 * b + 0.005 * a * c + rng.normal(0, 0.005)
        run_id = client.create_run(
            experiment_id, tags={"tunelab.kind": "trial", "tunelab.study_id": "scale"}
        ).info.run_id
        params = [Param(f, str(v)) for f, v in zip(FACTORS, row, strict=True)]
        metrics = [
            Metric("best_val_accuracy", accuracy, now, 0),
            Metric("test_accuracy", accuracy - 0.01, now, 0),
            Metric("wall_time_s", float(rng.uniform(5, 50)), now, 0),
        ]
        client.log_batch(run_id, metrics=metrics, params=[*params, Param("seed", str(i))])
        client.set_terminated(run_id)


def raw_search(uri: str, page_size: int) -> int:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    count, token = 0, None
    while True:
        page = client.search_runs(
            [experiment_id],
            "tags.`tunelab.kind` = 'trial'",
            max_results=page_size,
            page_token=token,
        )
        count += len(page)
        token = page.token
        if not token:
            return count


def analysis(uri: str, cache: Path, refresh: bool) -> None:
    from tunelab.compare.cli import main

    arguments = [
        "factorial",
        "--tracking-uri",
        uri,
        "--experiment",
        EXPERIMENT,
        "--factors",
        ",".join(FACTORS),
        "--order",
        "2",
        "--cache-dir",
        str(cache),
    ]
    if main([*arguments, *(["--refresh"] if refresh else [])]) != 0:
        raise SystemExit("the analysis failed")


def warm_imports() -> None:
    """Import what the analysis uses once, so neither timing pays Python's import costs."""
    import matplotlib.figure  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import rich.console  # noqa: F401
    import statsmodels.formula.api  # noqa: F401
    import tunelab.compare.factorial  # noqa: F401

    import tunelab.plots  # noqa: F401


def timed(action, *args) -> float:  # noqa: ANN001
    start = time.perf_counter()
    action(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    from mlflow.store.tracking import SEARCH_MAX_RESULTS_THRESHOLD

    from tunelab.tracking.runs import PAGE_SIZE

    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "server"
        store.mkdir()
        start = time.perf_counter()
        log_synthetic_runs(f"sqlite:///{store / 'mlflow.db'}", args.runs)
        print(f"logged {args.runs} runs in {time.perf_counter() - start:.0f} s")
        server, uri = start_mlflow_server(store)
        try:
            assert raw_search(uri, 1000) == args.runs
            small = timed(raw_search, uri, 1000)
            large = timed(raw_search, uri, SEARCH_MAX_RESULTS_THRESHOLD)
            cache = Path(folder) / "cache"
            warm_imports()
            with open("/dev/null", "w") as quiet:  # the tables, printed, are not what we time
                stdout, sys.stdout = sys.stdout, quiet
                try:
                    fresh = timed(analysis, uri, cache, True)
                    cached = timed(analysis, uri, cache, False)
                finally:
                    sys.stdout = stdout
        finally:
            server.terminate()
            server.wait(timeout=30)
    best = min(small, large)
    print(f"{'':<44}{'seconds':>9}{'x best raw':>12}")
    for name, seconds in (
        ("raw search_runs, pages of 1,000", small),
        (f"raw search_runs, pages of {SEARCH_MAX_RESULTS_THRESHOLD:,}", large),
        (f"compare factorial, fresh (pages of {PAGE_SIZE:,})", fresh),
        ("compare factorial, from the Parquet cache", cached),
    ):
        print(f"{name:<44}{seconds:>9.2f}{seconds / best:>12.2f}")
    print(f"targets: fresh <= 1.2 x best raw ({fresh / best:.2f}), cached <= 1 s ({cached:.2f})")


if __name__ == "__main__":
    main()
