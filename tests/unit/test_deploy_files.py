"""Compose files and the Dockerfile, checked without a Docker engine: the compose-spec schema
(check-jsonschema), hadolint, and the rules that make `--scale worker=N` and faults safe."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "schemas" / "compose-spec.json"
COMPOSE_FILES = sorted(ROOT.glob("docker-compose*.yml"))
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = BIN / name
    return str(found) if found.exists() else shutil.which(name)


def check_schema(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("check-jsonschema"), "--schemafile", str(SCHEMA), str(path)], capture_output=True, text=True, timeout=60
    )


def compose(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", value)
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def test_the_three_compose_files_exist():
    assert [p.name for p in COMPOSE_FILES] == ["docker-compose.cpu.yml", "docker-compose.gpu.yml", "docker-compose.yml"]


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_matches_the_compose_spec(path):
    result = check_schema(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_mistakes(tmp_path):
    broken = compose("docker-compose.gpu.yml")
    broken["services"]["worker"]["deploy"]["resources"]["reservations"]["gpus"] = 1  # not in the spec
    bad = tmp_path / "docker-compose.bad.yml"
    bad.write_text(yaml.safe_dump(broken))
    assert check_schema(bad).returncode != 0


def test_worker_scales():
    worker = compose("docker-compose.yml")["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker
    soft_shutdown = float(worker["environment"]["WORKER_SOFT_SHUTDOWN_S"])
    assert seconds(worker["stop_grace_period"]) > soft_shutdown
    assert {"outputs:/data/outputs", "models:/models"} <= set(worker["volumes"])


def test_redis_keeps_jobs_and_stays_private():
    redis = compose("docker-compose.yml")["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--maxmemory-policy noeviction" in command
    assert "ports" not in redis


def test_optional_services_are_behind_profiles_and_api_needs_keys():
    services = compose("docker-compose.yml")["services"]
    assert services["minio"]["profiles"] == ["s3"] and services["flower"]["profiles"] == ["flower"]
    assert ":?" in services["api"]["environment"]["API_KEYS"]  # compose refuses to start without keys
    assert services["api"]["ports"][0].startswith("${API_BIND:-127.0.0.1}")


def test_gpu_override_reserves_nvidia_devices():
    devices = compose("docker-compose.gpu.yml")["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_dockerfile_passes_hadolint():
    result = subprocess.run([tool("hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_mistakes(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install -y curl\n")
    assert subprocess.run([tool("hadolint"), str(bad)], capture_output=True, timeout=60).returncode != 0


def test_images_run_as_non_root_with_health_checks():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    targets = {stage.split()[2]: stage for stage in stages if " AS " in stage.split("\n")[0]}
    assert {"api", "worker-cpu", "worker-gpu"} <= set(targets)
    for name in ("api", "worker-cpu", "worker-gpu"):
        assert "USER 10001:10001" in targets[name] and "HEALTHCHECK" in targets[name], name
    assert "torch" not in targets["api"]
