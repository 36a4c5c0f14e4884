"""Model health on the deployment's dashboards, through Airflow's own metrics configuration.

Whatever the deployment set in ``[metrics]`` (StatsD, StatsD with InfluxDB-style tags, DogStatsD,
or OpenTelemetry), the task SDK's ``airflow.sdk.observability.stats`` sends it there: the package
runs no server of its own. Names and meanings are in ``modelops.monitoring.health``; every value
carries the tag ``model_name``. Plain StatsD cannot carry tags, so there the model goes into the
name instead (``modelops.model.<model>.<name>``) and the shipped statsd-exporter mapping makes it
a label again: a fleet of models never overwrites one another's gauges.

Sending never fails a task: a metrics endpoint that is down (or a bug here) is logged once per
process as a warning, and the run goes on.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

_warned = False  # one warning per process when metrics cannot be sent


def tags_travel() -> bool:
    """Whether the configured backend carries tags (the order is Airflow's own backend choice)."""
    from airflow.sdk.configuration import conf

    if conf.getboolean("metrics", "statsd_datadog_enabled", fallback=False):
        return True
    if conf.getboolean("metrics", "statsd_on", fallback=False):
        return conf.getboolean("metrics", "statsd_influxdb_enabled", fallback=False)
    return True  # OpenTelemetry (attributes), or no backend at all


def emit(model_name: str, gauges: dict[str, Any] | None = None, counters: dict[str, int] | None = None,
         tags: dict[str, str] | None = None) -> int:
    """Send gauges (numbers only; None/NaN skipped) and counter increments; returns how many. Never raises."""
    global _warned
    try:
        from airflow.sdk.observability import stats

        from modelops.monitoring import health

        travel = tags_travel()
        all_tags = {"model_name": model_name, **(tags or {})}
        n = 0
        for name, value in health.finite(gauges or {}).items():
            stats.gauge(health.stat_name(name, model_name, travel), value, tags=all_tags)
            n += 1
        for name, count in (counters or {}).items():
            if count:
                stats.incr(health.stat_name(name, model_name, travel), int(count), tags=all_tags)
                n += 1
        return n
    except Exception as exc:  # noqa: BLE001 - metrics are never worth a failed run
        if not _warned:
            _warned = True
            log.warning("model health metrics of %s not sent: %s: %s (the run goes on; further failures in this process "
                        "are not logged)", model_name, type(exc).__name__, exc)
        else:
            log.debug("model health metrics of %s not sent: %s", model_name, exc)
        return 0


def _state(model_name: str) -> dict[str, Any]:
    """Open alerts and production age; a failure to read them costs these two gauges, not the rest."""
    from modelops.monitoring import health

    try:
        return health.state(model_name)
    except Exception as exc:  # noqa: BLE001
        log.warning("model health state of %s not read: %s: %s", model_name, type(exc).__name__, exc)
        return {}


def after_drift(cfg: Any, result: dict[str, Any]) -> int:
    """drift_daily's detect_drift: drift ratio, drifted features, attribution drift, open alerts, production age."""
    from modelops.monitoring import health

    return emit(cfg.model_name, {**health.from_drift(result, cfg.drift.drift_ratio_threshold), **_state(cfg.model_name)})


def after_performance(cfg: Any, result: dict[str, Any]) -> int:
    """batch_predict_daily's evaluate_performance: live metric, its limit and baseline, open alerts, production age."""
    from modelops.monitoring import health

    sent = emit(cfg.model_name, health.from_performance(result), tags={"metric": str(result.get("metric") or cfg.evaluation.metric)})
    return sent + emit(cfg.model_name, _state(cfg.model_name))  # the same series as every other step sends them


def after_gate(cfg: Any, decision: dict[str, Any]) -> int:
    """Counts a decision once: a re-run that reads the recorded decision is not counted again."""
    if decision.get("reused"):
        return 0
    return emit(cfg.model_name, counters={"gate_passes" if decision.get("passed") else "gate_rejections": 1})


def after_approval(cfg: Any, approved: bool, recorded: bool) -> int:
    """Counts a human (or timeout) decision the first time it is recorded; then open alerts."""
    counters = {"approvals" if approved else "approval_rejections": 1} if recorded else {}
    return emit(cfg.model_name, _state(cfg.model_name), counters)


def after_alert(model_name: str) -> int:
    """The open-alert gauge right after the ledger changed."""
    from modelops.monitoring import health

    try:
        return emit(model_name, {"open_alerts": health.open_alert_count(model_name)})
    except Exception as exc:  # noqa: BLE001
        log.warning("open alerts of %s not counted: %s", model_name, exc)
        return 0
