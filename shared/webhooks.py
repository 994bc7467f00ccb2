"""Webhooks the Standard Webhooks way: where they may go, how they are signed, what they carry.

Signature: base64(HMAC-SHA256(secret, f"{webhook-id}.{webhook-timestamp}.{body}")), sent as
`webhook-signature: v1,<signature>`. Each API key has its own secret, derived from the server's
WEBHOOK_SECRET and the key's owner id, so one customer cannot sign another's webhooks; a caller
reads its own from GET /webhooks/secret. The id is the same on every retry of one event, so a
receiver can drop duplicates.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import socket
import time
import urllib.parse

EVENTS = ("running", "succeeded", "failed", "canceled")
DEFAULT_EVENTS = ("succeeded", "failed", "canceled")
SECRET_PREFIX = "whsec_"
DELIVERIES_SUFFIX = ":webhooks"


class DestinationRefused(ValueError):
    """The URL resolves nowhere, or to an address webhooks may not reach."""


def owner_secret(server_secret: str, owner: str) -> str:
    """The signing secret of one owner, in Standard Webhooks' whsec_<base64> form."""
    key = hmac.new(server_secret.encode("utf-8"), f"webhooks:{owner}".encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def verify(secret: str, headers: dict, body: bytes, tolerance_s: int = 300, now: float | None = None) -> bool:
    """What a receiver does (used by tests and documented for users)."""
    message_id, stamp = headers.get("webhook-id"), headers.get("webhook-timestamp", "")
    if not message_id or not stamp.isdigit() or abs((now or time.time()) - int(stamp)) > tolerance_s:
        return False
    expected = sign(secret, message_id, int(stamp), body).split(",", 1)[1]
    return any(
        hmac.compare_digest(expected, candidate.split(",", 1)[1])
        for candidate in headers.get("webhook-signature", "").split()
        if candidate.startswith("v1,")
    )


def signed_request(secret: str, message_id: str, payload: dict, now: float | None = None) -> tuple[bytes, dict]:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    timestamp = int(now or time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": "diffq-webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }
    return body, headers


def check_destination(url: str, allow_private: bool) -> list[str]:
    """Resolve the URL's host; refuse private, loopback, link-local and other non-public addresses.

    Called when a job is submitted and again before every delivery (DNS may change in between).
    Returns the resolved addresses.
    """
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DestinationRefused(f"the host '{parts.hostname}' does not resolve ({exc})") from None
    addresses = sorted({info[4][0] for info in infos})
    if not allow_private:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not ip.is_global or ip.is_multicast:
                raise DestinationRefused(
                    f"'{parts.hostname}' resolves to {address}, a private or reserved address; webhooks go to "
                    "public addresses only (the server may set WEBHOOK_ALLOW_PRIVATE=true)"
                )
    return addresses


def payload(job: dict, event: str) -> dict:
    """The event body: Standard Webhooks' {type, timestamp, data} with the job's public state."""
    images = [
        {k: image[k] for k in ("key", "seed", "format", "width", "height", "grid", "prompt", "model") if k in image}
        for image in job.get("images") or []
    ]
    return {
        "type": f"job.{event}",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": {
            "task_id": job["id"],
            # The state the event announces (by delivery time the job may have moved on).
            "state": event,
            "model": job.get("model"),
            "images": images if event == "succeeded" else [],
            "error": job.get("error") if event == "failed" else None,
            "warnings": job.get("warnings") or [],
        },
    }


def wants(params: dict, event: str) -> bool:
    return bool(params.get("webhook_url")) and event in (params.get("webhook_events") or DEFAULT_EVENTS)


def queue_delivery(celery_app, job_id: str, event: str, attempt: int = 1, countdown: float | None = None) -> None:
    """Send one delivery attempt to the workers' `webhooks` queue."""
    from shared.celery_app import TASK_WEBHOOK, WEBHOOK_QUEUE

    celery_app.send_task(
        TASK_WEBHOOK,
        kwargs={"job_id": job_id, "event": event, "attempt": attempt},
        queue=WEBHOOK_QUEUE,
        countdown=countdown,
    )
