"""An LRU cache of loaded models that never frees a model a running job is using."""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager


class _Entry:
    def __init__(self, value):
        self.value = value
        self.users = 0


class ModelCache:
    """Keeps up to `capacity` idle models; models in use stay loaded even past capacity."""

    def __init__(self, capacity: int, loader, on_evict=None):
        self.capacity = max(1, capacity)
        self.loader = loader
        self.on_evict = on_evict
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = {}

    @contextmanager
    def use(self, name: str, *args):
        """Yield the loaded model `name`, loading it with loader(*args) on first use."""
        entry = self._acquire(name, args)
        try:
            yield entry.value
        finally:
            with self._lock:
                entry.users -= 1
                self._evict()

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def _acquire(self, name: str, args) -> _Entry:
        with self._lock:
            load_lock = self._load_locks.setdefault(name, threading.Lock())
        # One loader per model at a time; other models keep serving meanwhile.
        with load_lock:
            with self._lock:
                entry = self._entries.get(name)
                if entry is not None:
                    entry.users += 1
                    self._entries.move_to_end(name)
                    return entry
            value = self.loader(*args)
            with self._lock:
                entry = _Entry(value)
                entry.users = 1
                self._entries[name] = entry
                self._evict()
                return entry

    def _evict(self) -> None:
        """Drop least recently used idle models until at most `capacity` remain."""
        for name in list(self._entries):
            if len(self._entries) <= self.capacity:
                return
            if self._entries[name].users == 0:
                del self._entries[name]
                if self.on_evict is not None:
                    self.on_evict(name)
