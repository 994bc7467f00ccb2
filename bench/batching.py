"""Batching gain on CPU: 32 concurrent tiny jobs through one worker, MAX_BATCH 1 vs 8.

.venv/bin/python -m bench.batching [--jobs 32] [--size 128] [--steps 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.harness import Gunicorn, RedisServer, Worker, api_session, percentile, report, run_job
from shared.settings import Settings


def run(max_batch: int, args, tmp: Path) -> dict:
    redis_server = RedisServer(tmp / f"redis-{max_batch}").start()
    cache = str(tmp / "models")
    settings = Settings(redis_url=redis_server.url, output_dir=str(tmp / "out"), model_cache_dir=cache)
    worker = Worker(
        settings,
        tmp / f"worker-{max_batch}.log",
        name=f"b{max_batch}",
        concurrency=max(8, max_batch),
        WORKER_MODELS="tiny",
        PRELOAD_MODELS="tiny",
        MAX_BATCH=str(max_batch),
        BATCH_WINDOW_MS="20",
        TORCH_THREADS="2",
        OMP_NUM_THREADS="2",
    ).start()
    worker.wait_ready(redis_server.client(), timeout=120)
    api = Gunicorn({"REDIS_URL": redis_server.url, "OUTPUT_DIR": str(tmp / "out")}).start()
    session = api_session(args.jobs)
    body = {"prompt": "a red dragon", "width": args.size, "height": args.size, "steps": args.steps}

    def one(index: int) -> float:
        return run_job(session, api.url, {**body, "seed": index}, poll=0.05)[1]

    try:
        time.sleep(3)  # let the preload and warm-up finish
        started = time.perf_counter()
        with ThreadPoolExecutor(args.jobs) as pool:
            latencies = list(pool.map(one, range(args.jobs)))
        wall = time.perf_counter() - started
    finally:
        api.stop()
        worker.stop()
        redis_server.stop()
    return {
        "max_batch": max_batch,
        "jobs": args.jobs,
        "wall_s": wall,
        "img_per_s": args.jobs / wall,
        "p50_s": statistics.median(latencies),
        "p95_s": percentile(latencies, 95),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=32)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-batching-"))
    rows = [run(1, args, tmp), run(8, args, tmp)]
    rows[1]["gain"] = rows[1]["img_per_s"] / rows[0]["img_per_s"]
    report("batching-cpu", rows, {"size": args.size, "steps": args.steps})


if __name__ == "__main__":
    main()
