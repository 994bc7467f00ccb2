"""Worker metrics for Prometheus, served by each worker process on WORKER_METRICS_PORT."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class WorkerMetrics:
    def __init__(self, device: str = "cpu"):
        self.registry = CollectorRegistry()
        self.jobs = Counter(
            "diffq_worker_jobs_total",
            "Jobs this worker finished, by model and final state.",
            ["model", "state"],
            registry=self.registry,
        )
        self.job_seconds = Histogram(
            "diffq_worker_job_seconds",
            "Time from a job's start to its end.",
            ["model"],
            buckets=SECONDS,
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "diffq_worker_queue_wait_seconds",
            "Time from the API accepting a job to its start.",
            ["model"],
            buckets=SECONDS,
            registry=self.registry,
        )
        self.batch_images = Histogram(
            "diffq_worker_batch_images",
            "Images per pipeline call of the device engine.",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.model_load = Histogram(
            "diffq_worker_model_load_seconds",
            "Time to load a model.",
            ["model"],
            buckets=SECONDS,
            registry=self.registry,
        )
        memory = Gauge(
            "diffq_worker_device_memory_bytes",
            "Device memory held by torch on this worker's GPU.",
            registry=self.registry,
        )
        memory.set_function(lambda: _device_memory(device))

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)


def _device_memory(device: str) -> float:
    if not device.startswith("cuda"):
        return 0.0
    import torch

    return float(torch.cuda.memory_allocated())
