"""The alert notifier against real local receivers: an HTTP webhook and an SMTP server on 127.0.0.1."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

from modelops import db
from modelops.monitoring import alerts
from tests.alert_servers import SmtpServer, WebhookServer
from tests.conftest import write_config

FACTS = {"degraded": True, "metric": "rmspe", "value": 0.31, "baseline": 0.08, "limit": 0.1, "model_version": "3",
         "day": "2025-06-05", "rolling_n_rows": 120, "rolling_window_days": 7}


@pytest.fixture
def model(tmp_path, monkeypatch):
    name = f"alerts_{uuid.uuid4().hex[:8]}"
    path = write_config(tmp_path, model_name=name, **{"monitoring.alerts.email_to": ["oncall@example.com"],
                                                      "monitoring.alerts.email_from": "modelops@example.com"})
    monkeypatch.setenv("MODELOPS_CONFIG", str(path))
    return name


def _context(run_id: str = "scheduled__2025-06-05T01:00:00+00:00", task_id: str = "emit_performance_event"):
    ti = SimpleNamespace(dag_id="batch_predict_daily", task_id=task_id, run_id=run_id, try_number=2)
    return {"dag_run": SimpleNamespace(dag_id="batch_predict_daily", run_id=run_id), "ti": ti}


def test_webhook_and_email_receive_the_alert_once(model, monkeypatch):
    from modelops_airflow.notifiers import ModelopsAlertNotifier

    with WebhookServer() as hook, SmtpServer() as smtp:
        monkeypatch.setenv("AIRFLOW_CONN_MODELOPS_ALERTS_WEBHOOK", hook.connection("/hooks/modelops"))
        monkeypatch.setenv("AIRFLOW_CONN_MODELOPS_ALERTS_SMTP", smtp.connection())
        notifier = ModelopsAlertNotifier(kind="performance_degraded")
        assert notifier.send(_context(), FACTS, task_id="emit_performance_event") == ["webhook", "email"]
        (path, body, ctype), = hook.wait_for(1)
        (sender, rcpts, message), = smtp.wait_for(1)
        # a retry of the same callback: already delivered, nobody is paged twice
        assert notifier.send(_context(), FACTS, task_id="emit_performance_event") == ["webhook", "email"]
    assert len(hook.items) == 1 and len(smtp.items) == 1
    assert path == "/hooks/modelops" and ctype == "application/json"
    text = body["text"]
    assert f"{model} v3" in text and "0.3100" in text and "0.0800" in text and "limit 0.1000" in text
    assert "http://testserver/dags/batch_predict_daily/runs/scheduled__2025-06-05T01%3A00%3A00%2B00%3A00/tasks/emit_performance_event" in text
    assert body["modelops"]["kind"] == "performance_degraded" and body["modelops"]["model_version"] == "3"
    assert sender == "modelops@example.com" and rcpts == ["oncall@example.com"]
    assert f"Subject: [modelops] Performance degraded: {model} v3" in message.replace("\r\n ", " ").replace("\n ", " ")
    (row,) = alerts.open_alerts(db.get_engine(), model)
    assert row["kind"] == "performance_degraded" and row["delivered"] == "webhook,email"


def test_a_persisting_degradation_pages_once_until_it_is_resolved(model, monkeypatch):
    from modelops_airflow.notifiers import ModelopsAlertNotifier

    n = ModelopsAlertNotifier(kind="performance_degraded")
    with WebhookServer() as hook:
        monkeypatch.setenv("AIRFLOW_CONN_MODELOPS_ALERTS_WEBHOOK", hook.connection())
        assert n.send(_context("day-5"), FACTS) == ["webhook"]
        assert n.send(_context("day-6"), {**FACTS, "day": "2025-06-06"}) == []  # same episode, same version
        assert n.send(_context("day-6b"), {**FACTS, "model_version": "4"}) == ["webhook"]  # a new version is news
        alerts.resolve(db.get_engine(), model, ["performance_degraded"], "within tolerance on 2025-06-07")
        assert n.send(_context("day-9"), {**FACTS, "day": "2025-06-09"}) == ["webhook"]  # a new episode
        hook.wait_for(3)
    assert [b["modelops"]["facts"]["day"] for _, b, _ in hook.items] == ["2025-06-05", "2025-06-05", "2025-06-09"]


def test_unconfigured_or_failing_channels_log_and_never_raise(model, monkeypatch):
    from modelops_airflow.notifiers import ModelopsAlertNotifier

    monkeypatch.delenv("AIRFLOW_CONN_MODELOPS_ALERTS_WEBHOOK", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_MODELOPS_ALERTS_SMTP", raising=False)
    n = ModelopsAlertNotifier(kind="drift_detected")
    assert n.send(_context("r-none", "emit_drift_event"), {"drift_ratio": 0.5, "drifted_features": ["customers"]}) == []
    assert [a["kind"] for a in alerts.open_alerts(db.get_engine(), model)] == ["drift_detected"]  # recorded, log only

    alerts.resolve(db.get_engine(), model, ["drift_detected"], "no drift the next day")
    with WebhookServer(status=500) as hook:
        monkeypatch.setenv("AIRFLOW_CONN_MODELOPS_ALERTS_WEBHOOK", hook.connection())
        assert n.send(_context("r-500", "emit_drift_event"), {"drift_ratio": 0.5, "drifted_features": ["x"]}) == []
        assert len(hook.wait_for(1)) == 1  # it was tried, refused, and the task goes on

    # the failure callback path: context with an exception, called the way Airflow calls it
    with WebhookServer() as hook:
        monkeypatch.setenv("AIRFLOW_CONN_MODELOPS_ALERTS_WEBHOOK", hook.connection())
        ctx = {**_context("r-fail", "score_batch"), "exception": RuntimeError("no partition date=2025-06-05 under /data")}
        ModelopsAlertNotifier(kind="task_failed")(ctx)
        (_, body, _), = hook.wait_for(1)
    assert "Task failed: batch_predict_daily.score_batch" in body["text"] and "no partition date=2025-06-05" in body["text"]
    assert "try 2" in body["text"]
