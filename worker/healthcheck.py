"""Container health check: exit 0 when this host's worker has a live heartbeat in Redis."""

from __future__ import annotations

import socket
import sys

from shared import heartbeats
from shared.jobs import redis_client
from shared.settings import Settings


def main() -> int:
    settings = Settings.from_env()
    host = socket.gethostname()
    try:
        workers = heartbeats.alive(redis_client(settings.redis_url, settings.redis_timeout_s))
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        print(f"unhealthy: {exc}")
        return 1
    mine = [w for w in workers if str(w.get("name", "")).endswith("@" + host)]
    if not mine:
        print(f"unhealthy: no heartbeat from a worker on {host}")
        return 1
    print(f"healthy: {mine[0]['name']} serves {', '.join(mine[0].get('models') or [])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
