"""Batch predictions from ``models:/NAME@production`` (and the ``staging`` shadow), logged per day.

A day's predictions go to parquet (a stable partition per day under the work root) and to
the ``modelops_predictions`` table. Saving a day replaces that day's rows of the model in one
transaction, so a retried task or a backfill never duplicates rows and a failure half-way
leaves the previous rows in place. The shadow challenger's rows sit next to production's,
told apart by ``model_role``, so live metrics compare both on exactly the same rows.
"""

from __future__ import annotations

import hashlib
import logging
import math
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modelops import db
from modelops.governance import registry
from modelops.data import storage
from modelops.config import ModelopsConfig

if TYPE_CHECKING:
    import pandas as pd

    from modelops.tracking import RunContext

log = logging.getLogger(__name__)

TABLE = "modelops_predictions"
PRODUCTION_ROLE = "production"
SHADOW_ROLE = "shadow"
ROLES = (PRODUCTION_ROLE, SHADOW_ROLE)

predictions = sa.Table(
    TABLE,
    db.metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(255), nullable=False),
    sa.Column("logical_date", sa.Date(), nullable=False),  # the day of the scored row's timestamp
    sa.Column("model_role", sa.String(16), nullable=False),  # production | shadow
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("entity", sa.String(255), nullable=False),
    sa.Column("ts", sa.DateTime(), nullable=False),
    sa.Column("prediction", sa.Double(), nullable=False),
    sa.Column("model_run_id", sa.String(64), nullable=True),  # MLflow run that logged the model
    sa.Column("dag_id", sa.String(250), nullable=True),
    sa.Column("run_id", sa.String(250), nullable=True),  # Airflow run that scored the rows
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # what evaluate_performance and the report read: one model's days, per role
    sa.Index("ix_modelops_predictions_model_date_role", "model_name", "logical_date", "model_role"),
)


def _lock_key(model_name: str, start: date) -> int:
    digest = hashlib.blake2b(f"{TABLE}|{model_name}|{start.isoformat()}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def save_predictions(engine: Engine, model_name: str, frame: pd.DataFrame, start: date, end: date,
                     explanations: list[dict[str, Any]] | None = None) -> int:
    """Replace the model's rows with logical_date in [start, end) by ``frame``; returns rows written.

    ``frame`` needs columns entity, ts, prediction, model_role, model_version (and optionally
    model_run_id, dag_id, run_id). Checked before the transaction so a bad frame changes nothing.
    The days' rows of ``modelops_prediction_explanations`` are replaced by ``explanations`` in the
    same transaction (none: the days have no explanations, e.g. after they were turned off).
    """
    from modelops.monitoring import explanation_store

    import pandas as pd

    missing = {"entity", "ts", "prediction", "model_role", "model_version"} - set(frame.columns)
    if missing:
        raise ValueError(f"predictions frame lacks columns {sorted(missing)}")
    bad_roles = set(frame["model_role"]) - set(ROLES)
    if bad_roles:
        raise ValueError(f"unknown model_role {sorted(bad_roles)}; expected one of {list(ROLES)}")
    pred = pd.to_numeric(frame["prediction"], errors="coerce").to_numpy(dtype="float64")
    if len(pred) and not all(math.isfinite(p) for p in pred):
        n_bad = int(sum(not math.isfinite(p) for p in pred))
        raise ValueError(f"{n_bad} of {len(pred)} predictions are NaN or infinite; refusing to store them")
    ts = pd.to_datetime(frame["ts"])
    days = ts.dt.date
    outside = frame.loc[(days < start) | (days >= end)]
    if len(outside):
        raise ValueError(f"{len(outside)} prediction rows fall outside [{start}, {end}), e.g. ts {ts[outside.index[0]]}")
    now = datetime.now(timezone.utc)
    rows = [
        {"model_name": model_name, "logical_date": d, "model_role": role, "model_version": str(v), "entity": str(e),
         "ts": t.to_pydatetime(), "prediction": float(p), "model_run_id": mr, "dag_id": dg, "run_id": rn, "created_at": now}
        for d, role, v, e, t, p, mr, dg, rn in zip(
            days, frame["model_role"], frame["model_version"], frame["entity"], ts, pred,
            frame.get("model_run_id", [None] * len(frame)), frame.get("dag_id", [None] * len(frame)),
            frame.get("run_id", [None] * len(frame)))
    ]
    t = predictions
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(model_name, start)})
        conn.execute(t.delete().where(t.c.model_name == model_name, t.c.logical_date >= start, t.c.logical_date < end))
        if rows:
            conn.execute(t.insert(), rows)
        explanation_store.replace_explanations(conn, model_name, start, end, explanations or [])
    return len(rows)


def load_predictions(engine: Engine, model_name: str, start: date | str | None = None, end: date | str | None = None,
                     role: str | None = None) -> pd.DataFrame:
    """Rows with start <= logical_date < end (end exclusive, both optional), ordered by day, role, entity."""
    import pandas as pd

    t = predictions
    q = sa.select(t.c.logical_date, t.c.model_role, t.c.model_version, t.c.entity, t.c.ts, t.c.prediction,
                  t.c.model_run_id, t.c.dag_id, t.c.run_id)
    q = db.for_days(q, t, model_name, start, end)
    if role is not None:
        q = q.where(t.c.model_role == role)
    q = q.order_by(t.c.logical_date, t.c.model_role, t.c.entity, t.c.ts)
    with engine.connect() as conn:
        result = conn.execute(q)
        df = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    df["logical_date"] = pd.to_datetime(df["logical_date"])
    df["ts"] = pd.to_datetime(df["ts"])
    df["prediction"] = df["prediction"].astype("float64")
    return df


def _explanation_rows(cfg: ModelopsConfig, out: pd.DataFrame) -> list[dict[str, Any]]:
    """Table rows for the explained part of ``out`` (the ``shap_*`` columns ``score_and_explain`` added)."""
    from modelops.monitoring.explanation_store import explanation_rows

    if "shap_base" not in out.columns:
        return []
    k = sum(1 for c in out.columns if c.startswith("shap_") and c.endswith("_feature"))
    return explanation_rows(cfg.model_name, out[out["shap_base"].notna()], k)


# -- scoring ----------------------------------------------------------------------------------

def _as_float(values: Any) -> Any:
    import pandas as pd

    return pd.to_numeric(values, errors="coerce").astype("float64")


def _validate_scored_rows(cfg: ModelopsConfig, ctx: RunContext, rows: pd.DataFrame, start: date, end: date) -> None:
    """The day's rows through the drift suite (minus the target's rules); the result is kept in the run directory."""
    import json

    from modelops.data.validation import validate_frame
    from modelops.lifecycle import run_dir

    t0, t1 = datetime.combine(start, datetime.min.time()), datetime.combine(end, datetime.min.time())
    result = validate_frame(rows, cfg, t0, t1, scoring=True)
    storage.write_text(storage.join(run_dir(cfg, ctx), "validation_result.json"), json.dumps(result.raw, indent=1, default=str))
    result.raise_for_failures()


def predictions_path(cfg: ModelopsConfig, day: date) -> str:
    """The day's stable parquet partition (overwritten by a re-run, like the table rows)."""
    return storage.join(storage.work_root(), storage.safe_key(cfg.model_name), "predictions", f"date={day.isoformat()}",
                        "part-0.parquet")


def _score(cfg: ModelopsConfig, version: str, raw: pd.DataFrame, mask: Any, explain: bool = False) -> tuple[Any, Any, float, float]:
    """Predictions for the masked rows (and their top-k SHAP columns when ``explain``), plus (model load
    seconds, scoring seconds) for the log."""
    import time

    from modelops.lifecycle import load_pyfunc_impl, score_window
    from modelops.monitoring.explanations import score_and_explain

    t0 = time.perf_counter()
    # the version the alias points at now, by number: a promotion mid-run cannot mix two models
    impl = load_pyfunc_impl(f"models:/{cfg.model_name}/{version}")
    t1 = time.perf_counter()
    if explain:
        pp = cfg.explain.per_prediction
        pred, shap = score_and_explain(impl, raw, cfg, mask, pp.top_k, pp.max_rows)
    else:
        pred, shap = score_window(impl, raw, cfg, mask), None
    return pred, shap, t1 - t0, time.perf_counter() - t1


def batch_predict(cfg: ModelopsConfig, ctx: RunContext, start: date, end: date) -> dict[str, Any]:
    """Score rows with timestamps in [start, end) with production (and staging as shadow); store them.

    The rows to score pass the same validation suite as drift's (without the target's rules: their
    actuals usually land later) before any model is loaded; on failure nothing is scored or stored.
    The rows before ``start`` are read as context only: their actuals feed the lag features,
    exactly as at training time. The scored rows' own targets are blanked first, so a
    prediction never depends on an actual that would not be known when it is made.
    Returns ``{"skipped": reason}`` when there is no production version; raises ``NoDataError``
    (the operator applies ``monitoring.on_empty_day``) when the window has no rows.
    """
    import numpy as np

    from modelops.data.features import FeatureBuilder
    from modelops.data.shapes import row_keys, time_order

    if start >= end:
        raise ValueError(f"empty scoring window [{start}, {end}): schedule with an interval timetable")
    prod = registry.alias_version(cfg.model_name, registry.PRODUCTION)
    if prod is None:
        return {"skipped": f"{cfg.model_name} has no production version yet; nothing to score"}
    staging = registry.alias_version(cfg.model_name, registry.STAGING) if cfg.monitoring.shadow else None
    if staging == prod:
        staging = None
    history = FeatureBuilder.from_config(cfg).history_days
    raw = storage.read_window(cfg, start - timedelta(days=history), end)
    ts, target = cfg.data.timestamp_column, cfg.data.target_column
    mask = np.zeros(len(raw), dtype=bool)
    if len(raw) and ts in raw.columns:
        raw = raw.sort_values(time_order(cfg), kind="stable").reset_index(drop=True)
        day = raw[ts].dt.normalize()
        mask = ((day >= np.datetime64(start)) & (day < np.datetime64(end))).to_numpy()
    _validate_scored_rows(cfg, ctx, raw.loc[mask] if ts in raw.columns else raw, start, end)
    if target in raw.columns:
        raw[target] = _as_float(raw[target])
        raw.loc[mask, target] = np.nan
    keys = row_keys(raw.loc[mask], cfg)

    import pandas as pd

    frames = []
    versions = {PRODUCTION_ROLE: prod, **({SHADOW_ROLE: staging} if staging else {})}
    timing: dict[str, tuple[float, float]] = {}
    pp = cfg.explain.per_prediction  # opt-in: each row's top-k SHAP contributions next to its prediction
    for role, version in versions.items():
        pred, shap, load_s, score_s = _score(cfg, version, raw, mask, pp.enabled and role in pp.roles)
        timing[role] = (load_s, score_s)
        mv = registry.get_version(cfg.model_name, version)
        part = pd.DataFrame({
            "entity": keys, "ts": raw.loc[mask, ts].to_numpy(),
            "prediction": np.asarray(pred, dtype="float64"), "model_role": role, "model_version": str(version),
            "model_run_id": mv.run_id, "dag_id": ctx.dag_id, "run_id": ctx.run_id,
        })
        frames.append(part if shap is None else pd.concat([part, shap.set_axis(part.index)], axis=1))
    out = pd.concat(frames, ignore_index=True)
    engine = db.get_engine()
    db.migrate(engine)
    n = save_predictions(engine, cfg.model_name, out, start, end, _explanation_rows(cfg, out))
    paths = []
    for d in storage.days(start, end):
        part = out[out["ts"].dt.date == d]
        if len(part):
            paths.append(storage.write_frame(part, predictions_path(cfg, d)))
    rows = int(mask.sum())
    log.info("scored %d rows of %s in [%s, %s): production v%s%s; %d rows stored (%s)", rows, cfg.model_name, start, end, prod,
             f", shadow staging v{staging}" if staging else " (no staging version: no shadow)", n,
             "; ".join(f"{r}: load {ld:.2f} s, score {sc:.3f} s ({len(raw):,} rows with context, {rows / sc:,.0f} scored rows/s)"
                       for r, (ld, sc) in timing.items() if sc > 0))
    return {"rows": rows, "stored": n, "production_version": prod, "shadow_version": staging, "paths": paths,
            "start": start.isoformat(), "end": end.isoformat(),
            "mean_prediction": float(out.loc[out["model_role"] == PRODUCTION_ROLE, "prediction"].mean())}
