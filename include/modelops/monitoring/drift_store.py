"""The package's own table of drift reports (SQLAlchemy Core; SQLite by default, PostgreSQL in the stack).

One row per (model, logical date, feature). Saving a date replaces that date's rows in a
single transaction, so a retried or backfilled Airflow run never duplicates rows and a
failure half-way never leaves a partial report behind.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from modelops import db
from modelops.db import dispose_engines, get_engine  # noqa: F401 - the drift table's callers use these names
from modelops.data.storage import as_day

if TYPE_CHECKING:
    from modelops.monitoring.drift import DriftReport

log = logging.getLogger(__name__)

TABLE = "modelops_drift_reports"
_NAME_MAX = 255

drift_reports = sa.Table(
    TABLE,
    db.metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(_NAME_MAX), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=True),
    sa.Column("logical_date", sa.Date(), nullable=False),
    sa.Column("feature", sa.String(_NAME_MAX), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    # Double, not Float: p-values such as 1e-60 underflow a 4-byte real.
    sa.Column("ks_statistic", sa.Double(), nullable=True),
    sa.Column("ks_pvalue", sa.Double(), nullable=True),
    sa.Column("psi", sa.Double(), nullable=True),
    sa.Column("drifted", sa.Boolean(), nullable=False),
    sa.Column("drift_ratio", sa.Double(), nullable=False),
    sa.Column("dataset_drift", sa.Boolean(), nullable=False),
    sa.Column("n_reference", sa.BigInteger(), nullable=False),
    sa.Column("n_current", sa.BigInteger(), nullable=False),
    sa.Column("dag_id", sa.String(250), nullable=True),
    sa.Column("run_id", sa.String(250), nullable=True),
    sa.Column("mlflow_run_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("model_name", "logical_date", "feature", name="uq_modelops_drift_reports_model_date_feature"),
    sa.Index("ix_modelops_drift_reports_model_date", "model_name", "logical_date"),
)


def create_schema(engine: Engine) -> None:
    """Create/migrate the package's tables (see ``modelops.db.migrate``); safe to call on every run."""
    db.migrate(engine)


# -- writing -----------------------------------------------------------------------------------

def _optional_float(value: Any, what: str) -> float | None:
    """NaN/None -> NULL (not computed, e.g. KS of a categorical); infinities are errors."""
    if value is None:
        return None
    f = float(value)
    if math.isnan(f):
        return None
    if math.isinf(f):
        raise ValueError(f"{what} is infinite; refusing to store it")
    return f


def _name(value: Any, what: str, required: bool = True) -> str | None:
    if value is None:
        if required:
            raise ValueError(f"{what} is required")
        return None
    s = str(value)
    if required and not s:
        raise ValueError(f"{what} must not be empty")
    if len(s) > _NAME_MAX:
        raise ValueError(f"{what} {s[:40]!r}... is longer than {_NAME_MAX} characters")
    return s


def _rows(report: DriftReport, model_name: str, day: date, model_version: str | None, dag_id: str | None,
          run_id: str | None, mlflow_run_id: str | None) -> list[dict[str, Any]]:
    """Validate everything before the transaction starts, with messages naming the feature."""
    ratio = float(report.drift_ratio)
    if not (math.isfinite(ratio) and 0.0 <= ratio <= 1.0):
        raise ValueError(f"drift_ratio must be a number in [0, 1], got {report.drift_ratio!r}")
    now = datetime.now(timezone.utc)
    rows = []
    for f in report.features:
        rows.append({
            "model_name": model_name, "model_version": model_version, "logical_date": day,
            "feature": _name(f.feature, "feature name"), "kind": f.kind,
            "ks_statistic": _optional_float(f.ks_statistic, f"ks_statistic of feature '{f.feature}'"),
            "ks_pvalue": _optional_float(f.ks_pvalue, f"ks_pvalue of feature '{f.feature}'"),
            "psi": _optional_float(f.psi, f"psi of feature '{f.feature}'"),
            "drifted": bool(f.drifted), "drift_ratio": ratio, "dataset_drift": bool(report.dataset_drift),
            "n_reference": int(f.n_reference), "n_current": int(f.n_current),
            "dag_id": dag_id, "run_id": run_id, "mlflow_run_id": mlflow_run_id, "created_at": now,
        })
    return rows


def _lock_key(model_name: str, day: date) -> int:
    digest = hashlib.blake2b(f"{TABLE}|{model_name}|{day.isoformat()}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _insert_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(drift_reports.insert(), rows)


def save_report(engine: Engine, report: DriftReport, model_name: str, logical_date: date | datetime | str,
                model_version: str | int | None = None, dag_id: str | None = None, run_id: str | None = None,
                mlflow_run_id: str | None = None, retry_for_s: float = 60.0) -> int:
    """Replace the report of (model_name, logical_date) in one transaction; returns rows written.

    Delete-then-insert inside the transaction is the upsert: a re-run of the same date
    replaces rows (never duplicates) and any error rolls back to the previous report.
    On PostgreSQL a transaction-scoped advisory lock serializes concurrent saves of the
    same (model, date), which would otherwise race into a unique-constraint error.

    A lost connection (database restarted, failover) rolls the transaction back on the
    server, so the whole transaction is simply run again, with backoff, for up to
    ``retry_for_s`` seconds; any other error is raised at once.
    """
    model = _name(model_name, "model_name")
    day = as_day(logical_date)
    version = None if model_version is None else str(model_version)
    rows = _rows(report, model, day, version, dag_id, run_id, mlflow_run_id)
    deadline = time.monotonic() + retry_for_s
    wait = 0.5
    attempt = 1
    while True:
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(model, day)})
                conn.execute(drift_reports.delete().where(drift_reports.c.model_name == model,
                                                          drift_reports.c.logical_date == day))
                _insert_rows(conn, rows)
            return len(rows)
        except sa.exc.DBAPIError as exc:
            if not (exc.connection_invalidated or isinstance(exc, sa.exc.OperationalError)) or time.monotonic() + wait > deadline:
                raise
            log.warning("drift report of %s for %s: database connection lost (attempt %d: %s); retrying the transaction in %.1fs",
                        model, day, attempt, str(exc.orig).strip().splitlines()[0] if exc.orig else exc, wait)
            time.sleep(wait)
            wait = min(wait * 2, 10.0)
            attempt += 1


# -- reading -----------------------------------------------------------------------------------

def load_reports(engine: Engine, model_name: str, start: date | datetime | str | None = None,
                 end: date | datetime | str | None = None) -> pd.DataFrame:
    """Rows of ``model_name`` with start <= logical_date <= end (both inclusive, both optional).

    ``logical_date`` comes back as datetime64 (midnight) for easy plotting/resampling.
    """
    t = drift_reports
    q = db.for_days(sa.select(t), t, model_name, start, end, end_inclusive=True)
    q = q.order_by(t.c.logical_date, t.c.feature)
    with engine.connect() as conn:
        result = conn.execute(q)
        df = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    df["logical_date"] = pd.to_datetime(df["logical_date"])
    for c in ("ks_statistic", "ks_pvalue", "psi", "drift_ratio"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    for c in ("drifted", "dataset_drift"):
        df[c] = df[c].astype(bool)
    return df


def latest_summary(engine: Engine, model_name: str) -> dict[str, Any] | None:
    """The most recent stored date of ``model_name``: ratio, verdict, drifted features; None if none."""
    t = drift_reports
    with engine.connect() as conn:
        last = conn.execute(sa.select(sa.func.max(t.c.logical_date)).where(t.c.model_name == model_name)).scalar()
        if last is None:
            return None
        rows = conn.execute(
            sa.select(t.c.feature, t.c.drifted, t.c.drift_ratio, t.c.dataset_drift, t.c.model_version,
                      t.c.mlflow_run_id, t.c.dag_id, t.c.run_id, t.c.created_at)
            .where(t.c.model_name == model_name, t.c.logical_date == last).order_by(t.c.feature)
        ).all()
    first = rows[0]
    return {
        "model_name": model_name,
        "logical_date": as_day(last),
        "drift_ratio": float(first.drift_ratio),
        "dataset_drift": bool(first.dataset_drift),
        "drifted_features": [r.feature for r in rows if r.drifted],
        "n_features": len(rows),
        "model_version": first.model_version,
        "mlflow_run_id": first.mlflow_run_id,
        "dag_id": first.dag_id,
        "run_id": first.run_id,
        "created_at": first.created_at,
    }
