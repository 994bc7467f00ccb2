"""The workers: Celery tasks, the generation engine, model loading. All ML code lives here."""
