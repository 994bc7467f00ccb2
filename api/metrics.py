"""API metrics kept in Redis, so they add up across gunicorn workers and API replicas.

Each request costs one pipelined round trip. GET /metrics renders them in Prometheus' text
format with the queue depth per model, unfinished jobs and live workers read at scrape time.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))
REQUESTS = "metrics:api:requests"
LATENCY = "metrics:api:latency"
REFUSALS = "metrics:api:refusals"
SKIPPED = {"web.index", "static", "docs.docs", "docs.docs_assets", "docs.docs_init", "system.metrics"}


def _bucket(seconds: float) -> str:
    return next(f"{b:g}" if b != float("inf") else "+Inf" for b in BUCKETS if seconds <= b)


def install(app: Flask, client) -> None:
    """Count every API request (endpoint, method, status), its latency, and refusals by code."""

    @app.before_request
    def _start():
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _count(response):
        endpoint = request.endpoint or "unknown"
        if endpoint in SKIPPED or not hasattr(g, "metrics_started"):
            return response
        elapsed = time.perf_counter() - g.metrics_started
        try:
            pipe = client.pipeline(transaction=False)
            pipe.hincrby(REQUESTS, f"{endpoint}|{request.method}|{response.status_code}", 1)
            pipe.hincrby(LATENCY, f"{endpoint}|{_bucket(elapsed)}", 1)
            pipe.hincrbyfloat(LATENCY, f"{endpoint}|sum", elapsed)
            if response.status_code >= 400 and response.is_json:
                code = (response.get_json(silent=True) or {}).get("error", {}).get("code", "unknown")
                pipe.hincrby(REFUSALS, code, 1)
            pipe.execute()
        except RedisError:
            pass  # metrics never fail a request
        return response


def render(client, queue_depths: dict[str, int], unfinished: int, workers: int) -> Response:
    lines = [
        "# HELP diffq_api_requests_total API requests by endpoint, method and status.",
        "# TYPE diffq_api_requests_total counter",
    ]
    for field, count in sorted(client.hgetall(REQUESTS).items()):
        endpoint, method, status = field.split("|")
        lines.append(f'diffq_api_requests_total{{endpoint="{endpoint}",method="{method}",status="{status}"}} {count}')
    lines += ["# HELP diffq_api_request_seconds API request latency.", "# TYPE diffq_api_request_seconds histogram"]
    latency = client.hgetall(LATENCY)
    endpoints = sorted({field.split("|")[0] for field in latency})
    for endpoint in endpoints:
        cumulative = 0
        for bucket in BUCKETS:
            le = f"{bucket:g}" if bucket != float("inf") else "+Inf"
            cumulative += int(latency.get(f"{endpoint}|{le}", 0))
            lines.append(f'diffq_api_request_seconds_bucket{{endpoint="{endpoint}",le="{le}"}} {cumulative}')
        lines.append(
            f'diffq_api_request_seconds_sum{{endpoint="{endpoint}"}} {float(latency.get(f"{endpoint}|sum", 0))}'
        )
        lines.append(f'diffq_api_request_seconds_count{{endpoint="{endpoint}"}} {cumulative}')
    lines += [
        "# HELP diffq_api_refusals_total Refused requests by error code.",
        "# TYPE diffq_api_refusals_total counter",
    ]
    for code, count in sorted(client.hgetall(REFUSALS).items()):
        lines.append(f'diffq_api_refusals_total{{code="{code}"}} {count}')
    lines += ["# HELP diffq_queue_depth Jobs waiting in each model's queue.", "# TYPE diffq_queue_depth gauge"]
    for queue, depth in sorted(queue_depths.items()):
        lines.append(f'diffq_queue_depth{{queue="{queue}"}} {depth}')
    lines += [
        "# HELP diffq_unfinished_jobs Jobs queued or running.",
        "# TYPE diffq_unfinished_jobs gauge",
        f"diffq_unfinished_jobs {unfinished}",
        "# HELP diffq_workers Workers with a live heartbeat.",
        "# TYPE diffq_workers gauge",
        f"diffq_workers {workers}",
    ]
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")
