"""What the views need, built once per app from a settings object."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from api.auth import KeyRing
from api.links import LinkSigner
from shared.catalog import ModelCatalog
from shared.celery_app import make_celery
from shared.jobs import JobStore, redis_client
from shared.settings import Settings
from shared.storage import make_storage
from shared.templates import load_templates
from shared.validation import RequestValidator


@dataclass
class Services:
    settings: Settings
    keyring: KeyRing
    links: LinkSigner
    catalog: ModelCatalog
    validators: dict[str, RequestValidator]
    jobs: JobStore
    storage: object
    celery: object
    templates: dict

    @classmethod
    def build(cls, settings: Settings, client=None, celery=None) -> Services:
        """Wire the real parts; unit tests pass a fakeredis client and a recording Celery stand-in."""
        keyring = KeyRing.from_settings(settings)
        catalog = ModelCatalog.load(settings.models_file)
        templates = load_templates(settings.templates_dir)
        client = client or redis_client(settings.redis_url, settings.redis_timeout_s)
        return cls(
            settings=settings,
            keyring=keyring,
            links=LinkSigner.from_settings(settings, keyring.hashes),
            catalog=catalog,
            validators={name: RequestValidator(t, catalog, settings.max_input_pixels) for name, t in templates.items()},
            jobs=JobStore(client, settings.job_ttl_s, settings.recent_keep),
            storage=make_storage(settings),
            celery=celery or make_celery(settings, name="diffq-api"),
            templates=templates,
        )


def services() -> Services:
    return current_app.extensions["diffq"]
