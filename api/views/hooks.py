"""The caller's webhook signing secret (Standard Webhooks' whsec_ form)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from api.auth import authenticate
from api.errors import ApiError
from api.services import services
from shared import webhooks

bp = Blueprint("hooks", __name__)


@bp.get("/webhooks/secret")
def secret():
    """The secret that signs this key's webhooks, and how to check a signature."""
    svc = services()
    owner = authenticate(svc.keyring)
    if not svc.settings.webhook_secret:
        raise ApiError(404, "not_found", "webhooks are not enabled on this server (it has no WEBHOOK_SECRET)")
    return jsonify(
        {
            "secret": webhooks.owner_secret(svc.settings.webhook_secret, owner),
            "scheme": "Standard Webhooks: base64(HMAC-SHA256(base64decode(secret without 'whsec_'), "
            "webhook-id + '.' + webhook-timestamp + '.' + body)) in webhook-signature as 'v1,<signature>'",
            "events": list(webhooks.EVENTS),
        }
    )
