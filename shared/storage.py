"""Result storage: keys laid out as in DESIGN.md, written atomically, never outside the root."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

# A key is 1-4 id segments and a file name, or users.csv at the root (seed 000's user list);
# nothing a request sends ever becomes a path directly.
KEY_PATTERN = re.compile(
    r"^(?:(?:[A-Za-z0-9_-]{1,64}/){1,4}[A-Za-z0-9_-]{1,80}\.(?:png|jpg|webp|json|csv)|users\.csv)$"
)
FOLDER_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}(?:/[A-Za-z0-9_-]{1,64}){0,3}$")
CACHE_AREA = "cache"


class StorageError(OSError):
    """Storage refused or failed a read or write."""


def check_key(key: str) -> str:
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise StorageError(f"invalid storage key {key!r}")
    return key


def check_folder(folder: str) -> str:
    if not isinstance(folder, str) or not FOLDER_PATTERN.match(folder):
        raise StorageError(f"invalid storage folder {folder!r}")
    return folder


def job_folder(user_id: str | None, thread_id: str | None) -> str:
    """Where a job's files go: {user}/{thread}/data, or the cache area without ids."""
    if user_id and thread_id:
        return f"{user_id}/{thread_id}/data"
    if user_id:
        return f"{user_id}/{CACHE_AREA}/data"
    return f"{CACHE_AREA}/data"


def image_key(folder: str, job_id: str, index: int | str, ext: str) -> str:
    return check_key(f"{folder}/{job_id}-{index}.{ext}")


def metadata_key(folder: str, job_id: str) -> str:
    return check_key(f"{folder}/{job_id}.json")


# Image fields of a request -> the job parameter that holds the stored copy's key.
INPUT_KEYS = {
    "init_img": "init_image_key",
    "mask": "mask_key",
    "image_painted": "image_painted_key",
    "control_image": "control_image_key",
}


def input_key(job_id: str, field: str = "init_img") -> str:
    suffix = "" if field == "init_img" else f"-{field}"
    return check_key(f"{CACHE_AREA}/inputs/{job_id}{suffix}.png")


class LocalStorage:
    """Files under one root directory, shared by all workers through a volume."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise StorageError(f"key {key!r} escapes the storage root")
        return path

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Write all of `data` or nothing: a temp file in the same folder, fsynced, then renamed."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            raise StorageError(f"could not write {key}: {exc.strerror or exc}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise KeyError(key) from exc
        except OSError as exc:
            raise StorageError(f"could not read {key}: {exc.strerror or exc}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, folder: str) -> list[str]:
        """Keys of the files directly in `folder` (e.g. "u1/t1/data"), sorted; none when it is absent."""
        base = self.root / check_folder(folder)
        try:
            names = sorted(entry.name for entry in base.iterdir() if entry.is_file())
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StorageError(f"could not list {folder}: {exc.strerror or exc}") from exc
        return [f"{folder}/{name}" for name in names if KEY_PATTERN.match(f"{folder}/{name}")]


def make_storage(settings):
    """The storage backend named by STORAGE: a local directory or an S3 bucket."""
    if settings.storage == "local":
        return LocalStorage(settings.output_dir)
    if settings.storage == "s3":
        from shared.s3 import S3Storage

        return S3Storage.from_settings(settings)
    raise ValueError(f"STORAGE={settings.storage!r} is not supported; use 'local' or 's3'")
