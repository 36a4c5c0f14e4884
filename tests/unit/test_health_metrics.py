"""Model health metrics: names, tags, what each DAG step sends, and that sending never fails a task."""

from __future__ import annotations

import logging

import pytest

from modelops.monitoring import health


def test_names_carry_the_model_as_a_tag_or_in_the_name():
    assert health.stat_name("drift_ratio", "sales", tags_travel=True) == "modelops.drift_ratio"
    assert health.stat_name("drift_ratio", "sales.eu", tags_travel=False) == "modelops.model.sales__eu.drift_ratio"
    with pytest.raises(KeyError, match="unknown model health metric"):
        health.stat_name("drift_ration", "sales", True)


def test_values_from_the_steps_results():
    drift = {"drift_ratio": 0.5, "dataset_drift": True, "drifted_features": ["a", "b"],
             "attribution": {"available": True, "rank_correlation": 0.42, "attribution_drift": True}}
    assert health.from_drift(drift, 0.3) == {"drift_ratio": 0.5, "drift_ratio_threshold": 0.3, "drifted_features": 2,
                                             "dataset_drift": 1, "attribution_rank_correlation": 0.42, "attribution_drift": 1}
    assert "attribution_rank_correlation" not in health.from_drift({**drift, "attribution": {"available": False}}, 0.3)
    perf = {"judged": True, "value": 0.08, "limit": 0.1, "baseline": 0.08, "degraded": False, "shadow": {"rolling_value": 0.07}}
    assert health.from_performance(perf) == {"live_metric": 0.08, "live_metric_limit": 0.1, "live_metric_baseline": 0.08,
                                             "live_metric_degraded": 0, "shadow_live_metric": 0.07}
    assert health.from_performance({"judged": False, "value": None}) == {}
    assert health.finite({"a": None, "b": float("nan"), "c": 1, "d": float("inf"), "e": "x"}) == {"c": 1.0}


def test_sending_never_raises_and_warns_once(monkeypatch, caplog, capsys):
    from airflow.sdk.observability import stats

    from modelops_airflow import health_metrics

    monkeypatch.setattr(health_metrics, "_warned", False)
    sent = []

    def refuse(*args, **kwargs):
        sent.append(args)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(stats, "gauge", refuse)
    monkeypatch.setattr(stats, "incr", refuse)
    with caplog.at_level(logging.DEBUG, logger="modelops_airflow.health_metrics"):
        for _ in range(3):
            assert health_metrics.emit("sales", {"drift_ratio": 0.1}, {"approvals": 1}) == 0
    assert len(sent) == 3  # it tried each time: an endpoint that comes back is used again
    # Airflow may route stdlib logging through structlog to stdout: look in both places
    key = "model health metrics of sales not sent"
    records = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and key in r.getMessage()]
    printed = [ln for ln in capsys.readouterr().out.splitlines() if "warning" in ln.lower() and key in ln]
    said = records or printed
    assert len(said) == 1 and len(printed) <= 1, (records, printed)
    assert "ConnectionRefusedError" in said[0] and "the run goes on" in said[0]


def test_counters_count_a_decision_once(monkeypatch):
    from modelops_airflow import health_metrics

    calls = []
    monkeypatch.setattr(health_metrics, "emit", lambda model, gauges=None, counters=None, tags=None: calls.append(counters) or 1)
    monkeypatch.setattr(health_metrics, "_state", lambda model: {})

    class Cfg:
        model_name = "sales"

    health_metrics.after_gate(Cfg, {"passed": False, "reused": False})
    health_metrics.after_gate(Cfg, {"passed": False, "reused": True})  # a re-run reading the recorded decision
    health_metrics.after_approval(Cfg, approved=True, recorded=True)
    health_metrics.after_approval(Cfg, approved=True, recorded=False)  # a second response: not a second approval
    assert calls == [{"gate_rejections": 1}, {"approvals": 1}, {}]


def test_tags_travel_follows_airflows_backend_choice(monkeypatch):
    from modelops_airflow.health_metrics import tags_travel

    for k in ("STATSD_ON", "STATSD_INFLUXDB_ENABLED", "STATSD_DATADOG_ENABLED", "OTEL_ON"):
        monkeypatch.delenv(f"AIRFLOW__METRICS__{k}", raising=False)
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
    assert tags_travel() is False
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED", "True")
    assert tags_travel() is True
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "False")
    monkeypatch.setenv("AIRFLOW__METRICS__OTEL_ON", "True")
    assert tags_travel() is True


def test_an_otlp_collector_receives_them_with_the_model_attribute(tmp_path):
    """With ``[metrics] otel_on`` (no StatsD): a task-like process sends through Airflow's OpenTelemetry
    logger to an OTLP/HTTP collector on loopback; the gauges and the counter arrive with ``model_name``."""
    import os
    import subprocess
    import sys
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    from tests.conftest import ROOT

    bodies: list[bytes] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args):  # quiet
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__METRICS__")}
    env.update({"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__METRICS__OTEL_ON": "True", "AIRFLOW__METRICS__OTEL_HOST": "127.0.0.1",
                "AIRFLOW__METRICS__OTEL_PORT": str(srv.server_address[1]),
                "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT / "plugins")])})
    script = ("from airflow.sdk.observability import stats\n"
              "from airflow.sdk.observability.metrics import stats_utils\n"
              "stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)\n"
              "from modelops_airflow import health_metrics\n"
              "print('sent', health_metrics.emit('store_sales', {'drift_ratio': 0.25, 'open_alerts': 2}, {'approvals': 1}))\n")
    try:
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    finally:
        srv.shutdown()
    assert out.returncode == 0 and "sent 3" in out.stdout, out.stderr[-2000:]
    seen = {}
    for body in bodies:  # the process exports what it recorded when it shuts down
        req = ExportMetricsServiceRequest()
        req.ParseFromString(body)
        for m in (m for rm in req.resource_metrics for sm in rm.scope_metrics for m in sm.metrics):
            for p in getattr(m, m.WhichOneof("data")).data_points:
                seen[m.name] = (p.as_double or p.as_int, {a.key: a.value.string_value for a in p.attributes})
    assert seen["airflow.modelops.drift_ratio"] == (0.25, {"model_name": "store_sales"})
    assert seen["airflow.modelops.open_alerts"] == (2.0, {"model_name": "store_sales"})
    assert seen["airflow.modelops.approvals"] == (1, {"model_name": "store_sales"})
