"""Webhook signing, destinations and the delivery rules. Signatures are checked with the
`standardwebhooks` reference library; deliveries use a stand-in for requests.post so each answer
(500, redirect, timeout) can be forced; tests/integration/test_webhooks.py uses real HTTP."""

from __future__ import annotations

import fakeredis
import pytest
import requests
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared import webhooks
from shared.jobs import JobStore
from shared.settings import Settings
from worker.webhooks import Deliverer


def test_signatures_verify_with_the_reference_library():
    secret = webhooks.owner_secret("server-secret", "owner-a")
    body, headers = webhooks.signed_request(secret, "job-1.succeeded", {"type": "job.succeeded", "data": {}})
    assert Webhook(secret).verify(body, headers) == {"type": "job.succeeded", "data": {}}
    assert webhooks.verify(secret, headers, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"succeeded", b"failed"), headers)
    other = webhooks.owner_secret("server-secret", "owner-b")
    assert other != secret and not webhooks.verify(other, headers, body)
    assert not webhooks.verify(secret, {**headers, "webhook-timestamp": "1"}, body)  # replayed long after


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_destinations_are_refused_unless_allowed(url):
    with pytest.raises(webhooks.DestinationRefused, match="private or reserved"):
        webhooks.check_destination(url, allow_private=False)
    assert webhooks.check_destination(url, allow_private=True)


def test_public_and_unresolvable_destinations():
    assert webhooks.check_destination("https://93.184.216.34/hook", allow_private=False) == ["93.184.216.34"]
    with pytest.raises(webhooks.DestinationRefused, match="does not resolve"):
        webhooks.check_destination("http://no-such-host.invalid/hook", allow_private=True)


class Answer:
    def __init__(self, status_code):
        self.status_code = status_code
        self.is_redirect = 300 <= status_code < 400


class ScriptedPost:
    """Stands in for requests.post: answers from a script, records what was sent."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.sent = []

    def __call__(self, url, data, headers, timeout, allow_redirects):
        self.sent.append({"url": url, "body": data, "headers": headers, "allow_redirects": allow_redirects})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return Answer(answer)


@pytest.fixture
def jobs():
    store = JobStore(fakeredis.FakeRedis(decode_responses=True))
    params = {"prompt": "p", "webhook_url": "http://127.0.0.1:9/hook", "webhook_events": ["succeeded"]}
    store.create("j1", owner="o1", kind="generate", model="tiny", params=params, warnings=[], queue="q", max_active=9)
    return store


def deliverer(jobs, post, **changes):
    settings = Settings(webhook_secret="s", webhook_allow_private=True, webhook_max_attempts=3, **changes)
    return Deliverer(settings, jobs, post=post)


def test_a_2xx_is_delivered_once_without_following_redirects(jobs):
    post = ScriptedPost(204)
    assert deliverer(jobs, post).deliver("j1", "succeeded", 1) is None
    sent = post.sent[0]
    assert sent["allow_redirects"] is False and sent["headers"]["webhook-id"] == "j1.succeeded"
    assert Webhook(webhooks.owner_secret("s", "o1")).verify(sent["body"], sent["headers"])["type"] == "job.succeeded"
    assert jobs.webhook_deliveries("j1")[0] | {"at": 0} == {
        "event": "succeeded",
        "attempt": 1,
        "at": 0,
        "status_code": 204,
        "error": None,
        "delivered": True,
        "final": True,
    }


def test_failures_back_off_and_stop_after_the_last_attempt(jobs):
    post = ScriptedPost(500, requests.ConnectionError("refused"), 503)
    sender = deliverer(jobs, post, webhook_backoff_s=2.0)
    assert [sender.deliver("j1", "succeeded", n) for n in (1, 2, 3)] == [2.0, 4.0, None]
    log = jobs.webhook_deliveries("j1")
    assert [entry["final"] for entry in log] == [False, False, True]
    assert "HTTP 500" in log[0]["error"] and "ConnectionError" in log[1]["error"]
    assert len({p["headers"]["webhook-id"] for p in post.sent}) == 1  # one id across retries


def test_redirects_and_refused_destinations_are_not_retried(jobs):
    assert deliverer(jobs, ScriptedPost(302)).deliver("j1", "succeeded", 1) is None
    assert "redirects are not followed" in jobs.webhook_deliveries("j1")[-1]["error"]
    refused = Deliverer(Settings(webhook_secret="s"), jobs, post=ScriptedPost())
    assert refused.deliver("j1", "succeeded", 1) is None  # 127.0.0.1 without WEBHOOK_ALLOW_PRIVATE
    assert "private or reserved" in jobs.webhook_deliveries("j1")[-1]["error"]


def test_events_the_job_did_not_ask_for_are_not_sent(jobs):
    post = ScriptedPost()
    assert deliverer(jobs, post).deliver("j1", "running", 1) is None
    assert post.sent == [] and jobs.webhook_deliveries("j1") == []
