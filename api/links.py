"""Signed, expiring image links: a browser or <img> tag can fetch them without sending a key."""

from __future__ import annotations

import hashlib
import hmac
import time

from flask import url_for


class LinkSigner:
    def __init__(self, secret: bytes, ttl_s: int):
        self.secret = secret
        self.ttl_s = ttl_s

    @classmethod
    def from_settings(cls, settings, key_hashes: list[str]) -> LinkSigner:
        if settings.url_signing_key:
            secret = settings.url_signing_key.encode()
        else:
            # Every API process derives the same secret from the same keys; it rotates with them.
            secret = hashlib.sha256(("image-links\n" + "\n".join(sorted(key_hashes))).encode()).digest()
        return cls(secret, settings.image_link_ttl_s)

    def signature(self, key: str, expires: int) -> str:
        return hmac.new(self.secret, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def url(self, key: str) -> str:
        # Round the expiry so repeated polls give the same link (browsers can cache it).
        expires = (int(time.time()) // 60 + 1) * 60 + self.ttl_s
        return url_for("results.image", key=key, exp=expires, sig=self.signature(key, expires), _external=True)

    def verify(self, key: str, expires: str | None, signature: str | None) -> bool:
        if not expires or not signature or not expires.isdigit():
            return False
        if int(expires) < time.time():
            return False
        return hmac.compare_digest(self.signature(key, int(expires)), signature)
