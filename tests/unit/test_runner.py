"""The job runner records every outcome. The generator is a stand-in here so each failure can be
forced on demand; the real generator runs in test_tiny_model.py and the integration tests."""

from __future__ import annotations

import fakeredis
import pytest
import redis
from celery.exceptions import SoftTimeLimitExceeded
from PIL import Image

from shared.jobs import JobStore
from shared.storage import LocalStorage, StorageError
from worker import runner as runner_module
from worker.errors import ModelUnavailable
from worker.generator import Generated
from worker.runner import JobRunner

PARAMS = {
    "model": "tiny",
    "prompt": "p",
    "negative_prompt": "",
    "steps": 2,
    "guidance_scale": 7.5,
    "width": 8,
    "height": 8,
    "seed": 1,
    "sampler": "ddim",
    "format": "png",
    "n_samples": 1,
    "n_iter": 1,
}


class StandInGenerator:
    def __init__(self, outcome):
        self.outcome = outcome
        self.calls = 0

    def run(self, params, init_image, on_progress, job_id="", is_canceled=lambda: False, extra_images=None):
        self.calls += 1
        self.is_canceled = is_canceled
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        on_progress(2, 2)
        return Generated([(Image.new("RGB", (8, 8)), params["seed"])], 2, ["a warning"])


class FailingStorage(LocalStorage):
    def __init__(self, root):
        super().__init__(root)
        self.attempts = 0

    def put(self, key, data, content_type="application/octet-stream"):
        self.attempts += 1
        raise StorageError("disk full")


@pytest.fixture
def jobs():
    store = JobStore(fakeredis.FakeRedis(decode_responses=True))
    store.create("j1", owner="o", kind="generate", model="tiny", params=PARAMS, warnings=[], queue="q", max_active=10)
    return store


def test_success_records_images_warnings_and_progress(jobs, tmp_path):
    assert JobRunner(jobs, LocalStorage(tmp_path), StandInGenerator(None), "w").run("j1", PARAMS) == "succeeded"
    job = jobs.get("j1")
    assert job["state"] == "succeeded" and job["warnings"] == ["a warning"]
    assert job["images"][0]["key"] == "cache/data/j1-0.png" and job["progress"] == {"step": 2, "total": 2}
    assert (tmp_path / "cache" / "data" / "j1.json").is_file()


def test_a_finished_job_is_not_run_again(jobs, tmp_path):
    generator = StandInGenerator(None)
    runner = JobRunner(jobs, LocalStorage(tmp_path), generator, "w")
    runner.run("j1", PARAMS)
    assert runner.run("j1", PARAMS) == "succeeded"
    assert generator.calls == 1


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ModelUnavailable("model 'x' could not be loaded: gone"), "model_unavailable"),
        (SoftTimeLimitExceeded(), "timeout"),
        (RuntimeError("boom"), "internal_error"),
    ],
)
def test_failures_are_recorded_with_a_code(jobs, tmp_path, error, code):
    assert JobRunner(jobs, LocalStorage(tmp_path), StandInGenerator(error), "w").run("j1", PARAMS) == "failed"
    job = jobs.get("j1")
    assert job["state"] == "failed" and job["error"]["code"] == code
    assert "Traceback" not in job["error"]["message"]
    assert jobs.active_count() == 0


def test_storage_failures_are_retried_then_reported(jobs, tmp_path, monkeypatch):
    monkeypatch.setattr(runner_module.time, "sleep", lambda s: None)
    storage = FailingStorage(tmp_path)
    JobRunner(jobs, storage, StandInGenerator(None), "w").run("j1", PARAMS)
    job = jobs.get("j1")
    assert storage.attempts == runner_module.STORAGE_ATTEMPTS
    assert job["error"]["code"] == "storage_error" and "disk full" in job["error"]["message"]


def test_missing_input_image_is_a_storage_error(jobs, tmp_path):
    params = {**PARAMS, "init_image_key": "cache/inputs/j1.png", "strength": 0.5}
    JobRunner(jobs, LocalStorage(tmp_path), StandInGenerator(None), "w").run("j1", params)
    assert jobs.get("j1")["error"]["code"] == "storage_error"


def test_a_cancel_ends_the_job_canceled_without_results(jobs, tmp_path):
    from worker.engine import Canceled

    runner = JobRunner(jobs, LocalStorage(tmp_path), StandInGenerator(Canceled("j1")), "w")
    assert runner.run("j1", PARAMS) == "canceled"
    assert jobs.get("j1")["state"] == "canceled" and jobs.active_count() == 0
    assert not (tmp_path / "cache").exists()


def test_cancel_requests_are_honoured_by_the_step_check(jobs):
    from worker.runner import _CancelWatch

    jobs.start("j1", "w")
    watch = _CancelWatch(jobs, "j1")
    watch.progress(1, 2)
    assert watch.is_canceled() is False
    assert jobs.request_cancel("j1") == "running"
    watch.progress(2, 2)  # the progress write brings the request back
    assert watch.is_canceled() is True
    assert jobs.get("j1")["state"] == "canceled"


def test_a_job_whose_worker_keeps_dying_is_failed_not_rerun(jobs, tmp_path):
    generator = StandInGenerator(None)
    runner = JobRunner(jobs, LocalStorage(tmp_path), generator, "w", max_deliveries=3)
    for _ in range(3):  # three starts, each ending with the worker killed (nothing recorded after start)
        jobs.start("j1", "w")
    assert runner.run("j1", PARAMS) == "failed"
    job = jobs.get("j1")
    assert job["error"]["code"] == "worker_lost" and "started 3 times" in job["error"]["message"]
    assert generator.calls == 0 and jobs.active_count() == 0


def test_clean_requeues_do_not_count_as_deaths(jobs, tmp_path):
    for _ in range(5):  # five scale-downs in a row
        jobs.start("j1", "w")
        jobs.requeue("j1")
    assert (
        JobRunner(jobs, LocalStorage(tmp_path), StandInGenerator(None), "w", max_deliveries=3).run("j1", PARAMS)
        == "succeeded"
    )
    assert jobs.get("j1")["deliveries"] == 1


class FlakyRedisJobs:
    """The real job store, with Redis 'down' for the first `outages` progress and finish calls."""

    def __init__(self, store, outages):
        self.store, self.outages = store, outages

    def __getattr__(self, name):
        method = getattr(self.store, name)
        if name not in ("progress", "succeed"):
            return method

        def call(*args):
            if self.outages.get(name, 0):
                self.outages[name] -= 1
                raise redis.exceptions.ConnectionError("Connection refused")
            return method(*args)

        return call


def test_a_redis_restart_mid_job_costs_progress_not_the_result(jobs, tmp_path, monkeypatch):
    monkeypatch.setattr(runner_module.time, "sleep", lambda s: None)
    flaky = FlakyRedisJobs(jobs, {"progress": 1, "succeed": 2})
    assert JobRunner(flaky, LocalStorage(tmp_path), StandInGenerator(None), "w").run("j1", PARAMS) == "succeeded"
    assert jobs.get("j1")["state"] == "succeeded" and flaky.outages == {"progress": 0, "succeed": 0}


def test_a_record_that_stays_unreachable_is_not_forgotten_silently(jobs, tmp_path, monkeypatch):
    monkeypatch.setattr(runner_module.time, "sleep", lambda s: None)
    flaky = FlakyRedisJobs(jobs, {"succeed": 10**6})
    runner = JobRunner(flaky, LocalStorage(tmp_path), StandInGenerator(None), "w", record_patience_s=0.05)
    # The error reaches Celery and the worker's log; the record still says running, so either the
    # unacknowledged message runs it again or the reaper marks it lost.
    with pytest.raises(redis.exceptions.ConnectionError):
        runner.run("j1", PARAMS)
