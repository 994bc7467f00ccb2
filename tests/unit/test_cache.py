"""The model cache: least recently used goes first, never a model in use."""

from __future__ import annotations

from worker.cache import ModelCache


def test_lru_eviction_and_reuse():
    loads, evicted = [], []
    cache = ModelCache(2, lambda name: loads.append(name) or f"model-{name}", on_evict=evicted.append)
    for name in ("a", "b", "a", "c"):
        with cache.use(name, name) as model:
            assert model == f"model-{name}"
    assert loads == ["a", "b", "c"]  # "a" was reused
    assert evicted == ["b"]  # least recently used
    assert cache.loaded() == ["a", "c"]


def test_a_model_in_use_is_never_evicted():
    cache = ModelCache(1, lambda name: name)
    with cache.use("a", "a"):
        with cache.use("b", "b"):
            assert cache.loaded() == ["a", "b"]  # over capacity while both run
        assert cache.loaded() == ["a"]  # "b" was idle and went; "a" is still in use
    assert cache.loaded() == ["a"]


def test_failed_load_leaves_nothing_behind():
    def loader(name):
        raise RuntimeError("broken")

    cache = ModelCache(2, loader)
    try:
        with cache.use("x", "x"):
            pass
    except RuntimeError:
        pass
    assert cache.loaded() == []
