"""The HTTP API: validates requests, records jobs and sends them to the workers' queues."""

from __future__ import annotations

import logging

from flask import Flask

from shared.settings import Settings


def create_app(settings: Settings | None = None, services=None) -> Flask:
    """Build the Flask app from `settings` (read from the environment when not given).

    `services` replaces the Redis/Celery/storage bundle; unit tests pass one built on fakes.
    """
    from api import cors, metrics, ratelimit
    from api.errors import register_error_handlers
    from api.services import Services
    from api.views import docs, hooks, jobs, results, system, threads, web

    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    app.json.sort_keys = False
    app.extensions["diffq"] = services or Services.build(settings)
    if not app.extensions["diffq"].keyring.hashes:
        logging.getLogger(__name__).warning("no API keys configured: every request will get 401")
    register_error_handlers(app)
    metrics.install(app, app.extensions["diffq"].jobs.redis)
    for module in (jobs, results, threads, hooks, system, docs, web):
        app.register_blueprint(module.bp)
    ratelimit.install(app, settings)
    cors.install(app, settings)
    return app
