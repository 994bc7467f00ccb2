"""Seed 000 and 002 over real HTTP with a real worker: thread logs, ratings, /fetch/log,
preprocess extensions and /server/status."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid

from shared.storage import make_storage
from shared.threadlog import LOG_COLUMNS, USER_LOG_COLUMNS, USERS_COLUMNS
from tests.conftest import OTHER_KEY
from tests.integration.conftest import Client

SMALL = {"width": 64, "height": 64, "steps": 2}


def ids() -> tuple[str, str]:
    return f"u-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"


def read_rows(storage, key: str) -> tuple[list[str], list[dict]]:
    text = storage.get(key).decode()
    reader = csv.DictReader(io.StringIO(text))
    return reader.fieldnames, list(reader)


def run_jobs(client, count: int, **fields) -> list[str]:
    task_ids = []
    for index in range(count):
        answer = client.post("/generate", {**SMALL, "prompt": f"prompt {index}", "seed": index, **fields})
        assert answer.status_code == 202, answer.text
        task_ids.append(answer.json()["task_id"])
    for task_id in task_ids:
        assert client.wait(task_id)["state"] == "succeeded"
    return task_ids


def test_thread_user_and_users_logs_have_the_seed_columns(client, stack_settings):
    user, thread = ids()
    storage = make_storage(stack_settings)
    first = run_jobs(client, 3, user_id=user, thread_id=thread, n_samples=2)
    other = run_jobs(client, 1, user_id=user, thread_id="second", negative_prompt="blurry")
    cached = run_jobs(client, 1)

    columns, rows = read_rows(storage, f"{user}/{thread}/log.csv")
    assert tuple(columns) == LOG_COLUMNS
    assert [row["prompt_id"] for row in rows] == first
    row = rows[0]
    assert row["model"] == "tiny" and (row["width"], row["height"], row["steps"], row["batch_size"]) == (
        "64",
        "64",
        "2",
        "2",
    )
    assert row["prompt"] == "prompt 0" and row["setting_filename"] == f"{first[0]}.json"
    assert json.loads(row["output_filenames"]) == [f"{first[0]}-0.png", f"{first[0]}-1.png"]
    assert json.loads(row["ratings"]) == [] and row["create_time"] <= row["finish_time"]
    for name in json.loads(row["output_filenames"]) + [row["setting_filename"]]:
        assert storage.exists(f"{user}/{thread}/data/{name}")
    settings = json.loads(storage.get(f"{user}/{thread}/data/{first[0]}.json"))
    assert settings["params"]["prompt"] == "prompt 0" and settings["model"] == "tiny"

    _, second = read_rows(storage, f"{user}/second/log.csv")
    assert second[0]["negative_prompt"] == "blurry" and second[0]["prompt_id"] == other[0]
    columns, threads = read_rows(storage, f"{user}/log.csv")
    assert tuple(columns) == USER_LOG_COLUMNS
    assert {t["thread_id"]: t["prompt_count"] for t in threads} == {thread: "3", "second": "1"}
    columns, users = read_rows(storage, "users.csv")
    assert tuple(columns) == USERS_COLUMNS
    assert [u["thread_count"] for u in users if u["user_id"] == user] == ["2"]
    # Without ids: the cache area, no log.
    assert storage.exists(f"cache/data/{cached[0]}.json") and not storage.exists("cache/log.csv")


def test_cache_is_a_reserved_id_and_user_ids_belong_to_their_key(client, api):
    answer = client.post("/generate", {**SMALL, "prompt": "x", "user_id": "cache", "thread_id": "t"})
    assert answer.status_code == 400 and "user_id" in answer.json()["error"]["fields"]
    user, thread = ids()
    run_jobs(client, 1, user_id=user, thread_id=thread)
    stranger = Client(api.url, OTHER_KEY)
    answer = stranger.post("/generate", {**SMALL, "prompt": "x", "user_id": user, "thread_id": thread})
    assert answer.status_code == 403 and "another API key" in answer.json()["error"]["message"]
    dsl = {"dsl": {"data": {"user_id": user, "thread_id": thread}, "input": [{"attribute": "log/log"}]}}
    assert stranger.post("/fetch/log", dsl).status_code == 404
    assert Client(api.url, None).post("/fetch/log", dsl).status_code == 401


def test_ratings_show_in_the_log(client, api, stack_settings):
    user, thread = ids()
    storage = make_storage(stack_settings)
    (task_id,) = run_jobs(client, 1, user_id=user, thread_id=thread, n_samples=2)
    answer = client.post(f"/tasks/{task_id}/ratings", {"rating": 4, "image": 1})
    assert answer.status_code == 201, answer.text
    client.post(f"/tasks/{task_id}/ratings", {"rating": 2})
    _, rows = read_rows(storage, f"{user}/{thread}/log.csv")
    ratings = json.loads(rows[0]["ratings"])
    assert [(r["image"], r["rating"]) for r in ratings] == [(f"{task_id}-1.png", 4), (f"{task_id}-0.png", 2)]
    assert json.loads(storage.get(f"{user}/{thread}/data/{task_id}.json"))["ratings"] == ratings

    bad = client.post(f"/tasks/{task_id}/ratings", {"rating": 9, "image": 5})
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"rating", "image"}
    assert Client(api.url, OTHER_KEY).post(f"/tasks/{task_id}/ratings", {"rating": 3}).status_code == 404
    # A job without a thread keeps its rating in its settings file.
    (cached,) = run_jobs(client, 1)
    assert client.post(f"/tasks/{cached}/ratings", {"rating": 5}).status_code == 201
    assert json.loads(storage.get(f"cache/data/{cached}.json"))["ratings"][0]["rating"] == 5


def fetch(client, user, thread, *inputs, **changes):
    dsl = {"data": {"user_id": user, "thread_id": thread}, "input": list(inputs), "output": "latest-log/prompt-json"}
    return client.post("/fetch/log", {"dsl": {**dsl, **changes}})


def test_fetch_log_dsl(client):
    user, thread = ids()
    task_ids = run_jobs(client, 2, user_id=user, thread_id=thread, n_samples=2)
    answer = fetch(
        client,
        user,
        thread,
        {"attribute": "log/log", "filter": "all"},
        {"attribute": "log/image", "filter": "latest"},
    )
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [row["prompt_id"] for row in results["log/log"]] == task_ids
    assert results["log/log"][0]["output_filenames"] == [f"{task_ids[0]}-0.png", f"{task_ids[0]}-1.png"]
    latest = results["log/image"]
    assert [image["filename"] for image in latest] == [f"{task_ids[1]}-0.png", f"{task_ids[1]}-1.png"]
    assert Client(client.base, None).session.get(latest[0]["url"]).content.startswith(b"\x89PNG")
    latest_row = fetch(client, user, thread, {"attribute": "log/log", "filter": "latest"}).json()["results"]
    assert [row["prompt_id"] for row in latest_row["log/log"]] == task_ids[1:]
    threads = client.post("/fetch/log", {"dsl": {"data": {"user_id": user}, "input": [{"attribute": "log/log"}]}})
    assert [row["thread_id"] for row in threads.json()["results"]["log/log"]] == [thread]

    bad = fetch(client, user, thread, {"attribute": "log/nope", "filter": "sometimes"}, output="xml")
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"input[0].attribute", "output"}
    bad = fetch(client, user, thread, {"attribute": "log/log", "filter": "unprocessed"})
    assert bad.status_code == 400 and "log/image only" in bad.json()["error"]["message"]
    assert fetch(client, user, "no-such-thread", {"attribute": "log/log"}).status_code == 404


def preprocess(client, user, thread, task, inputs=None):
    body = {
        "extension_name": "preprocess",
        "task": task,
        "url": "",
        "data": {"object": "thread", "user_id": user, "thread_id": thread},
    }
    if inputs is not None:
        body["input"] = inputs
    answer = client.post("/extensions/preprocess", body)
    assert answer.status_code == 202, answer.text
    return client.wait(answer.json()["task_id"])


def test_preprocess_encoding_then_projection(client, stack_settings):
    user, thread = ids()
    storage = make_storage(stack_settings)
    task_ids = run_jobs(client, 2, user_id=user, thread_id=thread, n_samples=2)

    early = preprocess(client, user, thread, "image_projection")
    assert early["state"] == "failed" and early["error"]["code"] == "preprocess_failed"
    assert "image_encoding" in early["error"]["message"]

    done = preprocess(client, user, thread, "image_encoding", [{"attribute": "log/image", "filter": "unprocessed"}])
    assert done["state"] == "succeeded", done
    assert done["result"]["encoded"] == 4 and done["result"]["encoder"] == "offline-colour-layout-v1"
    again = preprocess(client, user, thread, "image_encoding", [{"attribute": "log/image", "filter": "unprocessed"}])
    assert again["result"]["encoded"] == 0  # nothing new since
    encoding = json.loads(storage.get(f"{user}/{thread}/processed/image_encoding/{task_ids[0]}-0.json"))
    assert encoding["dimensions"] == len(encoding["embedding"]) == 240

    projected = preprocess(client, user, thread, "image_projection")
    assert projected["state"] == "succeeded" and projected["result"]["points"] == 4
    assert storage.exists(f"{user}/{thread}/processed/image_projection/{task_ids[1]}.json")

    results = fetch(
        client,
        user,
        thread,
        {"attribute": "preprocess/image_projection", "filter": "latest"},
        {"attribute": "log/image", "filter": "unprocessed"},
    ).json()["results"]
    (projection,) = results["preprocess/image_projection"]
    assert len(projection["points"]) == 4 and projection["method"] == "pca"
    assert results["log/image"] == []

    # A new image is unprocessed until encoded; the projection keeps its orientation.
    run_jobs(client, 1, user_id=user, thread_id=thread)
    assert preprocess(client, user, thread, "image_encoding")["result"]["encoded"] == 1
    second = preprocess(client, user, thread, "image_projection")["result"]
    assert second["points"] == 5

    refused = client.post("/extensions/preprocess", {"task": "upscale", "data": {"user_id": user}})
    assert refused.status_code == 400
    assert set(refused.json()["error"]["fields"]) == {"task", "data.thread_id"}


def test_many_workers_writing_one_thread_on_s3(make_private_stack, s3_endpoint):
    """Two worker processes, jobs of one thread finishing together: every row lands once."""
    bucket = f"threads-{uuid.uuid4().hex[:8]}"
    client, start_worker, redis_server = make_private_stack(
        storage="s3", s3_bucket=bucket, s3_endpoint_url=s3_endpoint, s3_region="us-east-1", s3_create_bucket=True
    )
    s3_env = {
        "STORAGE": "s3",
        "S3_BUCKET": bucket,
        "S3_ENDPOINT_URL": s3_endpoint,
        "S3_REGION": "us-east-1",
        "S3_CREATE_BUCKET": "true",
    }
    start_worker("w1", **s3_env)
    start_worker("w2", **s3_env)
    user, thread = ids()
    task_ids = run_jobs(client, 12, user_id=user, thread_id=thread)
    from shared.settings import Settings

    storage = make_storage(Settings(storage="s3", s3_bucket=bucket, s3_endpoint_url=s3_endpoint, s3_region="us-east-1"))
    _, rows = read_rows(storage, f"{user}/{thread}/log.csv")
    assert sorted(row["prompt_id"] for row in rows) == sorted(task_ids)
    workers = {redis_server.client().hget(f"job:{task_id}", "worker") for task_id in task_ids}
    assert len(workers) == 2, workers  # both workers wrote to the thread
    _, threads = read_rows(storage, f"{user}/log.csv")
    assert threads[0]["prompt_count"] == "12"


def test_server_status_says_whether_a_job_would_start_now(make_private_stack):
    client, start_worker, _ = make_private_stack()
    assert client.get("/server/status").json()["is_available"] is False  # no worker yet
    start_worker("w1", concurrency=1)
    answer = client.get("/server/status").json()
    assert answer == {"is_available": True, "model": "tiny"}
    long = client.post("/generate", {"prompt": "slow", "width": 256, "height": 256, "steps": 150, "n_iter": 4}).json()[
        "task_id"
    ]
    client.wait_running(long, step=1)
    busy = client.get("/server/status").json()
    assert busy["is_available"] is False and "busy" in busy["reason"]
    waiting = client.post("/generate", {**SMALL, "prompt": "next"}).json()["task_id"]
    assert "waiting" in client.get("/server/status").json()["reason"]
    assert client.get("/server/status", params={"model": "nope"}).status_code == 400
    client.session.delete(client.base + f"/tasks/{long}")
    assert client.wait(waiting)["state"] == "succeeded"
    deadline = time.time() + 10
    while not client.get("/server/status").json()["is_available"] and time.time() < deadline:
        time.sleep(0.1)
    assert client.get("/server/status").json()["is_available"] is True
