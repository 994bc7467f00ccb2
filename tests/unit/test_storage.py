"""Local storage: the DESIGN.md layout, atomic writes, and no way out of the root."""

from __future__ import annotations

import os

import pytest

from shared.storage import LocalStorage, StorageError, image_key, input_key, job_folder, metadata_key

JOB = "0b7f3c1e-8d2a-4f4e-9a51-6f0d7b2c9e11"


def test_layout_follows_the_design():
    assert job_folder(None, None) == "cache/data"
    assert job_folder("u1", "t1") == "u1/t1/data"
    assert job_folder("u1", None) == "u1/cache/data"
    assert image_key("u1/t1/data", JOB, 0, "png") == f"u1/t1/data/{JOB}-0.png"
    assert metadata_key("cache/data", JOB) == f"cache/data/{JOB}.json"
    assert input_key(JOB) == f"cache/inputs/{JOB}.png"


def test_put_get_and_overwrite(tmp_path):
    storage = LocalStorage(tmp_path)
    key = image_key("cache/data", JOB, 0, "png")
    storage.put(key, b"one")
    storage.put(key, b"two")  # a rerun of the same job overwrites
    assert storage.get(key) == b"two"
    assert storage.exists(key)
    assert sorted(os.listdir(tmp_path / "cache" / "data")) == [f"{JOB}-0.png"]  # no temp files left


def test_missing_key_is_keyerror(tmp_path):
    with pytest.raises(KeyError):
        LocalStorage(tmp_path).get(f"cache/data/{JOB}.json")


@pytest.mark.parametrize(
    "key",
    [
        "../x.png",
        "/etc/passwd",
        "cache/../../x.png",
        "cache/data/a.py",
        "a.png",
        "cache/data/" + "a" * 100 + ".png",
        "cache//x.png",
        "cache/data/x.png\x00",
    ],
)
def test_bad_keys_are_refused(tmp_path, key):
    with pytest.raises(StorageError):
        LocalStorage(tmp_path).put(key, b"x")


def test_failed_write_leaves_nothing(tmp_path):
    storage = LocalStorage(tmp_path)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "data").write_text("a file where a folder should be")
    with pytest.raises(StorageError):
        storage.put(f"cache/data/{JOB}-0.png", b"x")


def test_read_only_storage_raises_storage_error(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    (tmp_path / "cache").mkdir(mode=0o500)
    with pytest.raises(StorageError):
        LocalStorage(tmp_path).put(f"cache/data/{JOB}-0.png", b"x")
