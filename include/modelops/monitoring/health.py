"""Model health as numbers for the deployment's metrics pipeline (StatsD / OpenTelemetry via Airflow).

Plain Python: the names, what each value means, and the facts read from the registry and the alert
ledger. ``plugins/modelops_airflow/health_metrics.py`` sends them through Airflow's own metrics
configuration. Every gauge and counter carries the model's name as tag ``model_name`` (or, where
tags cannot travel, inside the name: see :func:`stat_name`), so a fleet of models shares one set of
metric names and one dashboard.
"""

from __future__ import annotations

import math
import time
from typing import Any

PREFIX = "modelops"

# name -> (kind, what it is); Airflow's own [metrics] statsd_prefix goes in front (default "airflow").
METRICS: dict[str, tuple[str, str]] = {
    "live_metric": ("gauge", "production's rolling live value of the gate metric (tag metric)"),
    "live_metric_limit": ("gauge", "the degradation limit for it (baseline moved by monitoring.tolerance)"),
    "live_metric_baseline": ("gauge", "production's test-set value of the gate metric"),
    "live_metric_degraded": ("gauge", "1 when the rolling value is past the limit, else 0"),
    "shadow_live_metric": ("gauge", "the staging shadow's rolling live value, while one waits for approval"),
    "drift_ratio": ("gauge", "share of tested features that drifted on the day"),
    "drift_ratio_threshold": ("gauge", "drift.drift_ratio_threshold"),
    "drifted_features": ("gauge", "number of features that drifted on the day"),
    "dataset_drift": ("gauge", "1 when the day's drift ratio reached the threshold, else 0"),
    "attribution_rank_correlation": ("gauge", "Spearman correlation of mean |SHAP| ranks, the day vs the test window"),
    "attribution_drift": ("gauge", "1 when the rank correlation is below explain.attribution_drift.min_rank_correlation"),
    "open_alerts": ("gauge", "alerts of the model still open in modelops_alerts"),
    "production_age_seconds": ("gauge", "seconds since the production version was registered"),
    "gate_rejections": ("counter", "candidates the gate rejected (a re-run of the same run is not counted again)"),
    "gate_passes": ("counter", "candidates the gate passed to staging"),
    "approvals": ("counter", "staged versions a human approved"),
    "approval_rejections": ("counter", "staged versions rejected by a human or by the approval timeout"),
}


def stat_name(name: str, model_name: str, tags_travel: bool) -> str:
    """``modelops.<name>`` with tag ``model_name`` when the backend carries tags; else
    ``modelops.model.<model>.<name>`` (dots in the model name as ``__``, Airflow's convention),
    which the shipped statsd-exporter mapping turns back into a ``model_name`` label."""
    if name not in METRICS:
        raise KeyError(f"unknown model health metric {name!r}; known: {sorted(METRICS)}")
    if tags_travel:
        return f"{PREFIX}.{name}"
    return f"{PREFIX}.model.{model_name.replace('.', '__')}.{name}"


def finite(values: dict[str, Any]) -> dict[str, float]:
    """Only the values that are numbers (None, NaN and infinities are not sent)."""
    out = {}
    for k, v in values.items():
        if v is None or isinstance(v, str):
            continue
        f = float(v)
        if math.isfinite(f):
            out[k] = f
    return out


# -- facts ---------------------------------------------------------------------------------------

def production_age_seconds(model_name: str, now: float | None = None) -> float | None:
    """Seconds since the version ``production`` points at was registered; None without one."""
    from modelops.governance import registry

    version = registry.alias_version(model_name, registry.PRODUCTION)
    if version is None:
        return None
    created_ms = registry.get_version(model_name, version).creation_timestamp
    return max(0.0, (now if now is not None else time.time()) - created_ms / 1000.0)


def open_alert_count(model_name: str) -> int:
    from modelops import db
    from modelops.monitoring import alerts

    engine = db.get_engine()
    db.migrate(engine)
    return len(alerts.open_alerts(engine, model_name))


def state(model_name: str) -> dict[str, float | None]:
    """The gauges every health report carries: open alerts and the production version's age."""
    return {"open_alerts": open_alert_count(model_name), "production_age_seconds": production_age_seconds(model_name)}


def from_drift(result: dict[str, Any], threshold: float) -> dict[str, Any]:
    att = result.get("attribution") or {}
    out = {"drift_ratio": result.get("drift_ratio"), "drift_ratio_threshold": threshold,
           "drifted_features": len(result.get("drifted_features") or []), "dataset_drift": int(bool(result.get("dataset_drift")))}
    if att.get("available"):
        out.update(attribution_rank_correlation=att.get("rank_correlation"), attribution_drift=int(bool(att.get("attribution_drift"))))
    return out


def from_performance(result: dict[str, Any]) -> dict[str, Any]:
    if not result.get("judged") and result.get("value") is None:
        return {}
    out = {"live_metric": result.get("value"), "live_metric_limit": result.get("limit"),
           "live_metric_baseline": result.get("baseline"), "live_metric_degraded": int(bool(result.get("degraded")))}
    shadow = result.get("shadow") or {}
    if shadow.get("rolling_value") is not None:
        out["shadow_live_metric"] = shadow["rolling_value"]
    return out
