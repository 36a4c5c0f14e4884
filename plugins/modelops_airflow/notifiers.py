"""The alert notifier: facts from the task context -> ``modelops.alerts`` message -> webhook and email.

Channels are Airflow connections named in the config (``monitoring.alerts``): an ``http``
connection for a Slack-style webhook (POST JSON ``{"text": ...}``; extra ``{"endpoint": "/path"}``)
and an ``smtp`` connection for email. A connection that does not exist means "log only".
An alert is also written to the package DB (``modelops_alerts``), keyed by run and task, so a
retried callback does not page anyone twice, and drift or degradation that persists is one open
alert until a normal check closes it. Alerting never fails the task it reports on.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.bases.notifier import BaseNotifier

if TYPE_CHECKING:
    from airflow.sdk import Context


def _connection(conn_id: str | None):
    if not conn_id:
        return None
    try:
        return BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - AirflowNotFoundException and friends: the channel is not configured
        return None


def airflow_base_url() -> str:
    url = os.environ.get("AIRFLOW__API__BASE_URL")
    if not url:
        try:
            from airflow.configuration import conf

            url = conf.get("api", "base_url", fallback=None)
        except Exception:  # noqa: BLE001
            url = None
    return (url or "http://localhost:8080").rstrip("/")


class ModelopsAlertNotifier(BaseNotifier):
    """Send one kind of modelops alert (see ``modelops.alerts.KINDS``).

    Use as a task callback (``on_success_callback=ModelopsAlertNotifier(kind="drift_detected")``)
    or call :meth:`send` from an operator with explicit facts.

    :param kind: the alert kind: drift_detected, performance_degraded, gate_rejected,
        approval_waiting, approval_timed_out, task_failed.
    :param config_path: problem config YAML (default ``$MODELOPS_CONFIG``); names the model and connections.
    :param facts_task_id: task whose return value (XCom) holds the numbers; default the task itself.
    """

    template_fields = ("config_path",)

    def __init__(self, *, kind: str, config_path: str | None = None, facts_task_id: str | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.config_path = config_path
        self.facts_task_id = facts_task_id

    # -- facts from the context --------------------------------------------------------------
    def _facts(self, context: Context) -> dict[str, Any]:
        ti = context.get("ti") or context.get("task_instance")
        if self.kind == "task_failed":
            dr = context.get("dag_run")
            return {"dag_id": getattr(ti, "dag_id", None), "task_id": getattr(ti, "task_id", None),
                    "try_number": getattr(ti, "try_number", None), "run_id": getattr(ti, "run_id", None),
                    "logical_date": str(context.get("logical_date") or getattr(dr, "logical_date", "") or "")[:19],
                    "error": f"{type(context.get('exception')).__name__}: {context.get('exception')}" if context.get("exception") else None}
        value = ti.xcom_pull(task_ids=self.facts_task_id or ti.task_id) if ti is not None else None
        return dict(value) if isinstance(value, dict) else {}

    def notify(self, context: Context) -> None:
        ti = context.get("ti") or context.get("task_instance")
        try:
            self.send(context, self._facts(context), task_id=getattr(ti, "task_id", None))
        except Exception:  # noqa: BLE001 - an alert that cannot be built or sent must not fail the task
            self.log.exception("modelops alert %s could not be sent", self.kind)

    # -- build, record, deliver ----------------------------------------------------------------
    def send(self, context: Context, facts: dict[str, Any], task_id: str | None = None) -> list[str]:
        """Build the alert from ``facts`` and deliver it; returns the channels that accepted it."""
        from modelops import db
        from modelops.monitoring import alerts
        from modelops.config import load_config

        from modelops_airflow.hooks import ModelopsHook

        ModelopsHook().configure_environment()
        cfg = load_config(self.config_path)
        dag_run = context.get("dag_run")
        dag_id = getattr(dag_run, "dag_id", None) or facts.get("dag_id") or "?"
        run_id = getattr(dag_run, "run_id", None) or facts.get("run_id") or "?"
        mlflow_run = facts.get("mlflow_run_id")
        mlflow_url = None
        if mlflow_run:
            try:
                from modelops.tracking import run_link

                mlflow_url = run_link(mlflow_run)
            except Exception:  # noqa: BLE001 - a link is nice to have, the alert is not
                mlflow_url = None
        version = facts.get("model_version") or facts.get("version") or ""
        alert = alerts.build_alert(self.kind, cfg.model_name, facts,
                                   airflow_url=alerts.airflow_run_url(airflow_base_url(), dag_id, run_id, task_id),
                                   mlflow_url=mlflow_url, key=f"{dag_id}/{run_id}/{task_id or '-'}/{version}")
        if alert is None:
            self.log.info("no %s alert: the task's result says nothing happened", self.kind)
            return []
        engine = db.get_engine()
        db.migrate(engine)
        before = alerts.already_delivered(engine, alert)
        if before:
            self.log.info("alert %s already delivered to %s by an earlier try; not sending again", alert.title, before)
            return before.split(",")
        episode = alerts.open_episode(engine, alert)
        if episode:
            self.log.warning("still %s (alert open since %s, day %s): not paging again. %s", self.kind, episode["created_at"],
                             episode["logical_date"], alert.title)
            return []
        self.log.warning("ALERT %s", alert.text())
        delivered = []
        if self._webhook(cfg.monitoring.alerts.webhook_conn_id, alert):
            delivered.append("webhook")
        if self._email(cfg.monitoring.alerts, alert):
            delivered.append("email")
        alerts.record(engine, alert, delivered)
        from modelops_airflow.health_metrics import after_alert

        after_alert(cfg.model_name)  # the open-alerts gauge (never fails)
        return delivered

    def _webhook(self, conn_id: str, alert: Any) -> bool:
        conn = _connection(conn_id)
        if conn is None:
            self.log.info("connection %s not configured: webhook alert only logged", conn_id)
            return False
        from airflow.providers.http.hooks.http import HttpHook

        endpoint = (conn.extra_dejson or {}).get("endpoint", "")
        try:
            HttpHook(method="POST", http_conn_id=conn_id).run(endpoint=endpoint, json=alert.payload(),
                                                              headers={"Content-Type": "application/json"},
                                                              extra_options={"timeout": 15})
        except Exception as exc:  # noqa: BLE001 - an unreachable webhook is logged, the other channel still tries
            self.log.error("webhook %s refused the alert: %s", conn_id, exc)
            return False
        self.log.info("alert sent to webhook %s", conn_id)
        return True

    def _email(self, settings: Any, alert: Any) -> bool:
        conn_id = settings.email_conn_id
        if _connection(conn_id) is None or not settings.email_to:
            self.log.info("connection %s or monitoring.alerts.email_to not configured: email alert only logged", conn_id)
            return False
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        try:
            with SmtpHook(smtp_conn_id=conn_id) as hook:
                hook.send_email_smtp(to=list(settings.email_to), subject=f"[modelops] {alert.title}", html_content=alert.html(),
                                     from_email=settings.email_from)
        except Exception as exc:  # noqa: BLE001
            self.log.error("email via %s failed: %s", conn_id, exc)
            return False
        self.log.info("alert emailed to %s via %s", ", ".join(settings.email_to), conn_id)
        return True


def send_alert(context: Context, kind: str, facts: dict[str, Any], config_path: str | None = None) -> list[str]:
    """For operators that alert mid-task (approval waiting/timed out): never raises."""
    notifier = ModelopsAlertNotifier(kind=kind, config_path=config_path)
    ti = context.get("ti")
    try:
        return notifier.send(context, facts, task_id=getattr(ti, "task_id", None))
    except Exception:  # noqa: BLE001
        notifier.log.exception("modelops alert %s could not be sent", kind)
        return []
