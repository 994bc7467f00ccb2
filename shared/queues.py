"""What kombu's Redis transport keeps for a Celery queue: one list per priority, and the
`unacked` hash of messages a worker has taken but not yet acknowledged."""

from __future__ import annotations

import json

# Priority 0 uses the queue name; the others append "\x06\x16" + priority.
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
UNACKED = "unacked"


def queue_depths(client, queues: list[str]) -> dict[str, int]:
    """Messages waiting in each queue, summed over its priority lists."""
    pipe = client.pipeline()
    for queue in queues:
        for suffix in PRIORITY_SUFFIXES:
            pipe.llen(queue + suffix)
    counts = pipe.execute()
    step = len(PRIORITY_SUFFIXES)
    return {queue: sum(counts[i * step : (i + 1) * step]) for i, queue in enumerate(queues)}


def waiting_task_ids(client, queues) -> set[str]:
    """Task ids of the messages waiting in `queues`."""
    pipe = client.pipeline()
    for queue in queues:
        for suffix in PRIORITY_SUFFIXES:
            pipe.lrange(queue + suffix, 0, -1)
    return {task_id for batch in pipe.execute() for raw in batch if (task_id := _message_task_id(raw))}


def unacked_task_ids(client) -> set[str]:
    """Task ids of the messages workers hold: running, prefetched, or waiting for an ETA."""
    ids = set()
    for raw in client.hvals(UNACKED):
        try:
            message = json.loads(raw)[0]
        except (ValueError, IndexError, TypeError):
            continue
        if task_id := _task_id(message):
            ids.add(task_id)
    return ids


def _message_task_id(raw: str) -> str | None:
    try:
        return _task_id(json.loads(raw))
    except ValueError:
        return None


def _task_id(message) -> str | None:
    if not isinstance(message, dict):
        return None
    headers = message.get("headers") or {}
    properties = message.get("properties") or {}
    return headers.get("id") or properties.get("correlation_id")
