"""Many writers on one PostgreSQL-backed MLflow server (`tunelab server`), side by side.

Starts `tunelab server` in a temporary state folder, then logs short fake trials (no training:
a child run under one study run, 8 params, 10 metrics over 5 steps, ended FINISHED), first
from 1 writer process, then from 8 at once. Every run is read back and checked complete
(status, params, metric histories). It prints requests per second and the client-side
latency of each request (p50 / p99) for both, and their ratio.

    python benchmarks/tracking_load.py                    # 250 trials alone, then 2,000 by 8
    python benchmarks/tracking_load.py --trials 2000 --writers 8
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tracking_writers import load, read_back


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000, help="logged by the many writers")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--port", type=int, default=5091)
    args = parser.parse_args()

    from mlflow.tracking import MlflowClient

    from tunelab import server

    state = Path(tempfile.mkdtemp(prefix="tunelab-load-"))
    running = server.start(state, "127.0.0.1", args.port, workers=2)
    try:
        client = MlflowClient(running.tracking_uri)
        rows = []
        for writers, trials in ((1, args.trials // args.writers), (args.writers, args.trials)):
            experiment_id = client.create_experiment(f"load-{writers}-writers")
            parent = client.create_run(experiment_id, run_name="study").info.run_id
            row = load(running.tracking_uri, experiment_id, parent, writers, trials)
            row["complete"] = read_back(running.tracking_uri, experiment_id, parent, row["trials"])
            client.set_terminated(parent, "FINISHED")
            rows.append(row)
    finally:
        server.stop(state)
    print(
        "| writers | trials | read back complete | requests | wall | requests/s | "
        "p50 latency | p99 latency |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['writers']} | {r['trials']:,} | {r['complete']:,} | {r['requests']:,} | "
            f"{r['wall']:.1f} s | {r['rps']:.0f} | {r['p50']:.1f} ms | {r['p99']:.1f} ms |"
        )
    alone, many = rows
    print(
        f"\n{many['writers']} writers / 1: throughput × {many['rps'] / alone['rps']:.2f}, "
        f"p50 × {many['p50'] / alone['p50']:.2f}, p99 × {many['p99'] / alone['p99']:.2f}"
    )


if __name__ == "__main__":
    main()
