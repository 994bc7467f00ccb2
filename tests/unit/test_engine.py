"""The device engine: which work shares a pipeline call, and what a batch does to each image.

The first tests give the engine a recording stand-in for the pipeline call, so they can observe
exactly which items were grouped; the rest run the real tiny model."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.unit.tiny_job import TINY_JOB
from worker.engine import Canceled, Engine, WorkItem

PARAMS = {**TINY_JOB, "prompt": "p", "seed": 1}


def item(seeds=(1,), **changes):
    return WorkItem(
        job_id="j", model="tiny", params={**PARAMS, **changes}, prompts=["p"] * len(seeds), seeds=list(seeds)
    )


class Recorder:
    def __init__(self, delay=0.0):
        self.calls = []
        self.delay = delay

    def __call__(self, items):
        self.calls.append([i.seeds for i in items])
        time.sleep(self.delay)
        return [[f"image-{s}" for s in i.seeds] for i in items]


def test_compatible_items_share_a_call_up_to_max_batch():
    recorder = Recorder()
    engine = Engine(recorder, max_batch=4, window_s=0.2)
    items = [item((n,)) for n in range(6)]
    futures = [engine.submit(i) for i in items]
    assert [f.result(5) for f in futures] == [[f"image-{n}"] for n in range(6)]
    assert recorder.calls == [[[0], [1], [2], [3]], [[4], [5]]]
    engine.stop()


def test_incompatible_items_do_not_mix():
    recorder = Recorder()
    engine = Engine(recorder, max_batch=8, window_s=0.2)
    futures = [
        engine.submit(item((1,))),
        engine.submit(item((2,), steps=4)),
        engine.submit(item((3,))),
        engine.submit(item((4,), width=128)),
        engine.submit(item((5,), guidance_scale=3.0)),
    ]
    for future in futures:
        future.result(5)
    assert sorted(recorder.calls) == sorted([[[1], [3]], [[2]], [[4]], [[5]]])
    engine.stop()


def test_an_item_larger_than_the_room_waits_for_the_next_call():
    recorder = Recorder()
    engine = Engine(recorder, max_batch=4, window_s=0.2)
    futures = [engine.submit(item((1, 2, 3))), engine.submit(item((4, 5))), engine.submit(item((6,)))]
    for future in futures:
        future.result(5)
    assert recorder.calls == [[[1, 2, 3], [6]], [[4, 5]]]
    engine.stop()


def test_window_zero_means_no_waiting():
    recorder = Recorder(delay=0.05)
    engine = Engine(recorder, max_batch=8, window_s=0.0)
    first = engine.submit(item((1,)))
    time.sleep(0.01)
    second = engine.submit(item((2,)))
    first.result(5), second.result(5)
    assert recorder.calls == [[[1]], [[2]]]
    engine.stop()


def test_a_canceled_item_is_dropped_before_it_runs_and_errors_reach_every_job():
    def failing(items):
        raise RuntimeError("device fell over")

    engine = Engine(failing, max_batch=4, window_s=0.1)
    doomed = item((1,))
    doomed.is_canceled = lambda: True
    canceled, failed = engine.submit(doomed), engine.submit(item((2,)))
    with pytest.raises(Canceled):
        canceled.result(5)
    with pytest.raises(RuntimeError, match="fell over"):
        failed.result(5)
    engine.stop()


# -- the real tiny model ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def generator(worker_settings, catalog):
    import torch

    from worker.cache import ModelCache
    from worker.generator import Generator
    from worker.loading import load_model

    cache = ModelCache(2, lambda spec: load_model(spec, worker_settings, "cpu", torch.float32))
    gen = Generator(catalog, cache, max_batch=8, window_s=0.3)
    yield gen
    gen.engine.stop()


def run_concurrently(generator, bodies, cancel_at=None):
    results, errors = {}, {}

    def job(index, params):
        steps = []

        def is_canceled():
            return cancel_at is not None and index == cancel_at[0] and len(steps) >= cancel_at[1]

        try:
            results[index] = generator.run(
                params, None, lambda s, t: steps.append(s), job_id=str(index), is_canceled=is_canceled
            )
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            errors[index] = exc

    threads = [threading.Thread(target=job, args=(i, {**PARAMS, **body})) for i, body in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results, errors


def pixels(result):
    return np.asarray(result.images[0][0], dtype=np.int16)


def test_jobs_batched_together_match_each_made_alone(generator):
    bodies = [{"prompt": f"prompt {i}", "seed": 100 + i, "negative_prompt": "blur" if i % 2 else ""} for i in range(4)]
    before = len(generator.engine.batch_sizes)
    results, errors = run_concurrently(generator, bodies)
    assert not errors
    assert max(list(generator.engine.batch_sizes)[before:]) >= 2  # they really shared pipeline calls
    for index, body in enumerate(bodies):
        alone = generator.run({**PARAMS, **body}, None, lambda s, t: None)
        # Batched convolutions may round differently on CPU: tolerance 2/255 per channel.
        assert np.abs(pixels(results[index]) - pixels(alone)).max() <= 2


def test_canceling_one_job_does_not_spoil_its_batch(generator):
    bodies = [{"prompt": "keep", "seed": 7, "steps": 6}, {"prompt": "drop", "seed": 8, "steps": 6}]
    results, errors = run_concurrently(generator, bodies, cancel_at=(1, 2))
    assert isinstance(errors.get(1), Canceled) and 0 in results
    alone = generator.run({**PARAMS, **bodies[0]}, None, lambda s, t: None)
    assert np.abs(pixels(results[0]) - pixels(alone)).max() <= 2


def test_progress_is_reported_per_job_while_batched(generator):
    seen = {0: [], 1: []}
    threads = [
        threading.Thread(
            target=generator.run,
            args=({**PARAMS, "seed": i, "n_iter": 2}, None, lambda s, t, i=i: seen[i].append((s, t))),
        )
        for i in (0, 1)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for index in (0, 1):
        assert seen[index][-1] == (6, 6) and [s for s, _ in seen[index]] == sorted(s for s, _ in seen[index])
