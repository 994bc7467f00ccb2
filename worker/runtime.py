"""Everything a worker process needs to run jobs, built once per process on first use."""

from __future__ import annotations

import gc
import logging
import socket
import threading

from shared import heartbeats, webhooks
from shared.catalog import ModelCatalog
from shared.celery_app import make_celery
from shared.jobs import JobStore, redis_client
from shared.settings import Settings
from shared.storage import make_storage
from shared.threadlog import ThreadLogs

log = logging.getLogger(__name__)


class WorkerRuntime:
    def __init__(self, settings: Settings, worker_name: str | None = None):
        import diffusers
        import torch
        import transformers

        from worker.cache import ModelCache
        from worker.detectors import ModelDetectors
        from worker.devices import dtype_for, resolve_device
        from worker.extensions import PreprocessRunner
        from worker.generator import Generator
        from worker.loading import load_model
        from worker.metrics import WorkerMetrics
        from worker.runner import JobRunner

        # Progress bars would fill the worker log; progress goes to the job record instead.
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
        if settings.torch_threads > 0:
            torch.set_num_threads(settings.torch_threads)
        self.settings = settings
        self.device = resolve_device(settings.device)
        dtype = dtype_for(self.device)
        self.catalog = ModelCatalog.load(settings.models_file)
        self.jobs = JobStore(
            redis_client(settings.redis_url, settings.redis_timeout_s), settings.job_ttl_s, settings.recent_keep
        )
        self.storage = make_storage(settings)
        self.metrics = WorkerMetrics(self.device)

        def load(spec):
            model = load_model(spec, settings, self.device, dtype, self.catalog.loras)
            self.metrics.model_load.labels(spec.name).observe(model.load_seconds)
            return model

        self.cache = ModelCache(settings.model_cache_size, load, on_evict=self._release_memory)
        self.generator = Generator(
            self.catalog,
            self.cache,
            settings.max_batch,
            settings.batch_window_ms / 1000,
            timeout_s=settings.task_soft_time_limit_s,
            detectors=ModelDetectors(self.catalog.detectors, settings),
        )
        self.name = worker_name or socket.gethostname()
        self.generator.engine.on_batch = self.metrics.batch_images.observe
        notifier = make_celery(settings, name="diffq-worker-notify")
        self.runner = JobRunner(
            self.jobs,
            self.storage,
            self.generator,
            self.name,
            self.metrics,
            settings.max_deliveries,
            notify=lambda job_id, event: webhooks.queue_delivery(notifier, job_id, event),
            logs=ThreadLogs.with_redis(self.storage, self.jobs.redis),
        )
        self.preprocessor = PreprocessRunner(self.jobs, self.storage, settings, self.name)
        if settings.worker_metrics_port:
            self.metrics.serve(settings.worker_metrics_port)
        heartbeats.beat(self.jobs.redis, self.name, {"device": self.device}, settings.heartbeat_s * 3)
        log.info("worker runtime ready on %s", self.device)

    def preload(self, names: list[str]) -> None:
        """Load models before the first job; one that fails is logged and loads again on demand."""
        from worker.errors import ModelUnavailable

        for label in names:
            spec = self.catalog.resolve(label)
            if spec is None:
                log.error("PRELOAD_MODELS names '%s', which is not in the catalog", label)
                continue
            try:
                with self.cache.use(spec.name, spec):
                    pass
            except ModelUnavailable as exc:
                log.error("preloading %s failed: %s", spec.name, exc.message)
        if self.settings.warmup:
            self.warm_up(self.cache.loaded())
        heartbeats.beat(self.jobs.redis, self.name, {"loaded": self.cache.loaded()}, self.settings.heartbeat_s * 3)

    def warm_up(self, names: list[str]) -> None:
        """One short generation per loaded model, so the first job does not pay for kernel setup."""
        import time

        for name in names:
            spec = self.catalog.models[name]
            params = {
                "model": name,
                "prompt": "warm-up",
                "negative_prompt": "",
                "steps": 2,
                "n_samples": 1,
                "n_iter": 1,
                "seed": 0,
                **{k: spec.default(k) for k in ("width", "height", "guidance_scale", "sampler", "timestep_spacing")},
            }
            started = time.perf_counter()
            try:
                self.generator.run(params, None, lambda step, total: None)
            except Exception:  # noqa: BLE001 - a failed warm-up leaves the model usable or reported later
                log.exception("warm-up of %s failed", name)
                continue
            log.info("warmed up %s in %.2fs", name, time.perf_counter() - started)

    def _release_memory(self, name: str) -> None:
        import torch

        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
        log.info("model %s evicted from the cache", name)


_lock = threading.Lock()
_runtime: WorkerRuntime | None = None


def get_runtime(settings: Settings, worker_name: str | None = None) -> WorkerRuntime:
    """The process's runtime, built lazily: after the prefork fork, never in the parent."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = WorkerRuntime(settings, worker_name)
        return _runtime


def current() -> WorkerRuntime | None:
    """This process's runtime if it has been built."""
    return _runtime
