"""Settings read once from the environment into one object; tests build their own."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


# Other names a setting answers to: the issue and the operators' runbooks say VISIBILITY_TIMEOUT.
ENV_ALIASES = {"visibility_timeout_s": ("VISIBILITY_TIMEOUT",)}


def _env_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Every tunable of the API and the workers, with defaults that work on one laptop."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    # Result backend; defaults to the broker's Redis.
    result_backend_url: str = ""
    storage: str = "local"
    output_dir: str = str(PROJECT_ROOT / "outputs")
    # STORAGE=s3: credentials come from the usual AWS variables (AWS_ACCESS_KEY_ID, ...).
    s3_bucket: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""
    s3_prefix: str = ""
    s3_create_bucket: bool = False
    model_cache_dir: str = str(PROJECT_ROOT / "model_cache")
    models_file: str = str(PROJECT_ROOT / "models.yaml")
    templates_dir: str = str(PROJECT_ROOT / "templates")
    # Comma-separated plain keys, or a file of keys (one per line, plain or "sha256:<hex>").
    api_keys: str = ""
    api_keys_file: str = ""
    # Keys (plain or "sha256:<hex>") that may read and cancel every caller's jobs and images.
    admin_api_keys: str = ""
    # Secret that signs image links; derived from the key hashes when empty.
    url_signing_key: str = ""
    image_link_ttl_s: int = 3600
    max_queue: int = 100
    # Per-key request limits (Flask-Limiter syntax, ";" between limits; empty: none), counted in Redis.
    rate_limit: str = "3000/minute"
    rate_limit_submit: str = "600/minute"
    # Webhooks: the server secret each key's signing secret is derived from (empty: webhooks off),
    # whether private/loopback destinations are allowed, and the retry schedule (backoff doubles).
    webhook_secret: str = ""
    webhook_allow_private: bool = False
    webhook_max_attempts: int = 6
    webhook_backoff_s: float = 5.0
    webhook_timeout_s: float = 10.0
    # Web origins allowed to call the API from a browser (comma-separated, "*" for any). Empty: no CORS.
    cors_origins: str = ""
    # How long an Idempotency-Key keeps naming the task it created.
    idempotency_ttl_s: int = 24 * 3600
    max_content_length: int = 20 * 1024 * 1024
    max_input_pixels: int = 4096 * 4096
    sync_timeout_s: float = 60.0
    job_ttl_s: int = 7 * 24 * 3600
    recent_keep: int = 1000
    redis_timeout_s: float = 0.5
    # Worker side.
    worker_models: str = ""
    # Models each worker process loads at start instead of on its first job ("load once, serve many").
    preload_models: str = ""
    device: str = "auto"
    # big | medium | little | tiny: how much memory-saving the worker trades for speed (seed 002).
    machine_size: str = "big"
    model_cache_size: int = 2
    torch_threads: int = 0
    allow_pickle_checkpoints: bool = False
    # The device engine: jobs arriving within the window that can share a pipeline call are
    # batched, up to MAX_BATCH images. Run the worker with at least MAX_BATCH threads.
    max_batch: int = 8
    batch_window_ms: float = 20.0
    warmup: bool = True
    # Worker log lines: json (one object per line, with the job id) or text.
    log_format: str = "json"
    log_level: str = "INFO"
    # Serve Prometheus metrics from each worker on this port (0: off).
    worker_metrics_port: int = 0
    torch_compile: bool = False
    channels_last: bool = False
    hf_offline: bool = False
    # Celery reliability knobs (see RELIABILITY.md); the visibility timeout must exceed
    # queue wait plus run time, or Redis hands a running job to a second worker.
    # A job whose worker died this many times (crash, OOM kill) is failed instead of rerun forever.
    max_deliveries: int = 3
    task_soft_time_limit_s: int = 600
    task_time_limit_s: int = 660
    visibility_timeout_s: int = 3600
    result_expires_s: int = 24 * 3600
    heartbeat_s: float = 10.0
    # How often (across all workers) unfinished jobs are checked for a lost queue message; a job
    # missing from the queues on two checks this far apart is failed with task_lost. 0: never.
    reaper_interval_s: float = 60.0
    # The image_encoding extension: a CLIP vision model (diffusers-style folder or Hugging Face repo
    # id, e.g. openai/clip-vit-base-patch32). Empty: a deterministic offline encoder.
    clip_vision_model: str = ""
    # How long a new pool process may take to start (imports torch, preloads models).
    worker_start_timeout_s: float = 300.0
    # On SIGTERM a worker finishes its job for at most this long, then requeues it and exits.
    worker_soft_shutdown_s: float = 60.0

    @classmethod
    def from_env(cls, environ: dict | None = None, **overrides) -> Settings:
        """Build settings from environment variables named like the fields, upper-cased."""
        env = os.environ if environ is None else environ
        values: dict = {}
        for f in fields(cls):
            raw = env.get(f.name.upper())
            for alias in ENV_ALIASES.get(f.name, ()):
                if raw is None or raw == "":
                    raw = env.get(alias)
            if raw is None or raw == "":
                continue
            default = f.default
            if isinstance(default, bool):
                values[f.name] = _env_bool(raw)
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, float):
                values[f.name] = float(raw)
            else:
                values[f.name] = raw
        values.update(overrides)
        return cls(**values)

    @property
    def backend_url(self) -> str:
        return self.result_backend_url or self.redis_url

    @property
    def worker_model_names(self) -> list[str]:
        return _names(self.worker_models)

    @property
    def preload_model_names(self) -> list[str]:
        return _names(self.preload_models)


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]
