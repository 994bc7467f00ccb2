"""The device engine: one thread owns the device and batches compatible work from many jobs.

Celery's threads hand work items to `Engine.submit` and wait on the returned future. The device
thread takes the oldest item, waits up to the batch window for compatible ones (same model,
pipeline, size, steps, sampler, guidance, ...: prompts and seeds may differ), and runs a single
pipeline call with one generator per image, so every image is what it would be alone. Encoding
images and writing them to storage happen back on the Celery threads, off the device.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from PIL import Image

log = logging.getLogger(__name__)


class Canceled(Exception):
    """The job was canceled while its work was queued or running on the device."""


class Requeue(Exception):
    """The worker is shutting down: the job goes back to the queue for another worker."""


@dataclass
class WorkItem:
    """Some images of one job that share every pipeline argument but prompt and seed."""

    job_id: str
    model: str
    params: dict
    prompts: list[str]
    seeds: list[int]
    init_image: Image.Image | None = None
    # Inpainting mask (L, output size) and ControlNet conditioning image, when the job has them.
    mask_image: Image.Image | None = None
    control_image: Image.Image | None = None
    on_step: Callable[[int], None] = lambda step: None
    is_canceled: Callable[[], bool] = lambda: False
    future: Future = field(default_factory=Future)
    canceled: bool = False
    # Set when the worker stops: the item is interrupted like a cancel, but goes back to the queue.
    requeue: bool = False
    # Seconds of the pipeline call this item ran in (shared with its batch mates).
    device_s: float = 0.0

    @property
    def size(self) -> int:
        return len(self.seeds)

    @property
    def key(self) -> tuple:
        """Items with equal keys can share one pipeline call."""
        p = self.params
        return (
            self.model,
            self.init_image is not None,
            p["width"],
            p["height"],
            p["steps"],
            p["guidance_scale"],
            p["sampler"],
            p.get("timestep_spacing"),
            p.get("ddim_eta", 0.0),
            p.get("clip_skip", 0),
            tuple((lora["name"], lora["weight"]) for lora in p.get("loras") or []),
            p.get("strength"),
            p.get("noise_multiplier", 1.0),
            p.get("controlnet"),
            p.get("control_scale", 1.0),
            # A mask or control image belongs to its job: such items batch only with their own.
            self.job_id if self.mask_image is not None or self.control_image is not None else "",
        )


class Engine:
    def __init__(
        self, run_batch: Callable[[list[WorkItem]], list[list[Image.Image]]], max_batch: int = 8, window_s: float = 0.02
    ):
        self.run_batch = run_batch
        self.max_batch = max(1, max_batch)
        self.window_s = max(0.0, window_s)
        self._pending: deque[WorkItem] = deque()
        self._ready = threading.Condition()
        self._stopping = False
        self._draining = False
        self._running: list[WorkItem] = []
        self.batches_run = 0
        # The latest batch sizes (bounded: a worker runs for months), and a hook for metrics.
        self.batch_sizes: deque[int] = deque(maxlen=1000)
        self.on_batch: Callable[[int], None] = lambda images: None
        self._thread = threading.Thread(target=self._loop, name="device", daemon=True)
        self._thread.start()

    def submit(self, item: WorkItem) -> Future:
        with self._ready:
            if self._draining:
                item.future.set_exception(Requeue(item.job_id))
                return item.future
            self._pending.append(item)
            self._ready.notify()
        return item.future

    def drain(self, grace_s: float) -> None:
        """Worker shutdown: requeue waiting work now, let the running batch finish for `grace_s`."""
        with self._ready:
            self._draining = True
            waiting = list(self._pending)
            self._pending.clear()
        for item in waiting:
            item.future.set_exception(Requeue(item.job_id))

        def interrupt():
            for item in list(self._running):
                item.requeue = item.canceled = True

        timer = threading.Timer(grace_s, interrupt)
        timer.daemon = True
        timer.start()

    def stop(self) -> None:
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[WorkItem] | None:
        with self._ready:
            while not self._pending and not self._stopping:
                self._ready.wait()
            if self._stopping:
                return None
            first = self._pending.popleft()
            batch, size = [first], first.size
            deadline = time.monotonic() + self.window_s
            while size < self.max_batch:
                taken = self._take_compatible(first.key, self.max_batch - size)
                if taken is not None:
                    batch.append(taken)
                    size += taken.size
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._ready.wait(remaining)
            return batch

    def _take_compatible(self, key: tuple, room: int) -> WorkItem | None:
        for item in self._pending:
            if item.key == key and item.size <= room:
                self._pending.remove(item)
                return item
        return None

    def _run(self, batch: list[WorkItem]) -> None:
        live = [item for item in batch if not self._check_canceled(item)]
        if not live:
            return
        self.batches_run += 1
        images_in_call = sum(item.size for item in live)
        self.batch_sizes.append(images_in_call)
        self.on_batch(images_in_call)
        self._running = live
        started = time.perf_counter()
        try:
            images = self.run_batch(live)
        except Exception as exc:  # noqa: BLE001 - every job of the batch gets the error
            for item in live:
                if not item.future.done():
                    item.future.set_exception(Requeue(item.job_id) if item.requeue else exc)
            return
        finally:
            self._running = []
        for item in live:
            item.device_s = time.perf_counter() - started
        for item, item_images in zip(live, images, strict=True):
            if item.requeue:
                item.future.set_exception(Requeue(item.job_id))
            elif item.canceled:
                item.future.set_exception(Canceled(item.job_id))
            else:
                item.future.set_result(item_images)

    @staticmethod
    def _check_canceled(item: WorkItem) -> bool:
        if item.canceled or item.is_canceled():
            item.canceled = True
            item.future.set_exception(Canceled(item.job_id))
            return True
        return False
