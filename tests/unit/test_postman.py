"""The committed Postman collection is what postman/build.py makes from the templates today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_collection_is_fresh():
    result = subprocess.run(
        [sys.executable, str(ROOT / "postman" / "build.py"), "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout


def test_every_endpoint_has_a_request_with_tests():
    import json

    collection = json.loads((ROOT / "postman" / "diffq.postman_collection.json").read_text())
    paths = {"/".join(item["request"]["url"]["path"]).split("/")[0] for item in collection["item"]}
    assert {"health", "models", "samplers", "generate", "img2img", "status", "recent", "tasks"} <= paths
    assert all(item["event"][0]["script"]["exec"] for item in collection["item"])
