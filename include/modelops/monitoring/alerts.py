"""Alert messages (what happened, which model/version, the numbers, links) and the alert ledger.

Plain Python: the Airflow notifier in ``plugins/`` collects the facts from the task context,
calls :func:`build_alert`, records it here and delivers it over the configured connections.
The ``modelops_alerts`` table keeps one row per (model, kind, key): a retried task finds its
alert already delivered and does not page anyone twice, and ``status`` lists what is still open.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modelops import db
from modelops.data.storage import as_day

TABLE = "modelops_alerts"

DRIFT_DETECTED = "drift_detected"
PERFORMANCE_DEGRADED = "performance_degraded"
GATE_REJECTED = "gate_rejected"
APPROVAL_WAITING = "approval_waiting"
APPROVAL_TIMED_OUT = "approval_timed_out"
TASK_FAILED = "task_failed"
KINDS = (DRIFT_DETECTED, PERFORMANCE_DEGRADED, GATE_REJECTED, APPROVAL_WAITING, APPROVAL_TIMED_OUT, TASK_FAILED)
SEVERITY = {DRIFT_DETECTED: "warning", PERFORMANCE_DEGRADED: "critical", GATE_REJECTED: "info", APPROVAL_WAITING: "action",
            APPROVAL_TIMED_OUT: "warning", TASK_FAILED: "critical"}
# Kinds that stay open until something resolves them; the rest are informational (closed at once).
STAYS_OPEN = {DRIFT_DETECTED, PERFORMANCE_DEGRADED, APPROVAL_WAITING}

alerts = sa.Table(
    TABLE,
    db.metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("alert_key", sa.String(500), nullable=False),  # Airflow run + task (+ version): one alert per event
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("logical_date", sa.Date(), nullable=True),  # the data day the alert is about (reports filter on it)
    sa.Column("model_version", sa.String(64), nullable=True),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("facts_json", sa.Text(), nullable=False),
    sa.Column("airflow_url", sa.String(1000), nullable=True),
    sa.Column("mlflow_url", sa.String(1000), nullable=True),
    sa.Column("delivered", sa.String(200), nullable=False, default=""),  # channels that accepted it, e.g. "webhook,email"
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("resolution", sa.String(500), nullable=True),
    sa.UniqueConstraint("model_name", "kind", "alert_key", name="uq_modelops_alerts_model_kind_key"),
    sa.Index("ix_modelops_alerts_model_open", "model_name", "resolved_at"),
)


@dataclass
class Alert:
    """One message, the same for every channel: a title, plain lines, the numbers, two links."""

    kind: str
    model_name: str
    model_version: str | None
    title: str
    lines: list[str]
    facts: dict[str, Any] = field(default_factory=dict)
    airflow_url: str | None = None
    mlflow_url: str | None = None
    key: str = ""
    day: str | None = None  # YYYY-MM-DD of the data the alert is about

    @property
    def severity(self) -> str:
        return SEVERITY[self.kind]

    def text(self) -> str:
        """Slack-style mrkdwn: what a person reads in the channel."""
        out = [f"*[{self.severity.upper()}] {self.title}*", *[f"• {line}" for line in self.lines]]
        if self.airflow_url:
            out.append(f"Airflow run: {self.airflow_url}")
        if self.mlflow_url:
            out.append(f"MLflow run: {self.mlflow_url}")
        return "\n".join(out)

    def html(self) -> str:
        e = html.escape
        links = "".join(f'<li>{name}: <a href="{e(url)}">{e(url)}</a></li>'
                        for name, url in (("Airflow run", self.airflow_url), ("MLflow run", self.mlflow_url)) if url)
        items = "".join(f"<li>{e(line)}</li>" for line in self.lines)
        return (f"<h2>{e(self.title)}</h2><p>severity: <b>{e(self.severity)}</b></p><ul>{items}</ul><ul>{links}</ul>"
                f"<pre>{e(json.dumps(self.facts, indent=1, sort_keys=True, default=str))}</pre>")

    def payload(self) -> dict[str, Any]:
        """Webhook JSON: ``text`` for Slack-compatible receivers, ``modelops`` for machines."""
        return {"text": self.text(), "modelops": {**asdict(self), "severity": self.severity}}


def _f(v: Any, spec: str = ".4f") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return format(float(v), spec)


def airflow_run_url(base_url: str, dag_id: str, run_id: str, task_id: str | None = None) -> str:
    """The Airflow 3 UI page of a run (or of one task in it)."""
    url = f"{base_url.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    return f"{url}/tasks/{quote(task_id, safe='')}" if task_id else url


def build_alert(kind: str, model_name: str, facts: dict[str, Any], *, airflow_url: str | None = None,
                mlflow_url: str | None = None, key: str = "") -> Alert | None:
    """The alert for ``kind`` from the facts the task produced; None when the facts say nothing happened.

    (E.g. a gate that passed: the notifier sits on the gate task either way.)
    """
    if kind not in KINDS:
        raise ValueError(f"unknown alert kind {kind!r}; expected one of {list(KINDS)}")
    v = facts.get("model_version") or facts.get("version") or facts.get("production_version")
    version = None if v in (None, "") else str(v)
    vs = f" v{version}" if version else ""
    lines: list[str]
    if kind == DRIFT_DETECTED:
        if facts.get("dataset_drift") is False:
            return None
        feats = facts.get("drifted_features") or []
        title = f"Data drift detected for {model_name}{vs}"
        lines = [f"day {str(facts.get('data_interval_start') or facts.get('day') or '?')[:10]}: drift ratio {_f(facts.get('drift_ratio'), '.2f')}"
                 + (f" (threshold {_f(facts.get('drift_ratio_threshold'), '.2f')})" if facts.get("drift_ratio_threshold") is not None else ""),
                 f"drifted features ({len(feats)}): {', '.join(map(str, feats)) or 'none'}",
                 "retraining was requested (drift Asset event)"]
    elif kind == PERFORMANCE_DEGRADED:
        if not facts.get("degraded"):
            return None
        metric = facts.get("metric", "metric")
        title = f"Performance degraded: {model_name}{vs} {metric} {_f(facts.get('value'))} vs baseline {_f(facts.get('baseline'))}"
        lines = [f"rolling {facts.get('rolling_window_days', '?')}-day {metric} {_f(facts.get('value'))} on {facts.get('rolling_n_rows', '?')} "
                 f"labelled rows up to {facts.get('day')}",
                 f"test-set baseline {_f(facts.get('baseline'))}, limit {_f(facts.get('limit'))}; last day alone {_f(facts.get('daily_value'))}",
                 str(facts.get("reason_text") or facts.get("reason") or ""),
                 "retraining was requested (Asset event, reason performance_degradation)"]
        sh = facts.get("shadow")
        if sh:
            lines.insert(2, f"shadow staging v{sh.get('model_version')}: rolling {metric} {_f(sh.get('rolling_value'))}")
    elif kind == GATE_REJECTED:
        if facts.get("passed", False):
            return None
        reasons = facts.get("reasons") or []
        title = f"Gate rejected {model_name}{vs}"
        lines = [f"{facts.get('metric', 'metric')} {_f(facts.get('value'))} (threshold {_f(facts.get('threshold'))})"
                 + (f", production v{facts['production_version']} {_f(facts.get('production_value'))}" if facts.get("production_version") else ""),
                 *[f"reason: {r}" for r in reasons], "production is untouched"]
    elif kind == APPROVAL_WAITING:
        title = f"Approval needed: promote {model_name}{vs} to production?"
        lines = [f"candidate {facts.get('metric', 'metric')} {_f(facts.get('value'))}"
                 + (f" vs production v{facts['production_version']} {_f(facts.get('production_value'))}" if facts.get("production_version") else ""),
                 f"approvers: {', '.join(facts.get('approvers') or [])}; no answer within {facts.get('timeout_hours', '?')} h counts as Reject"]
        if facts.get("shadow_value") is not None:
            lines.insert(1, f"live shadow {facts.get('metric')} {_f(facts.get('shadow_value'))} vs production {_f(facts.get('live_production_value'))}"
                            f" on the same {facts.get('shadow_rows', '?')} rows")
    elif kind == APPROVAL_TIMED_OUT:
        title = f"Approval timed out: {model_name}{vs} was not promoted"
        lines = [f"nobody answered within {facts.get('timeout_hours', '?')} h; the version is rejected", "production is untouched"]
    else:  # TASK_FAILED
        title = f"Task failed: {facts.get('dag_id')}.{facts.get('task_id')} ({model_name})"
        lines = [f"try {facts.get('try_number', '?')}, logical date {facts.get('logical_date', '?')}",
                 f"error: {str(facts.get('error') or 'unknown')[:500]}"]
    day = facts.get("day") or facts.get("data_interval_start") or facts.get("logical_date")
    return Alert(kind, model_name, version, title, [ln for ln in lines if ln], facts, airflow_url, mlflow_url, key,
                 str(day)[:10] if day else None)


# -- the ledger --------------------------------------------------------------------------------------

def already_delivered(engine: Engine, alert: Alert) -> str | None:
    """Channels an earlier attempt delivered this very alert to (None when it is new)."""
    t = alerts
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.c.delivered).where(t.c.model_name == alert.model_name, t.c.kind == alert.kind,
                                                          t.c.alert_key == alert.key)).first()
    return None if row is None else row.delivered


def open_episode(engine: Engine, alert: Alert) -> dict[str, Any] | None:
    """An earlier, still open alert of the same kind about the same version (another run's).

    Drift or degradation that persists for days is one episode: people are told once, and
    again only after a check back to normal closed the first alert (or if the first one
    reached nobody: webhook down, log-only).
    """
    if alert.kind not in (DRIFT_DETECTED, PERFORMANCE_DEGRADED):
        return None
    t = alerts
    version = t.c.model_version.is_(None) if alert.model_version is None else t.c.model_version == alert.model_version
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.c.alert_key, t.c.created_at, t.c.logical_date)
                           .where(t.c.model_name == alert.model_name, t.c.kind == alert.kind, version,
                                  t.c.resolved_at.is_(None), t.c.alert_key != alert.key,
                                  t.c.delivered != "")  # an alert nobody received does not silence the next one
                           .order_by(t.c.created_at).limit(1)).first()
    return None if row is None else dict(row._mapping)


def record(engine: Engine, alert: Alert, delivered: list[str]) -> None:
    """Insert or update the alert's row (same key = same alert); informational kinds are closed at once."""
    t = alerts
    now = datetime.now(timezone.utc)
    values = {"severity": alert.severity, "model_version": alert.model_version, "title": alert.title[:500],
              "body": alert.text(), "facts_json": json.dumps(alert.facts, sort_keys=True, default=str),
              "airflow_url": alert.airflow_url, "mlflow_url": alert.mlflow_url, "delivered": ",".join(delivered),
              "logical_date": as_day(alert.day) if alert.day else None}
    where = (t.c.model_name == alert.model_name, t.c.kind == alert.kind, t.c.alert_key == alert.key)
    with engine.begin() as conn:
        exists = conn.execute(sa.select(t.c.id).where(*where)).first()
        if exists:
            conn.execute(t.update().where(*where).values(**values))
        else:
            closed = None if alert.kind in STAYS_OPEN else now
            conn.execute(t.insert().values(model_name=alert.model_name, kind=alert.kind, alert_key=alert.key, created_at=now,
                                           resolved_at=closed, resolution=None if closed is None else "informational", **values))


def resolve(engine: Engine, model_name: str, kinds: tuple[str, ...] | list[str], resolution: str) -> int:
    """Close the open alerts of these kinds (e.g. drift gone, metric back within tolerance); returns how many."""
    t = alerts
    with engine.begin() as conn:
        res = conn.execute(t.update().where(t.c.model_name == model_name, t.c.kind.in_(list(kinds)), t.c.resolved_at.is_(None))
                           .values(resolved_at=datetime.now(timezone.utc), resolution=resolution[:500]))
    return int(res.rowcount or 0)


def open_alerts(engine: Engine, model_name: str) -> list[dict[str, Any]]:
    t = alerts
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.kind, t.c.severity, t.c.model_version, t.c.title, t.c.created_at, t.c.airflow_url,
                                      t.c.delivered)
                            .where(t.c.model_name == model_name, t.c.resolved_at.is_(None)).order_by(t.c.created_at)).all()
    return [dict(r._mapping) for r in rows]


def load_alerts(engine: Engine, model_name: str, start: Any = None, end: Any = None) -> list[dict[str, Any]]:
    """Every alert (open or not) about data days in [start, end), oldest first: for reports."""
    t = alerts
    q = db.for_days(sa.select(t), t, model_name, start, end)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q.order_by(t.c.created_at)).all()]
