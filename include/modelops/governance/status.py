"""One view of every model version: aliases, lifecycle, metric, approval, lineage, last drift."""

from __future__ import annotations

from typing import Any

from modelops.governance import registry
from modelops.config import ModelopsConfig


def collect(cfg: ModelopsConfig) -> dict[str, Any]:
    aliases = registry.aliases_by_version(cfg.model_name)
    metric = cfg.evaluation.metric
    rows = []
    for mv in registry.versions(cfg.model_name):
        t = mv.tags
        rows.append({
            "version": str(mv.version),
            "aliases": sorted(aliases.get(str(mv.version), [])),
            "lifecycle": t.get(registry.LIFECYCLE, ""),
            "metric": metric,
            "value": _float(t.get(f"metric.{metric}")),
            "gate": t.get("gate.passed", ""),
            "gate_reasons": t.get("rejected.reason", "") if t.get("gate.passed") == "false" else "",
            "approval": {k.split(".", 1)[1]: v for k, v in t.items() if k.startswith("approval.")},
            "promoted": {k.split(".", 1)[1]: v for k, v in t.items() if k.startswith("promoted.")},
            "archived": {k.split(".", 1)[1]: v for k, v in t.items() if k.startswith("archived.")},
            "rejected": {k.split(".", 1)[1]: v for k, v in t.items() if k.startswith("rejected.")},
            "lineage": {
                "dag_id": t.get("airflow.dag_id", ""), "run_id": t.get("airflow.run_id", ""),
                "logical_date": t.get("airflow.logical_date", ""), "try_number": t.get("airflow.try_number", ""),
                "training_window": t.get("modelops.training_window", ""), "test_window": t.get("modelops.test_window", ""),
                "data_fingerprint": t.get("modelops.data_fingerprint", ""), "rows": t.get("modelops.rows", ""),
                "config_hash": t.get("modelops.config_hash", ""), "package_version": t.get("modelops.package_version", ""),
                "mlflow_run_id": mv.run_id,
            },
            "created": mv.creation_timestamp,
        })
    drift = None
    try:
        from modelops.monitoring import drift_store

        engine = drift_store.get_engine()
        drift_store.create_schema(engine)
        drift = drift_store.latest_summary(engine, cfg.model_name)
    except Exception as exc:  # noqa: BLE001 - status must print even if the drift table is unreachable
        drift = {"error": str(exc)}
    return {"model_name": cfg.model_name, "metric": metric, "threshold": cfg.evaluation.threshold,
            "production": registry.alias_version(cfg.model_name, registry.PRODUCTION),
            "staging": registry.alias_version(cfg.model_name, registry.STAGING), "versions": rows, "last_drift": drift,
            "monitoring": _monitoring(cfg)}


def _monitoring(cfg: ModelopsConfig) -> dict[str, Any]:
    """Live metric of production (and the shadow) vs baseline over the last 7 days, and open alerts."""
    try:
        from modelops import db
        from modelops.monitoring import alerts
        from modelops.monitoring import performance

        engine = db.get_engine()
        db.migrate(engine)
        return {**performance.summary(engine, cfg, days=7), "rolling_window_days": cfg.monitoring.rolling_window_days,
                "open_alerts": alerts.open_alerts(engine, cfg.model_name)}
    except Exception as exc:  # noqa: BLE001 - status must print even if the tables are unreachable
        return {"error": str(exc)}


def _float(v: str | None) -> float | None:
    try:
        return None if v in (None, "") else float(v)
    except ValueError:
        return None


def render_table(data: dict[str, Any]) -> str:
    head = ["version", "aliases", "lifecycle", data["metric"], "gate", "approval", "training window", "airflow run"]
    rows = []
    for r in data["versions"]:
        ap = r["approval"]
        decision = ap.get("decision", "")
        approval = f"{decision} by {ap.get('by') or '-'} {ap.get('at', '')[:16]}".strip() if decision else ("waiting" if ap.get("requested_at") else "")
        if ap.get("comment"):
            approval += f' "{ap["comment"][:30]}"'
        value = "" if r["value"] is None else f"{r['value']:.4f}"
        rows.append([r["version"], ",".join(r["aliases"]), r["lifecycle"], value, r["gate"], approval,
                     r["lineage"]["training_window"], r["lineage"]["run_id"][:40]])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)] if rows else [len(h) for h in head]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [f"{data['model_name']}: production=v{data['production'] or '-'} staging=v{data['staging'] or '-'} "
             f"({data['metric']} threshold {data['threshold']})", fmt.format(*head), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*map(str, r)) for r in rows]
    if not rows:
        lines.append("(no versions registered yet)")
    for r in data["versions"]:
        if r["lifecycle"] == "rejected" and r["rejected"].get("reason"):
            lines.append(f"  v{r['version']} rejected: {r['rejected']['reason']}")
        if r["archived"].get("replaced_by"):
            lines.append(f"  v{r['version']} archived {r['archived'].get('at', '')} (replaced by v{r['archived']['replaced_by']})")
    d = data.get("last_drift")
    if d and "error" not in d:
        lines.append(f"last drift check {d.get('logical_date')}: ratio {d.get('drift_ratio', 0):.2f} "
                     f"{'DRIFT' if d.get('dataset_drift') else 'no drift'} {d.get('drifted_features') or ''}")
    lines += _render_monitoring(data.get("monitoring") or {}, data["metric"])
    return "\n".join(lines)


def _render_monitoring(m: dict[str, Any], metric: str) -> list[str]:
    if "error" in m:
        return [f"monitoring: unavailable ({m['error']})"]
    out = []
    roles = m.get("roles") or {}
    if roles:
        out.append(f"live {metric} (rolling {m.get('rolling_window_days')} d up to {m.get('last_day')}):")
        for role in ("production", "shadow"):
            r = roles.get(role)
            if not r:
                continue
            base = "" if r["baseline"] is None else f" vs baseline {r['baseline']:.4f} (limit {r['limit']:.4f})"
            val = "n/a" if r["rolling_value"] is None else f"{r['rolling_value']:.4f}"
            state = " DEGRADED" if r["degraded"] else ""
            daily = " ".join("-" if v is None else f"{v:.3f}" for _, v in r["daily"])
            out.append(f"  {role:<10} v{r['model_version']}: {val} on {r['rolling_n_rows']} rows{base}{state}; last 7 days: {daily}")
    else:
        out.append("live performance: no predictions with actuals yet")
    alerts = m.get("open_alerts") or []
    out.append(f"open alerts: {len(alerts)}")
    for a in alerts:
        out.append(f"  [{a['severity']}] {str(a['created_at'])[:16]} {a['title']}")
    return out
