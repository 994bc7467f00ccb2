"""Seed 000's logs: per-thread and per-user log.csv and users.csv, derived from the per-job JSON.

Each finished job's `{user}/{thread}/data/{job}.json` is the source of truth. The CSV files are
views of it that any worker (or the API, for ratings) rewrites under a Redis lock per file, so
many workers on many hosts can finish jobs of one thread at once. A rewrite also adds every job
JSON that the CSV is missing (a worker that died between the two writes), so the views heal.
"""

from __future__ import annotations

import csv
import io
import json
from contextlib import contextmanager
from datetime import datetime

from shared.storage import CACHE_AREA, job_folder, metadata_key

LOG_COLUMNS = (
    "prompt_id",
    "model",
    "create_time",
    "create_timezone",
    "finish_time",
    "finish_timezone",
    "width",
    "height",
    "steps",
    "batch_size",
    "prompt",
    "negative_prompt",
    "setting_filename",
    "output_filenames",
    "ratings",
)
USER_LOG_COLUMNS = (
    "thread_id",
    "create_time",
    "create_timezone",
    "last_time",
    "last_timezone",
    "prompt_count",
    "log_filename",
)
USERS_COLUMNS = (
    "user_id",
    "create_time",
    "create_timezone",
    "last_time",
    "last_timezone",
    "thread_count",
    "log_filename",
)
USERS_KEY = "users.csv"
LOCK_PREFIX = "threadlog-lock:"
LOCK_TIMEOUT_S = 60


def logged(params: dict) -> tuple[str, str] | None:
    """(user_id, thread_id) when the job belongs to a thread; None for the cache area."""
    user, thread = params.get("user_id"), params.get("thread_id")
    if user and thread and CACHE_AREA not in (user, thread):
        return user, thread
    return None


def thread_folder(user: str, thread: str) -> str:
    return f"{user}/{thread}"


def thread_log_key(user: str, thread: str) -> str:
    return f"{user}/{thread}/log.csv"


def user_log_key(user: str) -> str:
    return f"{user}/log.csv"


def local_time(timestamp: float) -> tuple[str, str]:
    """A Unix time as the server's local time and the name of its timezone, as the seed logs them."""
    moment = datetime.fromtimestamp(timestamp).astimezone()
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds"), moment.tzname() or ""


def log_row(metadata: dict) -> dict:
    """The thread log row of one job's metadata JSON."""
    params = metadata.get("params") or {}
    job_id = metadata["job_id"]
    created, created_zone = local_time(metadata.get("created_at") or metadata["finished_at"])
    finished, finished_zone = local_time(metadata["finished_at"])
    return {
        "prompt_id": job_id,
        "model": metadata.get("model") or params.get("model", ""),
        "create_time": created,
        "create_timezone": created_zone,
        "finish_time": finished,
        "finish_timezone": finished_zone,
        "width": params.get("width", ""),
        "height": params.get("height", ""),
        "steps": params.get("steps", ""),
        "batch_size": params.get("n_samples", 1),
        "prompt": params.get("prompt", ""),
        "negative_prompt": params.get("negative_prompt") or "",
        "setting_filename": f"{job_id}.json",
        "output_filenames": json.dumps([image["key"].rsplit("/", 1)[-1] for image in metadata.get("images", [])]),
        "ratings": json.dumps(metadata.get("ratings") or []),
    }


def read_csv(storage, key: str) -> list[dict]:
    try:
        text = storage.get(key).decode("utf-8")
    except KeyError:
        return []
    return list(csv.DictReader(io.StringIO(text)))


def write_csv(storage, key: str, columns: tuple[str, ...], rows: list[dict]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    storage.put(key, out.getvalue().encode("utf-8"), "text/csv")


def read_json(storage, key: str) -> dict | None:
    try:
        return json.loads(storage.get(key))
    except KeyError:
        return None


@contextmanager
def redis_lock(client, name: str):
    """One writer per log file across every process and host that shares the Redis."""
    lock = client.lock(LOCK_PREFIX + name, timeout=LOCK_TIMEOUT_S, blocking_timeout=LOCK_TIMEOUT_S)
    if not lock.acquire():
        raise TimeoutError(f"the log lock {name} is held by another writer for too long")
    try:
        yield
    finally:
        try:
            lock.release()
        except Exception:  # noqa: BLE001 - an expired lock was taken over; its holder already wrote
            pass


class ThreadLogs:
    """Writes the seed's CSV views for jobs logged under a user and thread."""

    def __init__(self, storage, lock=None):
        self.storage = storage
        # lock(name) -> context manager; Redis in production, a process-local lock in unit tests.
        self.lock = lock

    @classmethod
    def with_redis(cls, storage, client) -> ThreadLogs:
        return cls(storage, lambda name: redis_lock(client, name))

    def record(self, user: str, thread: str, metadata: dict | None = None) -> list[dict]:
        """Bring the thread's log up to date (with `metadata`, if given, as its newest version),
        then the user's log and users.csv; return the thread's rows."""
        with self.lock(thread_log_key(user, thread)):
            rows = self._thread_rows(user, thread, metadata)
        with self.lock(user_log_key(user)):
            threads = self._user_rows(user, thread, rows)
        with self.lock(USERS_KEY):
            self._users_rows(user, threads)
        return rows

    def update_job(self, params: dict, job_id: str, change) -> dict:
        """Apply change(metadata) to a job's JSON (and its thread log row), under the thread's lock."""
        thread = logged(params)
        key = metadata_key(job_folder(params.get("user_id"), params.get("thread_id")), job_id)
        with self.lock(thread_log_key(*thread) if thread else key):
            metadata = read_json(self.storage, key)
            if metadata is None:
                raise KeyError(job_id)
            change(metadata)
            self.storage.put(key, json.dumps(metadata, indent=2).encode(), "application/json")
            if thread:
                self._thread_rows(*thread, metadata)
        return metadata

    def _thread_rows(self, user: str, thread: str, metadata: dict | None) -> list[dict]:
        rows = {row["prompt_id"]: row for row in read_csv(self.storage, thread_log_key(user, thread))}
        if metadata is not None:
            rows[metadata["job_id"]] = log_row(metadata)
        for key in self.storage.list(f"{thread_folder(user, thread)}/data"):
            job_id = key.rsplit("/", 1)[-1].removesuffix(".json")
            if key.endswith(".json") and job_id not in rows:
                found = read_json(self.storage, key)
                if found is not None and "job_id" in found:
                    rows[job_id] = log_row(found)
        ordered = sorted(rows.values(), key=lambda row: (row["create_time"], row["prompt_id"]))
        write_csv(self.storage, thread_log_key(user, thread), LOG_COLUMNS, ordered)
        return ordered

    def _user_rows(self, user: str, thread: str, rows: list[dict]) -> list[dict]:
        summary = {
            "thread_id": thread,
            **_span(rows, "finish_time", "finish_timezone"),
            "prompt_count": len(rows),
            "log_filename": f"{thread}/log.csv",
        }
        return self._upsert(user_log_key(user), USER_LOG_COLUMNS, summary)

    def _users_rows(self, user: str, threads: list[dict]) -> None:
        summary = {
            "user_id": user,
            **_span(threads, "last_time", "last_timezone"),
            "thread_count": len(threads),
            "log_filename": f"{user}/log.csv",
        }
        self._upsert(USERS_KEY, USERS_COLUMNS, summary)

    def _upsert(self, key: str, columns: tuple[str, ...], row: dict) -> list[dict]:
        """Replace the row with the same id (the first column) in CSV `key`, or add it; rows by creation."""
        ident = columns[0]
        rows = {existing[ident]: existing for existing in read_csv(self.storage, key)}
        rows[row[ident]] = row
        ordered = sorted(rows.values(), key=lambda item: (item["create_time"], item[ident]))
        write_csv(self.storage, key, columns, ordered)
        return ordered


def _span(rows: list[dict], last_key: str, last_zone: str) -> dict:
    """First creation and last activity of `rows`, with their timezones."""
    first = min(rows, key=lambda row: row["create_time"])
    last = max(rows, key=lambda row: row[last_key])
    return {
        "create_time": first["create_time"],
        "create_timezone": first["create_timezone"],
        "last_time": last[last_key],
        "last_timezone": last[last_zone],
    }
