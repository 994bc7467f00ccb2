"""Per-job overhead of the platform over a direct pipeline call (tiny model, CPU).

The same small job is timed as a direct diffusers call in this process, and then through the
platform (HTTP -> Redis -> Celery worker -> engine -> storage -> job record) one job at a time.
Platform time is read from the job record (created by the API .. finished by the worker), so the
client's polling does not count. Overhead = platform median - direct median.

    .venv/bin/python bench/overhead.py [--jobs 50]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import Gunicorn, RedisServer, Worker, api_session, percentile, report, run_job
from shared.settings import Settings

JOB = {"prompt": "a red dragon", "width": 64, "height": 64, "steps": 4, "sampler": "ddim", "seed": 1}


def direct_times(cache_dir: str, runs: int) -> list[float]:
    import torch

    from shared.catalog import ModelCatalog
    from shared.settings import PROJECT_ROOT
    from worker.loading import load_model

    torch.set_num_threads(1)
    spec = ModelCatalog.load(PROJECT_ROOT / "models.yaml").resolve("tiny")
    pipe = load_model(spec, Settings(model_cache_dir=cache_dir), "cpu", torch.float32).txt2img
    times = []
    for index in range(runs + 3):
        started = time.perf_counter()
        pipe(
            JOB["prompt"],
            width=64,
            height=64,
            num_inference_steps=4,
            guidance_scale=7.5,
            generator=torch.Generator().manual_seed(index),
        )
        if index >= 3:  # the first calls warm up
            times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=50)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    cache = str(tmp / "models")
    direct = direct_times(cache, args.jobs)

    redis_server = RedisServer(tmp / "redis").start()
    settings = Settings(redis_url=redis_server.url, output_dir=str(tmp / "out"), model_cache_dir=cache)
    worker = Worker(
        settings,
        tmp / "worker.log",
        name="bench",
        concurrency=1,
        WORKER_MODELS="tiny",
        PRELOAD_MODELS="tiny",
        MAX_BATCH="1",
        BATCH_WINDOW_MS="0",
    ).start()
    worker.wait_ready(redis_server.client(), timeout=120)
    api = Gunicorn({"REDIS_URL": redis_server.url, "OUTPUT_DIR": str(tmp / "out")}).start()
    session = api_session()
    platform, client, queued, generate, store, device = [], [], [], [], [], []
    try:
        for index in range(args.jobs + 3):
            # Figures come from the job record, so poll gently: polling steals CPU from the worker.
            job, latency = run_job(session, api.url, {**JOB, "seed": index}, poll=0.05)
            if index >= 3:
                platform.append(job["finished_at"] - job["created_at"])
                queued.append(job["started_at"] - job["created_at"])
                generate.append(job["timings"]["generate_s"])
                store.append(job["timings"]["store_s"])
                device.append(job["timings"]["device_s"])
                client.append(latency)
    finally:
        api.stop()
        worker.stop()
        redis_server.stop()
    direct_median, platform_median = statistics.median(direct), statistics.median(platform)
    rows = [
        {"path": "direct pipeline call", "median_ms": direct_median * 1000, "p95_ms": percentile(direct, 95) * 1000},
        {
            "path": "platform (record created..finished)",
            "median_ms": platform_median * 1000,
            "p95_ms": percentile(platform, 95) * 1000,
        },
        {
            "path": "client POST..status seen",
            "median_ms": statistics.median(client) * 1000,
            "p95_ms": percentile(client, 95) * 1000,
        },
        {
            "path": "  of which: queue (API record .. worker start)",
            "median_ms": statistics.median(queued) * 1000,
            "p95_ms": percentile(queued, 95) * 1000,
        },
        {
            "path": "  of which: generate (engine, encode, pipeline)",
            "median_ms": statistics.median(generate) * 1000,
            "p95_ms": percentile(generate, 95) * 1000,
        },
        {
            "path": "    of which: device (the pipeline call)",
            "median_ms": statistics.median(device) * 1000,
            "p95_ms": percentile(device, 95) * 1000,
        },
        {
            "path": "  of which: store (encode PNG, write, metadata)",
            "median_ms": statistics.median(store) * 1000,
            "p95_ms": percentile(store, 95) * 1000,
        },
        {
            "path": "overhead (platform - direct)",
            "median_ms": (platform_median - direct_median) * 1000,
            "p95_ms": (percentile(platform, 95) - direct_median) * 1000,
        },
    ]
    report("overhead", rows, {"jobs": args.jobs, "job": JOB, "target_overhead_ms": 5})


if __name__ == "__main__":
    main()
