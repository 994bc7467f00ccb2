"""API keys: hashed at rest, constant-time comparison, the same 401 for every failure."""

from __future__ import annotations

import hashlib

from flask import Flask

from api.auth import KeyRing, hash_key, presented_key
from shared.settings import Settings


def test_keys_are_kept_only_as_hashes(tmp_path):
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("# team keys\nsha256:" + hashlib.sha256(b"from-file").hexdigest() + "\nplain-in-file\n")
    ring = KeyRing.from_settings(Settings(api_keys="alpha, beta", api_keys_file=str(keys_file)))
    assert len(ring.hashes) == 4
    assert all(len(h) == 64 and h not in ("alpha", "beta") for h in ring.hashes)
    for key in ("alpha", "beta", "from-file", "plain-in-file"):
        assert ring.owner_of(key) == hash_key(key)[:16]


def test_wrong_missing_or_empty_keys_have_no_owner():
    ring = KeyRing([hash_key("right")])
    for key in (None, "", "wrong", "right ", "RIGHT"):
        assert ring.owner_of(key) is None


def test_no_keys_configured_lets_nobody_in():
    assert KeyRing.from_settings(Settings()).owner_of("anything") is None


def test_key_sources_in_order():
    app = Flask(__name__)
    with app.test_request_context(headers={"Authorization": "Bearer from-bearer", "X-API-Key": "from-header"}):
        assert presented_key({"api_key": "from-body"}) == "from-bearer"
    with app.test_request_context(headers={"X-API-Key": "from-header"}):
        assert presented_key({"api_key": "from-body"}) == "from-header"
    with app.test_request_context():
        assert presented_key({"api_key": "from-body"}) == "from-body"
        assert presented_key({"api_key": 5}) is None
    with app.test_request_context("/recent?api_key=in-query"):
        assert presented_key() is None
