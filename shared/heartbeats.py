"""Worker heartbeats in Redis, so the API can say which workers are alive and what they serve.

A heartbeat is a hash with a TTL: the worker's main process refreshes it, and its pool child
adds what only it knows (the device it resolved) without overwriting the rest.
"""

from __future__ import annotations

import json
import time

PREFIX = "worker:"


def beat(client, name: str, info: dict, ttl_s: float) -> None:
    """Record `info` for worker `name` and keep it alive for the next `ttl_s` seconds."""
    key = PREFIX + name
    fields = {k: json.dumps(v) for k, v in {**info, "name": name, "seen_at": time.time()}.items()}
    pipe = client.pipeline()
    pipe.hset(key, mapping=fields)
    pipe.expire(key, max(1, int(ttl_s)))
    pipe.execute()


def forget(client, name: str) -> None:
    client.delete(PREFIX + name)


def alive(client) -> list[dict]:
    """Workers whose heartbeat has not expired."""
    workers = []
    for key in sorted(client.scan_iter(match=PREFIX + "*", count=100)):
        raw = client.hgetall(key)
        if raw:
            workers.append({k: json.loads(v) for k, v in raw.items()})
    return workers
