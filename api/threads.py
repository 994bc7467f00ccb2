"""Who may write to and read a user_id's threads: the API key that used it first (or an admin).

A user_id is claimed in Redis by the first key that submits a job with it; other keys get 403
when they submit with it and 404 when they read its logs, so ids chosen by clients cannot be
used to read or pollute another key's threads.
"""

from __future__ import annotations

from flask import g
from redis.exceptions import RedisError

from api.errors import ApiError
from api.submit import queue_unavailable

CLAIM_PREFIX = "user-owner:"


def claim_user(client, user_id: str, owner: str) -> None:
    """Claim `user_id` for `owner` on first use; 403 if another key holds it (admins pass)."""
    try:
        client.set(CLAIM_PREFIX + user_id, owner, nx=True)
        holder = client.get(CLAIM_PREFIX + user_id)
    except RedisError:
        raise queue_unavailable() from None
    if holder != owner and not g.get("is_admin", False):
        raise ApiError(
            403,
            "forbidden",
            f"user_id '{user_id}' belongs to another API key; choose another user_id",
            fields={"user_id": "belongs to another API key"},
        )


def require_user(client, user_id: str) -> None:
    """404 unless the caller's key owns `user_id` (or is an admin's)."""
    try:
        holder = client.get(CLAIM_PREFIX + user_id)
    except RedisError:
        raise queue_unavailable() from None
    if holder is None or (holder != g.owner and not g.get("is_admin", False)):
        raise ApiError(404, "not_found", f"no logs for user_id '{user_id}'")
