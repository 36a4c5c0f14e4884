"""The package's tables of explanations: per-prediction top contributions and daily attribution drift.

Both are new tables (no column added to an existing one, so no migration): ``create_all`` makes
them on the next ``db.migrate``. Like every store of the package a day is replaced in one
transaction, so a re-run or a backfill never duplicates rows and a failure leaves the old ones.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from modelops import db

if TYPE_CHECKING:
    import pandas as pd

PREDICTIONS_TABLE = "modelops_prediction_explanations"
ATTRIBUTION_TABLE = "modelops_attribution_drift"

# One row per scored row (same keys as modelops_predictions): the k largest contributions.
prediction_explanations = sa.Table(
    PREDICTIONS_TABLE,
    db.metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(255), nullable=False),
    sa.Column("logical_date", sa.Date(), nullable=False),
    sa.Column("model_role", sa.String(16), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("entity", sa.String(255), nullable=False),
    sa.Column("ts", sa.DateTime(), nullable=False),
    sa.Column("space", sa.String(64), nullable=False),  # where base + contributions add up (README)
    sa.Column("base_value", sa.Double(), nullable=False),
    sa.Column("other_value", sa.Double(), nullable=False),  # the contributions outside the top k, summed
    sa.Column("contributions", sa.Text(), nullable=False),  # JSON [[feature, value], ...], largest |value| first
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_modelops_prediction_explanations_model_date_role", "model_name", "logical_date", "model_role"),
)

# One row per (model, day, feature): mean |SHAP| on the day vs the version's test window.
attribution_drift = sa.Table(
    ATTRIBUTION_TABLE,
    db.metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(255), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=True),
    sa.Column("logical_date", sa.Date(), nullable=False),
    sa.Column("feature", sa.String(255), nullable=False),
    sa.Column("reference_mean_abs", sa.Double(), nullable=False),
    sa.Column("current_mean_abs", sa.Double(), nullable=False),
    sa.Column("reference_rank", sa.Integer(), nullable=False),
    sa.Column("current_rank", sa.Integer(), nullable=False),
    sa.Column("rank_change", sa.Integer(), nullable=False),  # positive: more important on the day
    sa.Column("rank_correlation", sa.Double(), nullable=True),  # the day's Spearman rho (same on every row)
    sa.Column("top_overlap", sa.Double(), nullable=True),
    sa.Column("attribution_drift", sa.Boolean(), nullable=False),
    sa.Column("n_rows", sa.BigInteger(), nullable=False),
    sa.Column("dag_id", sa.String(250), nullable=True),
    sa.Column("run_id", sa.String(250), nullable=True),
    sa.Column("mlflow_run_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("model_name", "logical_date", "feature", name="uq_modelops_attribution_drift_model_date_feature"),
    sa.Index("ix_modelops_attribution_drift_model_date", "model_name", "logical_date"),
)


def _finite(v: Any, what: str) -> float:
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(f"{what} is {f}; refusing to store it")
    return f


# -- per-prediction explanations -----------------------------------------------------------------

def explanation_rows(model_name: str, frame: pd.DataFrame, k: int) -> list[dict[str, Any]]:
    """Rows for the table from the wide frame ``predictions.batch_predict`` writes to parquet (checked first)."""
    import pandas as pd

    now = datetime.now(timezone.utc)
    ts = pd.to_datetime(frame["ts"])
    names = [frame[f"shap_{i}_feature"].to_numpy() for i in range(1, k + 1)]
    values = [frame[f"shap_{i}_value"].to_numpy(dtype="float64") for i in range(1, k + 1)]
    rows = []
    for j, (role, version, entity, t, space, base, other) in enumerate(zip(
            frame["model_role"], frame["model_version"], frame["entity"], ts, frame["shap_space"], frame["shap_base"],
            frame["shap_other"])):
        top = [[str(names[i][j]), _finite(values[i][j], f"contribution of {names[i][j]} for {entity} at {t}")]
               for i in range(k)]
        rows.append({"model_name": model_name, "logical_date": t.date(), "model_role": role, "model_version": str(version),
                     "entity": str(entity), "ts": t.to_pydatetime(), "space": str(space),
                     "base_value": _finite(base, "base value"), "other_value": _finite(other, "rest of the contributions"),
                     "contributions": json.dumps(top), "created_at": now})
    return rows


def replace_explanations(conn: Connection, model_name: str, start: date, end: date, rows: list[dict[str, Any]]) -> None:
    """Inside the caller's transaction (the one that replaces the predictions): the days' rows, then ``rows``."""
    t = prediction_explanations
    conn.execute(t.delete().where(t.c.model_name == model_name, t.c.logical_date >= start, t.c.logical_date < end))
    if rows:
        conn.execute(t.insert(), rows)


def load_explanations(engine: Engine, model_name: str, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Rows with start <= logical_date < end; ``contributions`` parsed back into lists."""
    import pandas as pd

    t = prediction_explanations
    q = db.for_days(sa.select(t), t, model_name, start, end).order_by(t.c.logical_date, t.c.model_role, t.c.entity, t.c.ts)
    with engine.connect() as conn:
        result = conn.execute(q)
        df = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    df["logical_date"] = pd.to_datetime(df["logical_date"])
    df["ts"] = pd.to_datetime(df["ts"])
    for c in ("base_value", "other_value"):
        df[c] = df[c].astype("float64")
    df["contributions"] = [json.loads(c) for c in df["contributions"]]
    return df


# -- attribution drift -------------------------------------------------------------------------------

def save_attribution(engine: Engine, model_name: str, day: date, summary: dict[str, Any], model_version: str | None,
                     dag_id: str | None = None, run_id: str | None = None, mlflow_run_id: str | None = None) -> int:
    """Replace the day's rows of the model by ``summary`` (from ``explanations.attribution_drift``)."""
    now = datetime.now(timezone.utc)
    rho = summary.get("rank_correlation")
    rows = [{"model_name": model_name, "model_version": model_version, "logical_date": day, "feature": str(f["feature"])[:255],
             "reference_mean_abs": _finite(f["reference"], f"reference mean |SHAP| of {f['feature']}"),
             "current_mean_abs": _finite(f["current"], f"mean |SHAP| of {f['feature']}"),
             "reference_rank": int(f["reference_rank"]), "current_rank": int(f["current_rank"]), "rank_change": int(f["rank_change"]),
             "rank_correlation": None if rho is None else float(rho), "top_overlap": summary.get("top_overlap"),
             "attribution_drift": bool(summary["attribution_drift"]), "n_rows": int(summary["rows"]), "dag_id": dag_id,
             "run_id": run_id, "mlflow_run_id": mlflow_run_id, "created_at": now} for f in summary["features"]]
    t = attribution_drift
    with engine.begin() as conn:
        conn.execute(t.delete().where(t.c.model_name == model_name, t.c.logical_date == day))
        if rows:
            conn.execute(t.insert(), rows)
    return len(rows)


def load_attribution(engine: Engine, model_name: str, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Rows with start <= logical_date < end, by day and current rank."""
    import pandas as pd

    t = attribution_drift
    q = db.for_days(sa.select(t), t, model_name, start, end).order_by(t.c.logical_date, t.c.current_rank, t.c.feature)
    with engine.connect() as conn:
        result = conn.execute(q)
        df = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    df["logical_date"] = pd.to_datetime(df["logical_date"])
    for c in ("reference_mean_abs", "current_mean_abs", "rank_correlation", "top_overlap"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    df["attribution_drift"] = df["attribution_drift"].astype(bool)
    return df
