"""Fixtures shared by all tests: settings pointing at temporary folders, and the test API key."""

from __future__ import annotations

import os

import pytest

from shared.settings import Settings

TEST_KEY = "test-key-0123456789"
OTHER_KEY = "other-key-9876543210"
# Keep torch from taking both cores in every process the tests start.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def model_cache_dir(tmp_path_factory):
    """One model cache per session, so the tiny model is built once."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture
def settings(tmp_path, model_cache_dir):
    return Settings(
        redis_url="redis://127.0.0.1:1/0",
        output_dir=str(tmp_path / "outputs"),
        model_cache_dir=str(model_cache_dir),
        api_keys=f"{TEST_KEY},{OTHER_KEY}",
        torch_threads=1,
        # Rate limits count in a real Redis; tests/integration/test_access.py covers them.
        rate_limit="",
        rate_limit_submit="",
    )
