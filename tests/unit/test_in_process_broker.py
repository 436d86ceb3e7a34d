"""The CLI's in-process worker runs on kombu's memory transport, never on a Redis it found.

``celeryconfig`` names the Redis transport class for its default ``redis://`` URL (issue 20's
reconnect fix), and an explicit transport class wins over a URL's scheme: setting only
``broker_url = "memory://"`` left the "in-process" worker (``songnodes demo``/``ingest``) on
Redis at localhost:6379/0, where a second checkout's bench consumed the CLI's ingest batches
and the CLI's worker ran the bench's tasks against the CLI's database (seen here, 2026-12-07).
Run in a subprocess: the app's broker settings are process state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import json
from pipeline.runtime import use_memory_broker, worker_context
from tasks.app import app
before = app.connection_for_write().transport.driver_type
use_memory_broker(app)
with app.connection_for_write() as conn:
    after = conn.transport.driver_type
    producer_pool = app.producer_pool.connections.connection.transport.driver_type
print(json.dumps({"default": before, "memory": after, "producers": producer_pool}))
"""


def test_the_in_process_broker_is_kombus_memory_transport() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "REDIS_URL")}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["default"] == "redis", "workers default to Redis (the probe reads the default)"
    assert found["memory"] == "memory", found
    assert found["producers"] == "memory", found
