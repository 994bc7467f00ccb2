"""The Celery entry point: `celery -A worker.celery_entry worker`. Settings come from the environment."""

from worker.app import create_worker_app

app = create_worker_app()
