"""S3 storage against real S3 HTTP endpoints: moto's server, and one that answers 500."""

from __future__ import annotations

import http.server
import threading

import pytest

from shared.s3 import S3Storage
from shared.settings import Settings
from shared.storage import StorageError, make_storage
from tests.integration.stack import free_port

pytestmark = pytest.mark.integration
KEY = "cache/data/0b7f3c1e-8d2a-4f4e-9a51-6f0d7b2c9e11-0.png"


def s3_settings(endpoint: str, **changes) -> Settings:
    values = {"storage": "s3", "s3_bucket": "diffq-test", "s3_endpoint_url": endpoint, "s3_region": "us-east-1"}
    return Settings(**{**values, **changes})


def test_put_get_overwrite_and_missing(s3_endpoint):
    storage = make_storage(s3_settings(s3_endpoint, s3_create_bucket=True, s3_prefix="team-a"))
    assert isinstance(storage, S3Storage)
    storage.put(KEY, b"one", "image/png")
    storage.put(KEY, b"two", "image/png")
    assert storage.get(KEY) == b"two" and storage.exists(KEY)
    listed = storage.client.list_objects_v2(Bucket="diffq-test", Prefix="team-a/")["Contents"]
    assert [o["Key"] for o in listed] == [f"team-a/{KEY}"]
    with pytest.raises(KeyError):
        storage.get("cache/data/missing.json")
    with pytest.raises(StorageError):
        storage.put("../escape.png", b"x")


def test_missing_bucket_is_a_storage_error(s3_endpoint):
    storage = make_storage(s3_settings(s3_endpoint, s3_bucket="no-such-bucket"))
    with pytest.raises(StorageError, match="NoSuchBucket"):
        storage.put(KEY, b"x")


@pytest.fixture
def failing_endpoint():
    """An S3 endpoint that answers every request with 500."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _fail(self):
            self.send_response(500)
            self.send_header("Content-Type", "application/xml")
            body = b"<Error><Code>InternalError</Code><Message>boom</Message></Error>"
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _fail

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_endpoint_answering_500_is_a_storage_error(failing_endpoint):
    storage = make_storage(s3_settings(failing_endpoint))
    with pytest.raises(StorageError, match="InternalError"):
        storage.put(KEY, b"x")
    with pytest.raises(StorageError):
        storage.get(KEY)
