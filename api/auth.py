"""API keys: kept only as SHA-256 hashes, compared in constant time, never logged."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from flask import g, request

from api.errors import ApiError

HASH_PREFIX = "sha256:"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyRing:
    """The accepted keys, as hashes. Owner ids are a short prefix of the hash, safe to store."""

    def __init__(self, hashes: list[str]):
        self.hashes = [h.lower() for h in hashes]

    @classmethod
    def from_settings(cls, settings) -> KeyRing:
        entries = [k.strip() for k in settings.api_keys.split(",") if k.strip()]
        if settings.api_keys_file:
            for line in Path(settings.api_keys_file).read_text(encoding="utf-8").splitlines():
                line = line.split("#", 1)[0].strip()
                if line:
                    entries.append(line)
        hashes = [e[len(HASH_PREFIX) :] if e.startswith(HASH_PREFIX) else hash_key(e) for e in entries]
        return cls(hashes)

    def owner_of(self, key: str | None) -> str | None:
        """The owner id for `key`, or None. Every stored hash is compared, so timing says nothing."""
        if not key:
            return None
        presented = hash_key(key)
        found = None
        for stored in self.hashes:
            if hmac.compare_digest(presented, stored):
                found = stored
        return found[:16] if found else None


def presented_key(body: dict | None = None) -> str | None:
    """The key from Authorization: Bearer, X-API-Key, or the JSON body's api_key (seed 001)."""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    if request.headers.get("X-API-Key"):
        return request.headers["X-API-Key"].strip()
    if isinstance(body, dict) and isinstance(body.get("api_key"), str):
        return body["api_key"]
    return None


def authenticate(keyring: KeyRing, body: dict | None = None) -> str:
    """Set g.owner for a valid key; the same 401 for a missing, malformed or wrong key."""
    owner = keyring.owner_of(presented_key(body))
    if owner is None:
        raise ApiError(
            401,
            "unauthorized",
            "a valid API key is required (Authorization: Bearer <key> or X-API-Key)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    g.owner = owner
    return owner
