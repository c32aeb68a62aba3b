"""Many writer processes logging short fake trials to one MLflow server, and reading them back:
shared by `tests/test_server.py` (every run complete) and `benchmarks/tracking_load.py` (how
fast)."""

from __future__ import annotations

import multiprocessing
import time

import numpy as np

PARAMS, METRICS, STEPS = 8, 10, 5


def write(
    uri: str, experiment_id: str, parent: str, writer: int, trials: int
) -> tuple[list[float], float, float]:
    """Log `trials` fake trials; the latency of every request, and when the first started and
    the last ended (wall clock, so that process start-up is not counted)."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    latencies = []

    def timed(call, *args, **kwargs):
        started = time.perf_counter()
        result = call(*args, **kwargs)
        latencies.append(time.perf_counter() - started)
        return result

    first = time.time()
    for trial in range(trials):
        tags = {
            "mlflow.parentRunId": parent,
            "tunelab.kind": "trial",
            "tunelab.trial_key": f"{writer}/{trial}",
        }
        run = timed(client.create_run, experiment_id, run_name=f"w{writer}-t{trial}", tags=tags)
        run_id = run.info.run_id
        params = [Param(f"p{i}", str(trial * i)) for i in range(PARAMS)]
        now = int(time.time() * 1000)
        metrics = [
            Metric(f"m{i}", float(step + i), now, step)
            for i in range(METRICS)
            for step in range(STEPS)
        ]
        timed(client.log_batch, run_id, params=params, metrics=metrics)
        timed(client.set_terminated, run_id, "FINISHED")
    return latencies, first, time.time()


def load(uri: str, experiment_id: str, parent: str, writers: int, trials: int) -> dict:
    per_writer = trials // writers
    with multiprocessing.get_context("spawn").Pool(writers) as pool:
        results = pool.starmap(
            write, [(uri, experiment_id, parent, w, per_writer) for w in range(writers)]
        )
    wall = max(end for _, _, end in results) - min(first for _, first, _ in results)
    latencies = np.concatenate([np.array(r) for r, _, _ in results])
    return {
        "writers": writers,
        "trials": per_writer * writers,
        "requests": len(latencies),
        "wall": wall,
        "rps": len(latencies) / wall,
        "p50": float(np.percentile(latencies, 50) * 1000),
        "p99": float(np.percentile(latencies, 99) * 1000),
    }


def read_back(uri: str, experiment_id: str, parent: str, expected: int) -> int:
    """How many complete trial runs the server holds (every param, every metric's history)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    complete, token = 0, None
    while True:
        page = client.search_runs(
            [experiment_id],
            f"tags.`mlflow.parentRunId` = '{parent}'",
            max_results=50_000,
            page_token=token,
        )
        for run in page:
            complete += (
                run.info.status == "FINISHED"
                and len(run.data.params) == PARAMS
                and len(run.data.metrics) == METRICS
            )
        token = page.token
        if not token:
            break
    sample = client.search_runs(
        [experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'", max_results=20
    )
    for run in sample:  # the histories too, for a sample of runs
        assert len(client.get_metric_history(run.info.run_id, "m0")) == STEPS
    assert complete == expected, f"{complete} of {expected} runs read back complete"
    return complete
