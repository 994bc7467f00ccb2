"""The Postman collection run by newman against a live stack (real Redis, worker and HTTP)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
NEWMAN = "newman@6.2.2"


@pytest.mark.skipif(shutil.which("npx") is None, reason="Node.js and npm are needed for newman")
def test_newman_runs_the_collection(api, tmp_path):
    report = tmp_path / "newman.json"
    result = subprocess.run(
        [
            "npx",
            "--yes",
            NEWMAN,
            "run",
            str(ROOT / "postman" / "diffq.postman_collection.json"),
            "-e",
            str(ROOT / "postman" / "diffq.postman_environment.json"),
            "--env-var",
            f"baseUrl={api.url}",
            "--env-var",
            f"apiKey={TEST_KEY}",
            "--delay-request",
            "100",
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    stats = json.loads(report.read_text())["run"]["stats"]
    assert stats["assertions"]["failed"] == 0 and stats["assertions"]["total"] >= 20
    assert stats["requests"]["failed"] == 0
