"""docker-compose.yml is a coherent stack: a YAML check of what the stack must wire up, plus the
Compose CLI's own validation (``config -q``) wherever a Compose CLI is installed (no Docker engine
is needed for it; see docs/operations.md)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "postgres",
    "redis",
    "migrate",
    "sandbox",
    "worker",
    "worker-musicbrainz",
    "worker-beatport",
    "worker-discogs",
    "beat",
    "flower",
    "metrics",
    "prometheus",
    "grafana",
    "rabbitmq",  # optional broker (profile "rabbitmq", issue 20)
}
LONG_RUNNING = SERVICES - {"migrate"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The parsed compose file (YAML anchors and merge keys resolved)."""
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def _argv(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _workers(compose: dict[str, Any]) -> dict[str, list[str]]:
    """Worker service -> queues it consumes (``-Q``)."""
    out = {}
    for name, svc in compose["services"].items():
        argv = _argv(svc)
        if argv[:4] == ["celery", "-A", "tasks", "worker"]:
            assert "-Q" in argv, f"{name} must name its queues explicitly"
            out[name] = argv[argv.index("-Q") + 1].split(",")
    return out


def test_every_service_exists(compose: dict[str, Any]) -> None:
    """The stack has exactly the documented services."""
    assert set(compose["services"]) == SERVICES


def test_long_running_services_have_healthchecks(compose: dict[str, Any]) -> None:
    """Every service except the one-shot migrate job declares a healthcheck test."""
    for name in LONG_RUNNING:
        check = compose["services"][name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
    assert "healthcheck" not in compose["services"]["migrate"]
    assert compose["services"]["migrate"]["restart"] == "no"


def test_healthchecks_use_the_right_probe(compose: dict[str, Any]) -> None:
    """pg_isready for PostgreSQL, redis-cli ping for Redis, HTTP for Flower and the sandbox."""
    probe = {n: " ".join(map(str, s["healthcheck"]["test"])) for n, s in compose["services"].items()
             if "healthcheck" in s}  # fmt: skip
    assert "pg_isready" in probe["postgres"]
    assert "redis-cli ping" in probe["redis"]
    assert "5555/healthcheck" in probe["flower"]
    assert "8765/_sandbox/stats" in probe["sandbox"]
    assert "inspect ping" in probe["worker"]


def test_dependency_conditions(compose: dict[str, Any]) -> None:
    """migrate waits for a healthy PostgreSQL; workers and beat wait for the migration."""
    svc = compose["services"]
    assert svc["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert _argv(svc["migrate"]) == ["songnodes", "db", "upgrade"]
    for name in ("worker", "worker-musicbrainz", "worker-beatport", "worker-discogs", "beat"):
        deps = svc[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["redis"]["condition"] == "service_healthy", name
    for name in ("worker", "worker-musicbrainz", "worker-beatport", "worker-discogs"):
        assert svc[name]["depends_on"]["sandbox"]["condition"] == "service_healthy"


def test_every_declared_queue_is_consumed(compose: dict[str, Any]) -> None:
    """Each queue in celeryconfig.task_queues is consumed by some worker; no unknown queue."""
    import celeryconfig

    declared = {q.name for q in celeryconfig.task_queues}
    consumed = {q for queues in _workers(compose).values() for q in queues}
    assert declared - consumed == set(), "queues nobody consumes"
    assert consumed - declared == set(), "workers consume undeclared queues"
    workers = _workers(compose)
    assert workers["worker-musicbrainz"] == ["provider.musicbrainz"]
    assert workers["worker-beatport"] == ["provider.beatport"]
    assert workers["worker-discogs"] == ["provider.discogs"]
    # On purpose on their own workers only: a general process asleep in their 1/s limiters held
    # the other queues up (bench/sightings, limited pass).
    dedicated = {"provider.musicbrainz", "provider.beatport", "provider.discogs"}
    assert dedicated.isdisjoint(workers["worker"])


def test_the_sightings_bench_lays_workers_out_as_compose_does(compose: dict[str, Any]) -> None:
    """bench/sightings' limited pass measures the deployment: its default ``--dedicated``
    providers are exactly the queues compose gives one-process workers of their own."""
    from bench.sightings import _args

    own = {
        q.removeprefix("provider.")
        for name, queues in _workers(compose).items()
        if name != "worker"
        for q in queues
    }
    assert set(_args([]).dedicated.split(",")) == own


def test_app_services_are_wired_to_the_stack(compose: dict[str, Any]) -> None:
    """App containers get DATABASE_URL, broker, REDIS_URL and every provider's sandbox URL."""
    from providers.registry import configure_for_sandbox

    expected = configure_for_sandbox("http://sandbox:8765")
    for name in (
        "migrate", "sandbox", "worker", "worker-musicbrainz", "worker-beatport",
        "worker-discogs", "beat", "flower",
    ):
        env = _env(compose["services"][name])
        assert (
            env["DATABASE_URL"].startswith("postgresql://")
            and "@postgres:5432/" in env["DATABASE_URL"]
        ), name
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0", name
        assert env["REDIS_URL"] == "redis://redis:6379/1", name
        assert {k: env.get(k) for k in expected} == expected, name


def test_flower_requires_auth_from_the_environment(compose: dict[str, Any]) -> None:
    """Flower listens on all interfaces, so its credentials are a required variable."""
    flower = compose["services"]["flower"]
    env = _env(flower)
    assert _argv(flower) == ["celery", "-A", "tasks", "flower"]
    assert env["FLOWER_ADDRESS"] == "0.0.0.0" and env["FLOWER_PORT"] == "5555"
    assert re.fullmatch(r"\$\{FLOWER_BASIC_AUTH:\?.+\}", env["FLOWER_BASIC_AUTH"])
    assert any(str(p).endswith("5555:5555") for p in flower["ports"])


def test_sandbox_command_and_dockerfile(compose: dict[str, Any]) -> None:
    """The sandbox serves on 0.0.0.0:8765 and the image is python:3.11-slim + pip install ."""
    assert _argv(compose["services"]["sandbox"]) == [
        "songnodes", "sandbox", "--port", "8765", "--host", "0.0.0.0",
    ]  # fmt: skip
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text("utf-8")
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert re.search(r"^RUN pip install \.", dockerfile, re.M)
    for path in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for item in path.split():
            assert (ROOT / item).exists(), f"Dockerfile copies missing {item}"
    assert compose["services"]["worker"]["build"]["dockerfile"] == "docker/Dockerfile"


def _compose_cli() -> list[str] | None:
    """``docker compose`` (v2 plugin) or ``docker-compose`` (v1), whichever is installed."""
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_cli_validates_the_file() -> None:
    """The Compose CLI parses, interpolates and schema-checks the file (``config -q``), and it
    refuses to render the stack without Flower credentials."""
    cli = _compose_cli()
    if cli is None:
        if os.environ.get("SONGNODES_REQUIRE_SERVICES") == "1":  # CI (.ci/run installs one)
            pytest.fail("no Compose CLI installed (docker compose / docker-compose)")
        pytest.skip("no Compose CLI installed (docker compose / docker-compose)")
    secrets = {"FLOWER_BASIC_AUTH": "ops:secret", "GRAFANA_ADMIN_PASSWORD": "graf-secret"}
    env = {k: v for k, v in os.environ.items() if k not in secrets}
    argv = [*cli, "-f", str(ROOT / "docker-compose.yml"), "config"]
    ok = subprocess.run(
        [*argv, "-q"], env=env | secrets, capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    services = subprocess.run(
        [*argv, "--services"], env=env | secrets, capture_output=True, text=True, cwd=ROOT,
        timeout=60,
    )  # fmt: skip
    assert set(services.stdout.split()) == SERVICES
    for missing in secrets:  # each credential is required on its own
        refused = subprocess.run(
            [*argv, "-q"], env=env | {k: v for k, v in secrets.items() if k != missing},
            capture_output=True, text=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
        assert refused.returncode != 0
        assert missing in refused.stderr


def test_prometheus_scrapes_metrics_and_flower_with_the_rules_file(compose: dict[str, Any]) -> None:
    """Prometheus' mounted config scrapes the metrics service's port and Flower (with Flower's
    credentials from the environment), and loads the alert rules, one per alert condition."""
    from pipeline.alerts import CONDITIONS

    svc = compose["services"]
    mounts = {m.split(":")[1]: ROOT / m.split(":")[0] for m in svc["prometheus"]["volumes"]
              if m.startswith("./")}  # fmt: skip
    for path in mounts.values():
        assert path.exists(), path
    config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text("utf-8"))
    targets = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    metrics_argv = _argv(svc["metrics"])
    assert metrics_argv[:2] == ["songnodes", "metrics"]
    port = metrics_argv[metrics_argv.index("--port") + 1]
    assert targets["songnodes"] == [f"metrics:{port}"]
    assert targets["flower"] == [f"flower:{_env(svc['flower'])['FLOWER_PORT']}"]
    flower_job = next(j for j in config["scrape_configs"] if j["job_name"] == "flower")
    assert flower_job["basic_auth"]["password_file"] == "/tmp/flower_password"
    assert "__FLOWER_USER__" in " ".join(svc["prometheus"]["command"])
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    rules = yaml.safe_load(mounts["/etc/prometheus/alerts.yml"].read_text("utf-8"))
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    for condition in CONDITIONS:
        assert f'songnodes_alert_firing{{condition="{condition}"}} == 1' in exprs


def test_grafana_is_provisioned_with_the_dashboard(compose: dict[str, Any]) -> None:
    import json

    grafana = compose["services"]["grafana"]
    mounts = {m.split(":")[1]: ROOT / m.split(":")[0] for m in grafana["volumes"]
              if m.startswith("./")}  # fmt: skip
    prov = mounts["/etc/grafana/provisioning"]
    ds = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text("utf-8"))
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    dash_prov = yaml.safe_load((prov / "dashboards" / "songnodes.yml").read_text("utf-8"))
    assert dash_prov["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = json.loads((mounts["/var/lib/grafana/dashboards"] / "songnodes.json").read_text())
    uid = ds["datasources"][0]["uid"]
    assert dashboard["panels"] and all(p["datasource"]["uid"] == uid for p in dashboard["panels"])
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?.+\}",
                        _env(grafana)["GF_SECURITY_ADMIN_PASSWORD"])  # fmt: skip
