"""Prometheus' own checker (``promtool``, Debian package ``prometheus``) on the shipped config,
the alert rules, and every PromQL expression of the Grafana dashboard (wrapped as recording
rules, since promtool parses expressions only inside rule files). Skips without promtool,
fails in CI (``SONGNODES_REQUIRE_SERVICES=1``; ``.ci/run`` installs it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "docker" / "prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("SONGNODES_REQUIRE_SERVICES") == "1":
            pytest.fail("promtool not installed (Debian package prometheus)")
        pytest.skip("promtool not installed (Debian package prometheus)")
    return path


def _check(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, "check", *args], capture_output=True, text=True, timeout=60)


def test_alert_rules_are_valid(promtool: str) -> None:
    result = _check(promtool, "rules", str(PROM / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 11 rules found" in result.stdout


def test_config_is_valid_as_the_container_renders_it(promtool: str, tmp_path: Path) -> None:
    """The compose command substitutes the Flower user and writes the password file; do the
    same with the container paths moved to a temp dir."""
    (tmp_path / "flower_password").write_text("secret")
    shutil.copy(PROM / "alerts.yml", tmp_path / "alerts.yml")
    text = (PROM / "prometheus.yml").read_text("utf-8")
    assert "__FLOWER_USER__" in text
    text = (
        text.replace("__FLOWER_USER__", "ops")
        .replace("/etc/prometheus/alerts.yml", str(tmp_path / "alerts.yml"))
        .replace("/tmp/flower_password", str(tmp_path / "flower_password"))
    )
    (tmp_path / "prometheus.yml").write_text(text)
    result = _check(promtool, "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid prometheus config file syntax" in result.stdout


def test_dashboard_expressions_parse(promtool: str, tmp_path: Path) -> None:
    dashboard = json.loads((ROOT / "docker/grafana/dashboards/songnodes.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"songnodes_dashboard:expr{i}", "expr": e} for i, e in enumerate(exprs)
    ]}]}  # fmt: skip
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = _check(promtool, "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout
    # The checker is not vacuous: a broken expression is refused.
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"record": "x:y", "expr": "sum by (provider (songnodes_runs)"}]}]}))  # fmt: skip
    assert _check(promtool, "rules", str(path)).returncode != 0
