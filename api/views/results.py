"""Recent images and the stored image files."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request
from redis.exceptions import RedisError

from api.auth import authenticate, may_see
from api.errors import ApiError
from api.services import services
from api.submit import queue_unavailable
from shared.images import CONTENT_TYPES
from shared.storage import KEY_PATTERN, StorageError

bp = Blueprint("results", __name__)
RECENT_DEFAULT, RECENT_MAX = 10, 100
MIME_BY_EXT = {**CONTENT_TYPES, "json": "application/json", "csv": "text/csv"}


@bp.get("/recent")
def recent():
    """The caller's newest successful images, newest first (an admin may ask for any `owner`'s)."""
    svc = services()
    owner = authenticate(svc.keyring)
    limit = _limit(request.args.get("limit"))
    wanted = request.args.get("owner")
    if wanted is not None and wanted != owner:
        if not g.is_admin:
            raise ApiError(403, "forbidden", "only an admin key may list another owner's images")
        owner = wanted
    try:
        entries = svc.jobs.recent(owner, limit)
    except RedisError:
        raise queue_unavailable() from None
    images = [{**entry, "url": svc.links.url(entry["key"])} for entry in entries]
    return jsonify({"images": images, "count": len(images)})


@bp.get("/images/<path:key>")
def image(key: str):
    """A stored image: with a signed link (from /status or /recent) or with the owner's key."""
    svc = services()
    not_found = ApiError(404, "not_found", "no image with this key")
    if not KEY_PATTERN.match(key) or key.startswith("cache/inputs/"):
        raise not_found
    if not svc.links.verify(key, request.args.get("exp"), request.args.get("sig")):
        authenticate(svc.keyring)
        job = svc.jobs.get(key.rsplit("/", 1)[-1][:36])
        if job is None or not may_see(job.get("owner")):
            raise not_found
    try:
        data = svc.storage.get(key)
    except (KeyError, StorageError):
        raise not_found from None
    response = Response(data, mimetype=MIME_BY_EXT[key.rsplit(".", 1)[-1]])
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


def _limit(raw: str | None) -> int:
    if raw is None:
        return RECENT_DEFAULT
    if not raw.isdigit() or not 1 <= int(raw) <= RECENT_MAX:
        raise ApiError(
            400,
            "invalid_request",
            f"limit must be a whole number from 1 to {RECENT_MAX}",
            fields={"limit": f"must be 1 to {RECENT_MAX}"},
        )
    return int(raw)
