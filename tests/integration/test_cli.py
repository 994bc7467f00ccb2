"""The diffq command line against a live stack, run as a user runs it (a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import TEST_KEY
from tests.integration.stack import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"


def diffq(api_url: str, *args: str, key: str | None = TEST_KEY, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "DIFFQ_URL": api_url, "PYTHONPATH": str(ROOT)}
    env.pop("DIFFQ_API_KEY", None)
    if key:
        env["DIFFQ_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "client", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=180
    )


def test_generate_saves_the_image_with_a_progress_bar(api, tmp_path):
    out = tmp_path / "dragon.png"
    result = diffq(
        api.url, "generate", "a red dragon", "-o", str(out), "--size", "64x64", "--steps", "4", "--seed", "42"
    )
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (64, 64)
    assert "seed 42" in result.stdout and "4/4 succeeded" in result.stderr


def test_several_images_and_img2img(api, tmp_path):
    result = diffq(
        api.url, "generate", "cats", "-o", str(tmp_path / "cat.png"), "--size", "64x64", "--steps", "2", "-n", "2", "-q"
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat-0.png", "cat-1.png"]
    out = tmp_path / "watercolor.jpg"
    result = diffq(
        api.url,
        "img2img",
        str(DATA / "seed001-24x24.png"),
        "a watercolor",
        "-o",
        str(out),
        "--size",
        "64x64",
        "--steps",
        "4",
        "--strength",
        "0.5",
        "--format",
        "jpg",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    assert Image.open(out).format == "JPEG"


def test_status_recent_models_and_cancel(api):
    task_id = diffq(api.url, "generate", "later", "--size", "64x64", "--steps", "2", "--no-wait").stdout.strip()
    assert len(task_id) == 36
    assert diffq(api.url, "status", task_id).returncode == 0
    recent = diffq(api.url, "recent", "--limit", "3")
    assert recent.returncode == 0 and "/images/" in recent.stdout
    models = diffq(api.url, "models")
    assert "tiny (default)" in models.stdout and "sd21v" in models.stdout
    waiting = diffq(api.url, "generate", "never", "--model", "sd14", "--no-wait").stdout.strip()  # not served
    assert diffq(api.url, "cancel", waiting).returncode == 0
    assert '"canceled"' in diffq(api.url, "status", waiting).stdout


def test_failures_explain_themselves_with_exit_codes(api, tmp_path):
    bad = diffq(api.url, "generate", "x", "--size", "513x512")
    assert bad.returncode == 2 and "width: must be a multiple of 8" in bad.stderr
    assert diffq(api.url, "generate", "x", "--size", "big").returncode == 2
    denied = diffq(api.url, "models", key="wrong-key")
    assert denied.returncode == 3 and "API key was refused" in denied.stderr
    down = diffq(f"http://127.0.0.1:{free_port()}", "models")
    assert down.returncode == 4 and "cannot reach" in down.stderr
    failed = diffq(api.url, "generate", "x", "--model", "sd14", "--timeout", "1", "-q")
    assert failed.returncode == 4 and "gave up waiting" in failed.stderr
    missing = diffq(api.url, "img2img", str(tmp_path / "nope.png"), "x")
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_the_key_make_run_saved_is_used(api, tmp_path):
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "api-key").write_text(TEST_KEY + "\n")
    assert diffq(api.url, "models", key=None, cwd=tmp_path).returncode == 0
