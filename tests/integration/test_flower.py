"""Flower started the way operators start it (``celery -A tasks flower``) honours our auth policy.

The subprocess tests need Redis (the broker Flower connects to); the policy tests are pure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tasks.flower_auth import FlowerAuthError, is_loopback, resolve_flower_settings

ROOT = Path(__file__).resolve().parents[2]
BROKER_DB = 13


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _flower_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWER_", "SONGNODES_FL"))}
    env["CELERY_BROKER_URL"] = f"{redis_url.rsplit('/', 1)[0]}/{BROKER_DB}"
    env.pop("CELERY_RESULT_BACKEND", None)
    return env | extra


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tasks", "flower", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def flower_with_auth(redis_url: str) -> Iterator[str]:
    """Flower on a free loopback port with FLOWER_BASIC_AUTH; yields its base URL."""
    port = _free_port()
    env = _flower_env(redis_url, FLOWER_BASIC_AUTH="ops:s3cret", FLOWER_PORT=str(port))
    proc = _start(env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"flower exited with {proc.returncode}: {out[-2000:]}")
            try:
                httpx.get(f"{base}/healthcheck", timeout=0.5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail("flower did not listen within 20 s")
                time.sleep(0.2)
        yield base
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


@pytest.mark.integration
def test_flower_requires_basic_auth(flower_with_auth: str) -> None:
    """Without credentials Flower answers 401; with FLOWER_BASIC_AUTH's pair it answers 200."""
    for path in ("/", "/api/workers", "/tasks"):
        assert httpx.get(flower_with_auth + path, timeout=5).status_code == 401, path
        wrong = httpx.get(flower_with_auth + path, auth=("ops", "nope"), timeout=5)
        assert wrong.status_code == 401, path
    ok = httpx.get(flower_with_auth + "/workers", auth=("ops", "s3cret"), timeout=10)
    assert ok.status_code == 200
    assert "Flower" in ok.text


@pytest.mark.integration
def test_flower_metrics_behind_auth_healthcheck_reveals_nothing(flower_with_auth: str) -> None:
    """Issue 15: /metrics (task names, worker hosts) needs the credentials like every page
    (upstream leaves it open, mher/flower#1129); /healthcheck stays open and says only OK."""
    assert httpx.get(flower_with_auth + "/metrics", timeout=5).status_code == 401
    bad = httpx.get(flower_with_auth + "/metrics", auth=("ops", "nope"), timeout=5)
    assert bad.status_code == 401
    ok = httpx.get(flower_with_auth + "/metrics", auth=("ops", "s3cret"), timeout=10)
    assert ok.status_code == 200
    assert "flower_" in ok.text  # the real Prometheus exposition, once authenticated
    health = httpx.get(flower_with_auth + "/healthcheck", timeout=5)
    assert (health.status_code, health.text) == (200, "OK")


@pytest.mark.integration
def test_flower_refuses_unauthenticated_public_address(redis_url: str) -> None:
    """FLOWER_ADDRESS=0.0.0.0 without credentials exits non-zero with a clear reason."""
    env = _flower_env(redis_url, FLOWER_ADDRESS="0.0.0.0", FLOWER_PORT=str(_free_port()))
    proc = _start(env)
    try:
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert b"refusing to serve Flower on non-loopback address '0.0.0.0'" in out
    assert b"FLOWER_BASIC_AUTH" in out


@pytest.mark.integration
def test_flower_refuses_public_address_given_as_flag(redis_url: str) -> None:
    """``--address=0.0.0.0`` on the command line is checked like the environment variable."""
    proc = _start(_flower_env(redis_url), "--address=0.0.0.0", f"--port={_free_port()}")
    try:
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert b"without authentication" in out


def test_loopback_without_auth_warns_and_defaults_to_127() -> None:
    """No address and no credentials: bind 127.0.0.1 (not Flower's all-interfaces) and warn."""
    s = resolve_flower_settings({}, address="", basic_auth=None)
    assert s.address == "127.0.0.1"
    assert not s.authenticated
    assert s.warning and "WITHOUT AUTHENTICATION" in s.warning


def test_songnodes_user_password_variables_become_basic_auth() -> None:
    """SONGNODES_FLOWER_USER/_PASSWORD are accepted and allow a public address."""
    env = {"SONGNODES_FLOWER_USER": "ops", "SONGNODES_FLOWER_PASSWORD": "pw:with:colons"}
    s = resolve_flower_settings(env, address="0.0.0.0", basic_auth=None)
    assert s.basic_auth == ["ops:pw:with:colons"]
    assert s.authenticated and s.warning is None


@pytest.mark.parametrize("bad", ["ops", "ops:", ":pw"])
def test_malformed_credentials_are_refused(bad: str) -> None:
    """A FLOWER_BASIC_AUTH entry without both user and password is an error, not 'no auth'."""
    with pytest.raises(FlowerAuthError):
        resolve_flower_settings({}, address="127.0.0.1", basic_auth=[bad])


@pytest.mark.parametrize(
    ("address", "expected"),
    [("127.0.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("", False), ("10.0.0.5", False), ("flower.internal", False)],
)  # fmt: skip
def test_is_loopback(address: str, expected: bool) -> None:
    """Only loopback addresses count as local; wildcard and other hosts do not."""
    assert is_loopback(address) is expected
