"""The web page: a form, progress, results and recent images, using the public API from the browser."""

from __future__ import annotations

from flask import Blueprint, current_app

bp = Blueprint("web", __name__)


@bp.get("/")
def index():
    """The single-page UI (static files under api/static/)."""
    response = current_app.send_static_file("index.html")
    # The page holds no data; everything comes from the API with the browser's key.
    response.headers["Content-Security-Policy"] = "default-src 'self'; img-src 'self' data:; style-src 'self'"
    return response
