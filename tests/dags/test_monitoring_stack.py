"""The docker-compose "monitoring" profile: statsd-exporter + Prometheus + Grafana with a provisioned dashboard.

No Docker engine here: the files are read and cross-checked (every model health metric the package
sends becomes a labelled Prometheus metric through the mapping, the dashboard asks only for metrics
that exist, on the provisioned data source), and Debian's `docker-compose config` accepts the profile.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from modelops.monitoring import health

ROOT = Path(__file__).resolve().parents[2]
MON = ROOT / "docker" / "monitoring"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def mapping() -> list[dict]:
    return yaml.safe_load((MON / "statsd_mapping.yml").read_text())["mappings"]


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads((MON / "grafana" / "dashboards" / "modelops.json").read_text())


def _flag(command: list[str], name: str) -> str:
    (value,) = [c.split("=", 1)[1] for c in command if c.startswith(f"--{name}=")]
    return value


def map_statsd(mappings: list[dict], line: str) -> tuple[str, dict[str, str]] | None:
    """What statsd-exporter makes of one line (glob mappings, InfluxDB-style tags): (name, labels)."""
    m = re.match(r"^([^:]+):[^|]+\|(\w+)", line)
    name, *tags = m.group(1).split(",")
    kind = {"c": "counter", "g": "gauge", "ms": "observer"}[m.group(2)]
    labels = dict(t.split("=", 1) for t in tags)
    parts = name.split(".")
    for rule in mappings:
        if rule.get("match_metric_type", kind) != kind:
            continue
        glob = rule["match"].split(".")
        if len(glob) != len(parts) or any(g != "*" and g != p for g, p in zip(glob, parts)):
            continue
        caps = [p for g, p in zip(glob, parts) if g == "*"]
        sub = lambda s: re.sub(r"\$\{?(\d+)\}?", lambda k: caps[int(k.group(1)) - 1], s)  # noqa: E731
        return sub(rule["name"]), {**labels, **{k: sub(v) for k, v in (rule.get("labels") or {}).items()}}
    return None


def _line(name: str, model: str, tags_travel: bool) -> str:
    kind = "c" if health.METRICS[name][0] == "counter" else "g"
    stat = f"airflow.{health.stat_name(name, model, tags_travel)}"
    return f"{stat},model_name={model},metric=rmspe:1|{kind}" if tags_travel else f"{stat}:1|{kind}"


def test_every_health_metric_becomes_a_labelled_prometheus_metric_with_or_without_tags(mapping):
    for name, (kind, _) in health.METRICS.items():
        want = f"modelops_{name}" + ("_total" if kind == "counter" else "")
        assert map_statsd(mapping, _line(name, "store_sales", True)) == (want, {"model_name": "store_sales", "metric": "rmspe"})
        assert map_statsd(mapping, _line(name, "churn-v2", False)) == (want, {"model_name": "churn-v2"})
    assert map_statsd(mapping, "airflow.ti.finish,dag_id=x:1|c") is None  # Airflow's own metrics pass unmapped


def test_compose_profile_wires_airflow_to_the_exporter_and_grafana_to_prometheus(compose):
    services = compose["services"]
    for name in ("statsd-exporter", "prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"], name
        for vol in services[name].get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("./"):
                assert (ROOT / src).exists(), f"{name} mounts {src}, which does not exist"
    env = compose["x-airflow-common"]["environment"]
    exporter = services["statsd-exporter"]["command"]
    assert env["AIRFLOW__METRICS__STATSD_HOST"] == "statsd-exporter"
    assert _flag(exporter, "statsd.listen-udp") == f":{env['AIRFLOW__METRICS__STATSD_PORT']}"
    assert env["AIRFLOW__METRICS__STATSD_PREFIX"] == "airflow"  # what the mapping matches
    assert env["AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED"] == "true"
    assert env["AIRFLOW__METRICS__STATSD_ON"] == "${MODELOPS_METRICS:-false}"  # opt-in, with the profile
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["statsd-exporter"]["volumes"]}
    assert mounts[_flag(exporter, "statsd.mapping-config")] == "./docker/monitoring/statsd_mapping.yml"

    prom = yaml.safe_load((MON / "prometheus.yml").read_text())
    (job,) = prom["scrape_configs"]
    assert job["static_configs"][0]["targets"] == [f"statsd-exporter{_flag(exporter, 'web.listen-address')}"]
    pmounts = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    assert pmounts[_flag(services["prometheus"]["command"], "config.file")] == "./docker/monitoring/prometheus.yml"

    gmounts = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    assert gmounts["/etc/grafana/provisioning"] == "./docker/monitoring/grafana/provisioning"
    (provider,) = yaml.safe_load((MON / "grafana/provisioning/dashboards/modelops.yml").read_text())["providers"]
    assert gmounts[provider["options"]["path"]] == "./docker/monitoring/grafana/dashboards"
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/modelops.json"
    (ds,) = yaml.safe_load((MON / "grafana/provisioning/datasources/prometheus.yml").read_text())["datasources"]
    assert ds["url"] == "http://prometheus:9090" and "9090:9090" in services["prometheus"]["ports"]


def test_the_dashboard_asks_only_for_metrics_that_exist_on_the_provisioned_source(dashboard, mapping):
    (ds,) = yaml.safe_load((MON / "grafana/provisioning/datasources/prometheus.yml").read_text())["datasources"]
    produced = {map_statsd(mapping, _line(n, "m", True))[0] for n in health.METRICS}
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    used = set()
    for p in panels:
        assert p["datasource"]["uid"] == ds["uid"], p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            names = set(re.findall(r"\bmodelops_[a-z_]+\b", t["expr"]))
            assert names and names <= produced, (p["title"], names - produced)
            assert 'model_name=~"$model_name"' in t["expr"], p["title"]
            used |= names
    # what the issue asks to see: live metric and limit, drift ratio and drifted features, open alerts,
    # production age, gate rejections and approvals
    assert {"modelops_live_metric", "modelops_live_metric_limit", "modelops_drift_ratio", "modelops_drifted_features",
            "modelops_open_alerts", "modelops_production_age_seconds", "modelops_gate_rejections_total",
            "modelops_approvals_total", "modelops_attribution_rank_correlation"} <= used
    (var,) = dashboard["templating"]["list"]
    assert var["name"] == "model_name" and var["datasource"]["uid"] == ds["uid"] and "modelops_" in var["definition"]


def test_docker_compose_config_accepts_the_monitoring_profile():
    cli = shutil.which("docker-compose")
    if cli is None:
        if IN_CI:
            pytest.fail("docker-compose is required in CI (make system-deps)")
        pytest.skip("docker-compose is not installed (make system-deps)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "MINIO_", "AIRFLOW_", "GRAFANA_", "MODELOPS_"))}
    out = subprocess.run([cli, "-f", "docker-compose.yaml", "--profile", "monitoring", "config"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    services = yaml.safe_load(out.stdout)["services"]
    assert {"statsd-exporter", "prometheus", "grafana"} <= set(services)
    assert services["api-server"]["environment"]["AIRFLOW__METRICS__STATSD_ON"] == "false"  # off unless MODELOPS_METRICS=true
