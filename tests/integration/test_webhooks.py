"""Webhooks over real HTTP: a receiver on loopback, a real worker delivering from its queue."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest
from standardwebhooks.webhooks import Webhook

from tests.integration.conftest import Client

pytestmark = pytest.mark.integration
SMALL = {"prompt": "hook", "width": 64, "height": 64, "steps": 2}
WEBHOOK_ENV = {"WEBHOOK_SECRET": "server-secret", "WEBHOOK_ALLOW_PRIVATE": "true", "WEBHOOK_BACKOFF_S": "0.5"}


class Receiver:
    """An HTTP endpoint that answers from a script (default 200) and keeps what it got."""

    def __init__(self, answers=()):
        self.answers = list(answers)
        self.received = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def wait(self, count, timeout=30):
        deadline = time.time() + timeout
        while len(self.received) < count:
            assert time.time() < deadline, f"got {len(self.received)} of {count} webhooks"
            time.sleep(0.05)
        return self.received


@pytest.fixture
def hooked(make_private_stack):
    client, start_worker, redis_server = make_private_stack(webhook_secret="server-secret", webhook_allow_private=True)
    start_worker("hooks", **WEBHOOK_ENV)
    return client


def test_signed_events_with_a_retry_recorded_in_the_job(hooked):
    receiver = Receiver(answers=[500])  # the first delivery of the first event fails
    body = {**SMALL, "webhook_url": receiver.url, "webhook_events": ["running", "succeeded"]}
    task_id = hooked.post("/generate", body).json()["task_id"]
    hooked.wait(task_id)
    got = receiver.wait(3)  # running (500), running again, succeeded
    secret = hooked.get("/webhooks/secret").json()["secret"]
    events = [Webhook(secret).verify(hit["body"], hit["headers"]) for hit in got]
    assert [e["type"] for e in events] == ["job.running", "job.running", "job.succeeded"]
    assert got[0]["headers"]["webhook-id"] == got[1]["headers"]["webhook-id"] == f"{task_id}.running"
    succeeded = events[2]["data"]
    assert succeeded["task_id"] == task_id and succeeded["state"] == "succeeded" and len(succeeded["images"]) == 1
    deadline = time.time() + 10
    while len((webhook := hooked.status(task_id)["webhook"])["deliveries"]) < 3 and time.time() < deadline:
        time.sleep(0.1)
    assert [(d["event"], d["status_code"]) for d in webhook["deliveries"]] == [
        ("running", 500),
        ("running", 200),
        ("succeeded", 200),
    ]
    assert webhook["delivered"] == ["running", "succeeded"]


def test_redirects_are_not_followed(hooked):
    receiver = Receiver(answers=[307])
    task_id = hooked.post("/generate", {**SMALL, "webhook_url": receiver.url}).json()["task_id"]
    hooked.wait(task_id)
    time.sleep(2)  # time for a (wrong) retry or redirect to arrive
    assert [hit["path"] for hit in receiver.received] == ["/hook"]
    delivery = hooked.status(task_id)["webhook"]["deliveries"][0]
    assert delivery["final"] and "redirect" in delivery["error"]


def test_a_canceled_queued_job_sends_its_event(hooked):
    receiver = Receiver()
    # tiny-sd2 has no worker here, so the job waits in its queue until it is canceled.
    body = {**SMALL, "model": "tiny-sd2", "webhook_url": receiver.url}
    task_id = hooked.post("/generate", body).json()["task_id"]
    assert hooked.session.delete(f"{hooked.base}/tasks/{task_id}").json()["state"] == "canceled"
    event = json.loads(receiver.wait(1)[0]["body"])
    assert event["type"] == "job.canceled" and event["data"]["task_id"] == task_id


def test_private_destinations_and_disabled_webhooks_are_refused_at_submit(make_api):
    public_only = make_api(webhook_secret="server-secret")
    refused = Client(public_only.url).post("/generate", {**SMALL, "webhook_url": "http://127.0.0.1:9/hook"})
    assert refused.status_code == 400 and "private or reserved" in refused.json()["error"]["fields"]["webhook_url"]
    disabled = make_api()
    answer = Client(disabled.url).post("/generate", {**SMALL, "webhook_url": "https://93.184.216.34/hook"})
    assert answer.status_code == 400 and "not enabled" in answer.json()["error"]["message"]
