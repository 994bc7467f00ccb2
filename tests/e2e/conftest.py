"""End-to-end tests use the integration stack (real Redis, worker and HTTP)."""

from tests.integration.conftest import (  # noqa: F401 - fixtures for this folder
    api,
    client,
    make_api,
    redis_server,
    s3_endpoint,
    stack_settings,
    worker,
)
