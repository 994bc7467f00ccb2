"""Unit-test fixtures for the worker: the tiny model built once and a runtime-like bundle."""

from __future__ import annotations

import pytest

from shared.catalog import ModelCatalog
from shared.settings import PROJECT_ROOT, Settings


@pytest.fixture(scope="session")
def worker_settings(model_cache_dir):
    return Settings(model_cache_dir=str(model_cache_dir), torch_threads=1)


@pytest.fixture(scope="session")
def catalog():
    return ModelCatalog.load(PROJECT_ROOT / "models.yaml")


@pytest.fixture(scope="session")
def generator(worker_settings, catalog):
    import torch

    from worker.cache import ModelCache
    from worker.generator import Generator
    from worker.loading import load_model

    torch.set_num_threads(1)
    cache = ModelCache(2, lambda spec: load_model(spec, worker_settings, "cpu", torch.float32))
    return Generator(catalog, cache)
