"""Worker heartbeats in Redis, so the API can say which workers are alive and what they serve."""

from __future__ import annotations

import json
import time

PREFIX = "worker:"


def beat(client, name: str, info: dict, ttl_s: float) -> None:
    """Record that worker `name` is alive for the next `ttl_s` seconds."""
    client.set(PREFIX + name, json.dumps({**info, "name": name, "seen_at": time.time()}), ex=max(1, int(ttl_s)))


def forget(client, name: str) -> None:
    client.delete(PREFIX + name)


def alive(client) -> list[dict]:
    """Workers whose heartbeat has not expired."""
    keys = sorted(client.scan_iter(match=PREFIX + "*", count=100))
    if not keys:
        return []
    return [json.loads(v) for v in client.mget(keys) if v]
