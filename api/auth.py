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


def _hashes(entries: list[str]) -> list[str]:
    return [e[len(HASH_PREFIX) :] if e.startswith(HASH_PREFIX) else hash_key(e) for e in entries]


def _split(value: str) -> list[str]:
    return [k.strip() for k in value.split(",") if k.strip()]


class KeyRing:
    """The accepted keys, as hashes. Owner ids are a short prefix of the hash, safe to store.

    Admin keys are keys too; they may read and cancel every owner's jobs and images.
    """

    def __init__(self, hashes: list[str], admin_hashes: list[str] = ()):
        admin = [h.lower() for h in admin_hashes]
        self.hashes = [h.lower() for h in hashes] + [h for h in admin if h not in hashes]
        self.admins = frozenset(h[:16] for h in admin)

    @classmethod
    def from_settings(cls, settings) -> KeyRing:
        entries = _split(settings.api_keys)
        if settings.api_keys_file:
            for line in Path(settings.api_keys_file).read_text(encoding="utf-8").splitlines():
                line = line.split("#", 1)[0].strip()
                if line:
                    entries.append(line)
        return cls(_hashes(entries), _hashes(_split(settings.admin_api_keys)))

    def is_admin(self, owner: str | None) -> bool:
        return owner in self.admins

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
    g.is_admin = keyring.is_admin(owner)
    return owner


def may_see(owner: str | None) -> bool:
    """Whether the authenticated caller may see a resource of `owner`: its own, or any for an admin."""
    return owner is not None and (owner == g.owner or g.get("is_admin", False))
