"""Settings from the environment: types, and the names operators use."""

from shared.celery_app import make_celery
from shared.settings import Settings


def test_types_follow_the_defaults():
    settings = Settings.from_env({"MAX_QUEUE": "7", "SYNC_TIMEOUT_S": "1.5", "WARMUP": "no", "STORAGE": "s3"})
    assert (settings.max_queue, settings.sync_timeout_s, settings.warmup, settings.storage) == (7, 1.5, False, "s3")


def test_visibility_timeout_reaches_the_broker_under_either_name():
    for name in ("VISIBILITY_TIMEOUT", "VISIBILITY_TIMEOUT_S"):
        settings = Settings.from_env({name: "42"})
        assert settings.visibility_timeout_s == 42
        conf = make_celery(settings).conf
        assert conf.broker_transport_options["visibility_timeout"] == 42
        assert conf.result_backend_transport_options["visibility_timeout"] == 42


def test_the_suffixed_name_wins_when_both_are_set():
    assert Settings.from_env({"VISIBILITY_TIMEOUT": "5", "VISIBILITY_TIMEOUT_S": "9"}).visibility_timeout_s == 9
