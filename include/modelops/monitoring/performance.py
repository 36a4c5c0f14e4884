"""Live performance once ground truth lands: per-day and rolling metrics vs the test-set baseline.

Actuals arrive in the same data source as the features, later (the target column filled
in). Each run joins whatever actuals exist for the last ``ground_truth_lookback_days`` to the
logged predictions, recomputes the task's metrics per day and over the rolling window, and
stores one row per (model, day, role) in ``modelops_performance`` (replaced on re-run).

The rolling metric of the latest labelled day decides: it is compared with the metric the
production version scored on its test set (``metric.<name>`` on the model version), and a
gap beyond ``monitoring.tolerance`` is a degradation that asks for a retrain.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modelops import db
from modelops.governance import registry
from modelops.data import storage
from modelops.config import ModelopsConfig
from modelops.monitoring.predictions import PRODUCTION_ROLE, load_predictions
from modelops.data.storage import as_day

if TYPE_CHECKING:
    import pandas as pd

    from modelops.tracking import RunContext

log = logging.getLogger(__name__)

TABLE = "modelops_performance"
REASON = "performance_degradation"

performance = sa.Table(
    TABLE,
    db.metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(255), nullable=False),
    sa.Column("logical_date", sa.Date(), nullable=False),
    sa.Column("model_role", sa.String(16), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=True),
    sa.Column("metric", sa.String(32), nullable=False),
    sa.Column("value", sa.Double(), nullable=True),  # the day's labelled rows
    sa.Column("n_rows", sa.BigInteger(), nullable=False),
    sa.Column("rolling_value", sa.Double(), nullable=True),  # pooled over the rolling window ending that day
    sa.Column("rolling_n_rows", sa.BigInteger(), nullable=False),
    sa.Column("baseline", sa.Double(), nullable=True),  # the version's test-set metric
    sa.Column("limit_value", sa.Double(), nullable=True),  # worse than this = degraded
    sa.Column("degraded", sa.Boolean(), nullable=False),
    sa.Column("metrics_json", sa.Text(), nullable=False),  # every metric of the task for the day
    sa.Column("dag_id", sa.String(250), nullable=True),
    sa.Column("run_id", sa.String(250), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("model_name", "logical_date", "model_role", name="uq_modelops_performance_model_date_role"),
    sa.Index("ix_modelops_performance_model_date", "model_name", "logical_date"),
)


# -- the rule ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    """The degradation decision with the numbers that led to it (goes to XCom, alerts, events)."""

    metric: str
    value: float | None
    baseline: float | None
    limit: float | None
    degraded: bool
    judged: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def degradation_limit(baseline: float, tolerance: float, mode: str, greater_is_better: bool) -> float:
    """The worst acceptable live value: baseline moved against the metric by the tolerance."""
    if mode == "relative":
        step = abs(baseline) * tolerance
    elif mode == "absolute":
        step = tolerance
    else:
        raise ValueError(f"tolerance_mode must be 'relative' or 'absolute', got {mode!r}")
    return baseline - step if greater_is_better else baseline + step


def judge(metric: str, value: float | None, n_rows: int, baseline: float | None, cfg: ModelopsConfig) -> Verdict:
    """Degraded when ``value`` is strictly worse than the limit, on at least ``min_rows`` labelled rows."""
    mon = cfg.monitoring
    if baseline is None or (isinstance(baseline, float) and math.isnan(baseline)):
        return Verdict(metric, value, None, None, False, False, "no test-set baseline on the production version")
    limit = degradation_limit(baseline, mon.tolerance, mon.tolerance_mode, cfg.greater_is_better)
    if value is None or math.isnan(value):
        return Verdict(metric, value, baseline, limit, False, False, "no labelled rows to compute the metric on")
    if n_rows < mon.min_rows:
        return Verdict(metric, value, baseline, limit, False, False,
                       f"only {n_rows} labelled rows in the window (monitoring.min_rows={mon.min_rows}); not judged")
    worse = value < limit if cfg.greater_is_better else value > limit
    word = "below" if cfg.greater_is_better else "above"
    tol = f"{mon.tolerance:.0%}" if mon.tolerance_mode == "relative" else f"{mon.tolerance:g}"
    if worse:
        return Verdict(metric, value, baseline, limit, True, True,
                       f"rolling {metric} {value:.4f} is {word} the limit {limit:.4f} (baseline {baseline:.4f}, "
                       f"{mon.tolerance_mode} tolerance {tol}) over {n_rows} rows")
    return Verdict(metric, value, baseline, limit, False, True,
                   f"rolling {metric} {value:.4f} within the limit {limit:.4f} (baseline {baseline:.4f}) over {n_rows} rows")


# -- joining actuals and computing metrics ------------------------------------------------------

def join_actuals(cfg: ModelopsConfig, preds: pd.DataFrame, source: pd.DataFrame) -> pd.DataFrame:
    """Predictions with the actual of the same row (row key and timestamp, see ``data.shapes``); rows
    without an actual yet are dropped."""
    import pandas as pd

    from modelops.data.shapes import row_keys, time_order

    ts, target = cfg.data.timestamp_column, cfg.data.target_column
    if preds.empty or source.empty or target not in source.columns:
        return preds.iloc[0:0].assign(actual=pd.Series(dtype="float64"))
    source = source.sort_values(time_order(cfg), kind="stable")  # the order batch scoring keyed the rows in
    act = pd.DataFrame({"entity": row_keys(source, cfg), "ts": pd.to_datetime(source[ts]).to_numpy(),
                        "actual": pd.to_numeric(source[target], errors="coerce").to_numpy(dtype="float64")})
    act = act.dropna(subset=["actual"]).drop_duplicates(["entity", "ts"], keep="last")
    return preds.merge(act, on=["entity", "ts"], how="inner", validate="many_to_one")


def _metrics(cfg: ModelopsConfig, y: Any, yhat: Any) -> dict[str, float]:
    from modelops import metrics as M

    if len(y) == 0:
        return {}
    return M.compute(cfg.task, y, yhat, cfg.evaluation.decision_threshold)


def daily_performance(cfg: ModelopsConfig, joined: pd.DataFrame, days: list[date] | None = None) -> pd.DataFrame:
    """One row per (day, role): the day's metrics and the metric pooled over the rolling window ending that day.

    Pooling the window's rows (not averaging daily values) weighs each labelled row once, the
    same way the test-set baseline was computed.
    """
    import numpy as np
    import pandas as pd

    metric = cfg.evaluation.metric
    window = cfg.monitoring.rolling_window_days
    cols = ["logical_date", "model_role", "model_version", "value", "n_rows", "rolling_value", "rolling_n_rows", "metrics"]
    if joined.empty:
        return pd.DataFrame(columns=cols)
    j = joined.assign(day=pd.to_datetime(joined["logical_date"]).dt.date)
    want = sorted(set(days) if days is not None else set(j["day"]))
    out = []
    for role, grp in j.groupby("model_role", sort=True):
        for d in want:
            today = grp[grp["day"] == d]
            if today.empty:
                continue
            win = grp[(grp["day"] > d - timedelta(days=window)) & (grp["day"] <= d)]
            m = _metrics(cfg, today["actual"].to_numpy(), today["prediction"].to_numpy())
            rm = _metrics(cfg, win["actual"].to_numpy(), win["prediction"].to_numpy())
            out.append({"logical_date": d, "model_role": role, "model_version": str(today["model_version"].iloc[-1]),
                        "value": m.get(metric, np.nan), "n_rows": len(today), "rolling_value": rm.get(metric, np.nan),
                        "rolling_n_rows": len(win), "metrics": m})
    return pd.DataFrame(out, columns=cols)


def version_baseline(model_name: str, version: str | None, metric: str) -> float | None:
    """The test-set metric recorded on the model version at registration (``metric.<name>`` tag)."""
    if not version:
        return None
    raw = registry.get_version(model_name, version).tags.get(f"metric.{metric}")
    try:
        return None if raw in (None, "") else float(raw)
    except ValueError:
        return None


# -- storing -------------------------------------------------------------------------------------

def _num(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


def save_performance(engine: Engine, cfg: ModelopsConfig, perf: pd.DataFrame, baselines: dict[str, float | None],
                     dag_id: str | None = None, run_id: str | None = None) -> int:
    """Replace the (model, day, role) rows in ``perf`` in one transaction; returns rows written."""
    now = datetime.now(timezone.utc)
    metric = cfg.evaluation.metric
    rows = []
    for r in perf.itertuples(index=False):
        base = baselines.get(r.model_version)
        v = judge(metric, _num(r.rolling_value), int(r.rolling_n_rows), base, cfg)
        rows.append({"model_name": cfg.model_name, "logical_date": r.logical_date, "model_role": r.model_role,
                     "model_version": r.model_version, "metric": metric, "value": _num(r.value), "n_rows": int(r.n_rows),
                     "rolling_value": _num(r.rolling_value), "rolling_n_rows": int(r.rolling_n_rows), "baseline": base,
                     "limit_value": v.limit, "degraded": v.degraded,
                     "metrics_json": json.dumps({k: _num(x) for k, x in r.metrics.items()}, sort_keys=True),
                     "dag_id": dag_id, "run_id": run_id, "created_at": now})
    t = performance
    with engine.begin() as conn:
        for r in rows:
            conn.execute(t.delete().where(t.c.model_name == cfg.model_name, t.c.logical_date == r["logical_date"],
                                          t.c.model_role == r["model_role"]))
        if rows:
            conn.execute(t.insert(), rows)
    return len(rows)


def load_performance(engine: Engine, model_name: str, start: date | str | None = None, end: date | str | None = None) -> pd.DataFrame:
    """Stored rows with start <= logical_date < end (end exclusive), ordered by day and role."""
    import pandas as pd

    t = performance
    q = db.for_days(sa.select(t), t, model_name, start, end)
    with engine.connect() as conn:
        result = conn.execute(q.order_by(t.c.logical_date, t.c.model_role))
        df = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    df["logical_date"] = pd.to_datetime(df["logical_date"])
    for c in ("value", "rolling_value", "baseline", "limit_value"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    df["degraded"] = df["degraded"].astype(bool)
    return df


# -- the task -------------------------------------------------------------------------------------

def evaluate_performance(cfg: ModelopsConfig, ctx: RunContext, end: date) -> dict[str, Any]:
    """Join actuals of [end - lookback, end) to logged predictions, store metrics, judge the latest day.

    The verdict is about production on the latest day that has labelled rows; the shadow
    challenger's rows are stored and reported beside it but never trigger anything.
    """
    start = end - timedelta(days=cfg.monitoring.ground_truth_lookback_days)
    # the rolling window of the first evaluated day reaches further back than the lookback
    ctx_start = start - timedelta(days=cfg.monitoring.rolling_window_days - 1)
    engine = db.get_engine()
    db.migrate(engine)
    preds = load_predictions(engine, cfg.model_name, ctx_start, end)
    source = storage.read_window(cfg, ctx_start, end) if not preds.empty else preds.iloc[0:0]
    joined = join_actuals(cfg, preds, source)
    eval_days = sorted({d for d in joined["logical_date"].dt.date if d >= start}) if not joined.empty else []
    perf = daily_performance(cfg, joined, eval_days)
    metric = cfg.evaluation.metric
    baselines = {v: version_baseline(cfg.model_name, v, metric) for v in set(perf["model_version"])} if len(perf) else {}
    n = save_performance(engine, cfg, perf, baselines, ctx.dag_id, ctx.run_id) if len(perf) else 0
    prod = perf[perf["model_role"] == PRODUCTION_ROLE] if len(perf) else perf
    out: dict[str, Any] = {"model_name": cfg.model_name, "metric": metric, "window": [start.isoformat(), end.isoformat()],
                           "predictions": int(len(preds)), "labelled": int(len(joined)), "days_evaluated": len(eval_days),
                           "rows_stored": n}
    if prod.empty:
        verdict = Verdict(metric, None, None, None, False, False,
                          f"no production predictions with actuals in [{start}, {end}) yet")
        out.update(verdict.to_dict(), day=None, model_version=None, shadow=None)
        log.info("%s: %s", cfg.model_name, verdict.reason)
        return out
    last = prod.iloc[-1]
    version = str(last["model_version"])
    verdict = judge(metric, _num(last["rolling_value"]), int(last["rolling_n_rows"]), baselines.get(version), cfg)
    shadow = perf[(perf["model_role"] != PRODUCTION_ROLE) & (perf["logical_date"] == last["logical_date"])]
    out.update(verdict.to_dict(), day=last["logical_date"].isoformat(), model_version=version,
               mlflow_run_id=registry.get_version(cfg.model_name, version).run_id,
               daily_value=_num(last["value"]), rolling_n_rows=int(last["rolling_n_rows"]),
               rolling_window_days=cfg.monitoring.rolling_window_days,
               shadow=None if shadow.empty else {"model_version": str(shadow.iloc[-1]["model_version"]),
                                                 "rolling_value": _num(shadow.iloc[-1]["rolling_value"]),
                                                 "rolling_n_rows": int(shadow.iloc[-1]["rolling_n_rows"])})
    log.log(logging.WARNING if verdict.degraded else logging.INFO, "%s v%s on %s: %s%s", cfg.model_name, version, out["day"],
            "DEGRADED: " if verdict.degraded else "", verdict.reason)
    return out


# -- summaries for status ---------------------------------------------------------------------------

def summary(engine: Engine, cfg: ModelopsConfig, days: int = 7) -> dict[str, Any]:
    """Last ``days`` labelled days per role: metric pooled as the mean of daily values weighted by rows, and the baseline."""
    t = performance
    with engine.connect() as conn:
        last = conn.execute(sa.select(sa.func.max(t.c.logical_date)).where(t.c.model_name == cfg.model_name)).scalar()
    if last is None:
        return {"last_day": None, "roles": {}}
    last_d = as_day(last)
    perf = load_performance(engine, cfg.model_name, last_d - timedelta(days=days - 1), last_d + timedelta(days=1))
    roles: dict[str, Any] = {}
    for role, grp in perf.groupby("model_role"):
        latest = grp.iloc[-1]
        roles[str(role)] = {
            "model_version": latest["model_version"], "rolling_value": _num(latest["rolling_value"]),
            "rolling_n_rows": int(latest["rolling_n_rows"]), "baseline": _num(latest["baseline"]),
            "limit": _num(latest["limit_value"]), "degraded": bool(latest["degraded"]), "days": int(len(grp)),
            "daily": [(d.date().isoformat(), _num(v)) for d, v in zip(grp["logical_date"], grp["value"])],
        }
    return {"last_day": last_d.isoformat(), "metric": cfg.evaluation.metric, "days": days, "roles": roles}
