"""Load and soak: many tiny jobs through gunicorn and real workers on loopback; nothing lost.

    .venv/bin/python -m bench.load [--jobs 2000] [--workers 2] [--clients 8]
    .venv/bin/python -m bench.load --soak-seconds 300 --rate 10

Load: POSTs `--jobs` jobs from `--clients` threads, waits until every accepted job finished, then
checks accepted == succeeded, each job started exactly once, exactly one image and one metadata
file per job on disk, and no 5xx. Soak: posts at a steady `--rate` for `--soak-seconds` and
samples each worker's resident memory every 5 s (flat memory means no leak per job).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import tempfile
import threading
import time
from pathlib import Path

import redis

from bench.harness import Gunicorn, RedisServer, Worker, api_session, percentile, report
from shared.settings import Settings

BODY = {"prompt": "load", "width": 64, "height": 64, "steps": 2}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_stack(tmp: Path, workers: int, max_queue: int):
    redis_server = RedisServer(tmp / "redis").start()
    out = tmp / "out"
    env = {"REDIS_URL": redis_server.url, "OUTPUT_DIR": str(out), "MAX_QUEUE": str(max_queue), "LOG_LEVEL": "WARNING"}
    api = Gunicorn(env, workers=2).start()
    settings = Settings(redis_url=redis_server.url, output_dir=str(out))
    procs = [
        Worker(
            settings, tmp / f"w{n}.log", name=f"w{n}", WORKER_MODELS="tiny", PRELOAD_MODELS="tiny", LOG_LEVEL="WARNING"
        )
        for n in range(workers)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.wait_ready(redis_server.client(), timeout=180)
    return redis_server, api, procs, out


def wait_finished(client: redis.Redis, ids: list[str], timeout: float) -> dict[str, str]:
    deadline = time.time() + timeout
    while True:
        pipe = client.pipeline()
        for task_id in ids:
            pipe.hget(f"job:{task_id}", "state")
        states = dict(zip(ids, pipe.execute(), strict=True))
        if all(s in ("succeeded", "failed", "canceled") for s in states.values()) or time.time() > deadline:
            return states
        time.sleep(0.5)


def post_all(base: str, count: int, clients: int) -> tuple[list[str], collections.Counter, list[float]]:
    session = api_session(pool=clients)
    codes: collections.Counter = collections.Counter()
    latencies: list[float] = []
    lock = threading.Lock()

    def one(_n):
        started = time.perf_counter()
        answer = session.post(base + "/generate", json=BODY, timeout=60)
        with lock:
            codes[answer.status_code] += 1
            latencies.append(time.perf_counter() - started)
        return answer.json().get("task_id") if answer.status_code == 202 else None

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        ids = [task_id for task_id in pool.map(one, range(count)) if task_id]
    return ids, codes, latencies


def load(args, tmp: Path) -> None:
    redis_server, api, procs, out = start_stack(tmp, args.workers, max_queue=args.jobs + 10)
    try:
        began = time.perf_counter()
        ids, codes, latencies = post_all(api.url, args.jobs, args.clients)
        posted_s = time.perf_counter() - began
        states = wait_finished(redis_server.client(), ids, timeout=args.timeout)
        total_s = time.perf_counter() - began
        client = redis_server.client()
        pipe = client.pipeline()
        for task_id in ids:
            pipe.hget(f"job:{task_id}", "deliveries")
        deliveries = collections.Counter(pipe.execute())
        images = list(out.rglob("*.png"))
        metadata = list(out.rglob("*.json"))
        per_job = collections.Counter(path.name.split("-0.png")[0] for path in images)
        row = {
            "jobs_posted": args.jobs,
            "accepted": len(ids),
            "succeeded": sum(1 for s in states.values() if s == "succeeded"),
            "not_finished": sum(1 for s in states.values() if s not in ("succeeded", "failed", "canceled")),
            "failed": sum(1 for s in states.values() if s == "failed"),
            "http_5xx": sum(n for code, n in codes.items() if code >= 500),
            "started_more_than_once": sum(n for d, n in deliveries.items() if d != "1"),
            "images_on_disk": len(images),
            "metadata_on_disk": len(metadata),
            "jobs_with_duplicate_images": sum(1 for n in per_job.values() if n > 1),
            "post_p50_ms": percentile(latencies, 50) * 1000,
            "post_p99_ms": percentile(latencies, 99) * 1000,
            "posting_s": posted_s,
            "all_done_s": total_s,
            "jobs_per_s": len(ids) / total_s,
            "unacked_left": client.hlen("unacked"),
        }
        report(f"load-{args.jobs}", [row], {"workers": args.workers, "clients": args.clients, "body": BODY})
        ok = (
            row["accepted"] == row["succeeded"] == args.jobs == row["images_on_disk"] == row["metadata_on_disk"]
            and row["http_5xx"] == row["started_more_than_once"] == row["jobs_with_duplicate_images"] == 0
        )
        print("LOAD HELD" if ok else "LOAD BROKE: see the row above")
    finally:
        stop(redis_server, api, procs)


def soak(args, tmp: Path) -> None:
    redis_server, api, procs, _out = start_stack(tmp, args.workers, max_queue=100_000)
    session = api_session(pool=4)
    samples, ids, codes = [], [], collections.Counter()
    try:
        began = time.time()
        next_sample = began
        while time.time() - began < args.soak_seconds:
            answer = session.post(api.url + "/generate", json=BODY, timeout=60)
            codes[answer.status_code] += 1
            if answer.status_code == 202:
                ids.append(answer.json()["task_id"])
            if time.time() >= next_sample:
                samples.append(
                    {
                        "t_s": round(time.time() - began),
                        **{f"rss_mb_w{n}": rss_mb(p.process.pid) for n, p in enumerate(procs)},
                    }
                )
                next_sample += 5
            time.sleep(1 / args.rate)
        states = wait_finished(redis_server.client(), ids, timeout=args.timeout)
        samples.append(
            {"t_s": round(time.time() - began), **{f"rss_mb_w{n}": rss_mb(p.process.pid) for n, p in enumerate(procs)}}
        )
        warm = samples[min(2, len(samples) - 1)]
        summary = {
            "jobs": len(ids),
            "succeeded": sum(1 for s in states.values() if s == "succeeded"),
            "http_5xx": sum(n for code, n in codes.items() if code >= 500),
            **{f"rss_growth_mb_w{n}": samples[-1][f"rss_mb_w{n}"] - warm[f"rss_mb_w{n}"] for n in range(len(procs))},
        }
        report(f"soak-{args.soak_seconds}s", samples, {"summary": summary, "rate_per_s": args.rate})
        print("summary:", summary)
    finally:
        stop(redis_server, api, procs)


def stop(redis_server, api, procs) -> None:
    api.stop()
    for proc in procs:
        proc.stop()
    redis_server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--soak-seconds", type=int, default=0)
    parser.add_argument("--rate", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.soak_seconds:
            soak(args, Path(tmp))
        else:
            load(args, Path(tmp))


if __name__ == "__main__":
    main()
