"""API enqueue rate and latency: wrk POSTs /generate to gunicorn on loopback (bounded in time).

No worker runs, so every accepted job stays queued; MAX_QUEUE is raised so none is refused.
Afterwards the number of job records in Redis must equal the requests wrk completed.

    .venv/bin/python -m bench.api_load [--seconds 10] [--connections 32] [--workers 2]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.harness import KEY, Gunicorn, RedisServer, report

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
wrk.body = '{"prompt": "a red dragon", "seed": 42, "width": 64, "height": 64, "steps": 4}'
"""


def to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: sudo apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    script = tmp / "post.lua"
    script.write_text(LUA % KEY)
    redis_server = RedisServer(tmp / "redis", appendonly=False).start()
    api = Gunicorn(
        {"REDIS_URL": redis_server.url, "OUTPUT_DIR": str(tmp / "out"), "MAX_QUEUE": "100000000"},
        workers=args.workers,
        threads=args.threads,
    ).start()
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t",
                "1",
                "-c",
                str(args.connections),
                "-d",
                f"{args.seconds}s",
                "--latency",
                "-s",
                str(script),
                api.url + "/generate",
            ],
            capture_output=True,
            text=True,
            timeout=args.seconds + 60,
        ).stdout
        jobs_recorded = sum(1 for _ in redis_server.client().scan_iter("job:*", count=1000))
    finally:
        api.stop()
        redis_server.stop()
    print(out)
    latency = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    errors = re.search(r"Socket errors: (.*)", out)
    rows = [
        {
            "connections": args.connections,
            "gunicorn": f"{args.workers}x{args.threads}",
            "requests": total,
            "req_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": to_ms(latency["50"]),
            "p90_ms": to_ms(latency["90"]),
            "p99_ms": to_ms(latency["99"]),
            "non_2xx": non_2xx,
            "socket_errors": errors.group(1) if errors else "none",
            "jobs_recorded": jobs_recorded,
        }
    ]
    report("api-enqueue", rows, {"seconds": args.seconds, "targets": {"req_per_s": 1000, "p99_ms": 20}})


if __name__ == "__main__":
    main()
