"""Build the workers' Celery app: queues of the models it serves, tasks, heartbeats."""

from __future__ import annotations

import logging
import os
import threading

from celery import signals
from kombu import Queue

from shared import heartbeats
from shared.catalog import ModelCatalog
from shared.celery_app import WEBHOOK_QUEUE, make_celery
from shared.extensions import PREPROCESS_QUEUE
from shared.jobs import JobStore, redis_client
from shared.settings import Settings
from worker.memory import profile as memory_profile
from worker.tasks import register_tasks
from worker.webhooks import register_webhook_task

log = logging.getLogger(__name__)


def served_models(settings: Settings, catalog: ModelCatalog) -> list[str]:
    """WORKER_MODELS (names or aliases), or every configured model."""
    wanted = settings.worker_model_names
    if not wanted:
        return catalog.names()
    names = []
    for label in wanted:
        spec = catalog.resolve(label)
        if spec is None:
            raise SystemExit(f"WORKER_MODELS names '{label}', which is not in {settings.models_file}")
        names.append(spec.name)
    return names


def create_worker_app(settings: Settings | None = None):
    settings = settings or Settings.from_env()
    catalog = ModelCatalog.load(settings.models_file)
    models = served_models(settings, catalog)
    try:
        memory_profile(settings.machine_size)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    app = make_celery(settings, name="diffq-worker")
    if settings.redis_url.startswith("redis://"):
        from worker.broker import TRANSPORT

        app.conf.broker_transport = TRANSPORT
    # Every worker also delivers webhooks and runs preprocess extensions, so they go out while any worker is up.
    app.conf.task_queues = [Queue(catalog.models[name].queue) for name in models] + [
        Queue(WEBHOOK_QUEUE),
        Queue(PREPROCESS_QUEUE),
    ]
    app.conf.worker_proc_alive_timeout = settings.worker_start_timeout_s
    identity = {"name": f"pid-{os.getpid()}"}
    register_tasks(app, settings, lambda: identity["name"])
    register_webhook_task(
        app, settings, lambda: JobStore(redis_client(settings.redis_url, settings.redis_timeout_s), settings.job_ttl_s)
    )
    _connect_signals(app, settings, models, identity)
    return app


def _connect_signals(app, settings: Settings, models: list[str], identity: dict) -> None:
    stop = threading.Event()

    @signals.setup_logging.connect(weak=False)
    def _logging(**_kwargs):
        # Connecting here tells Celery not to configure logging itself.
        from worker import logs

        logs.configure(settings.log_format, settings.log_level)

    @signals.celeryd_after_setup.connect(weak=False)
    def _named(sender, **_kwargs):
        identity["name"] = str(sender)

    @signals.worker_ready.connect(weak=False)
    def _prepare_in_process(sender=None, **_kwargs):
        # Threads/solo pools run jobs in this process: build the runtime here, in the background
        # so the heartbeat starts at once. (Prefork builds it in each child, after the fork.)
        pool = getattr(sender, "pool", None)
        if pool is not None and not type(pool).__module__.endswith("prefork"):
            threading.Thread(target=_prepare_child, name="prepare-runtime", daemon=True).start()

    @signals.worker_ready.connect(weak=False)
    def _start(sender=None, **_kwargs):
        client = redis_client(settings.redis_url, settings.redis_timeout_s)
        # "device" itself is reported by the pool child once it has resolved DEVICE=auto.
        info = {"models": models, "device_setting": settings.device, "pid": os.getpid(), "state": "ready"}
        # How many jobs it runs at once (GET /server/status compares it with its running jobs).
        info["concurrency"] = getattr(getattr(sender, "pool", None), "limit", None) or 1

        def loop():
            while not stop.is_set():
                try:
                    heartbeats.beat(client, identity["name"], info, settings.heartbeat_s * 3)
                except Exception as exc:  # noqa: BLE001 - Redis may be restarting; try again next beat
                    log.warning("heartbeat failed: %s", exc)
                stop.wait(settings.heartbeat_s)

        threading.Thread(target=loop, name="heartbeat", daemon=True).start()
        if settings.reaper_interval_s > 0:
            threading.Thread(target=_reaper_loop, args=(client,), name="reaper", daemon=True).start()

    def _reaper_loop(client):
        from shared.reaper import reap_if_due
        from shared.webhooks import queue_delivery, wants

        jobs = JobStore(client, settings.job_ttl_s, settings.recent_keep)
        while not stop.wait(settings.reaper_interval_s):
            try:
                for job_id in reap_if_due(jobs, settings.reaper_interval_s):
                    if wants((jobs.get(job_id) or {}).get("params") or {}, "failed"):
                        queue_delivery(app, job_id, "failed")
            except Exception as exc:  # noqa: BLE001 - Redis may be restarting; scan again later
                log.warning("reaper scan failed: %s", exc)

    @signals.worker_process_init.connect(weak=False)
    def _prepare_child(**_kwargs):
        # Build the runtime (torch, device, clients) right after the fork, not on the first job.
        from worker.runtime import get_runtime

        try:
            get_runtime(settings, identity["name"]).preload(settings.preload_model_names)
        except Exception:  # noqa: BLE001 - the first task builds it again and reports any error
            log.exception("could not prepare the worker runtime")

    @signals.worker_shutting_down.connect(weak=False)
    def _drain(**_kwargs):
        # Warm shutdown waits for running tasks; the engine makes them end quickly: waiting work
        # is requeued now, the batch on the device gets WORKER_SOFT_SHUTDOWN_S to finish.
        from worker import runtime

        if runtime.current() is not None:
            runtime.current().generator.engine.drain(settings.worker_soft_shutdown_s)

    @signals.worker_shutdown.connect(weak=False)
    def _stop(**_kwargs):
        stop.set()
        try:
            heartbeats.forget(redis_client(settings.redis_url, settings.redis_timeout_s), identity["name"])
        except Exception:  # noqa: BLE001 - best effort; the key expires anyway
            pass
