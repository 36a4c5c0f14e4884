"""Small shared pieces of DAG wiring (kept out of dags/ so both DAG files read the same values)."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, Param

log = logging.getLogger(__name__)

TRAINING_POOL = os.environ.get("MODELOPS_TRAINING_POOL", "modelops_training")


# Airflow checks each Param's schema against its dialect's metaschema on every parse and every
# trigger. Without "$schema" that is draft 2020-12, whose $dynamicRef metaschema made that check
# ~8 ms for retrain_weekly's four params; draft-07's ~2 ms. Our params use only keywords draft-07
# has (type, format, enum, minimum/maximum, maxLength, items, properties, additionalProperties).
PARAM_DIALECT = "http://json-schema.org/draft-07/schema#"


def param(default: Any, description: str | None = None, **schema: Any) -> Param:
    """An Airflow ``Param`` whose JSON schema declares draft-07 (see ``PARAM_DIALECT``)."""
    return Param(default, description=description, **{"$schema": PARAM_DIALECT, **schema})


def drift_asset(model_name: str) -> Asset:
    """The Asset the drift DAG updates when it sees drift, and the retrain DAG is scheduled on.

    The ``x-`` scheme marks a custom URI: Airflow then skips provider URI handlers
    (resolving a plain unknown scheme imports every provider, boto3 included: ~0.6 s a parse).
    """
    return Asset(uri=f"x-modelops://{model_name}/drift", name=f"{model_name}_drift", group="modelops")


def log_failure(context: dict[str, Any]) -> None:
    """Failure callback: one line that says which task, which run, and why (the alert comes from the notifier)."""
    ti = context.get("ti") or context.get("task_instance")
    exc = context.get("exception")
    log.error("modelops task failed: %s.%s run %s try %s: %s", getattr(ti, "dag_id", "?"), getattr(ti, "task_id", "?"),
              getattr(ti, "run_id", "?"), getattr(ti, "try_number", "?"), exc)


def default_args(retries: int = 2) -> dict[str, Any]:
    from modelops_airflow.notifiers import ModelopsAlertNotifier

    return {
        "owner": "modelops",
        "retries": retries,
        "retry_delay": timedelta(seconds=int(os.environ.get("MODELOPS_RETRY_DELAY_SECONDS", "60"))),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=15),
        # the log line always; the alert when a webhook/smtp connection is configured
        "on_failure_callback": [log_failure, ModelopsAlertNotifier(kind="task_failed")],
    }


def abandon_failed_run(context: dict[str, Any]) -> None:
    """DAG failure callback: the run's ungated candidate gets a final ``rejected`` tag (never left as ``candidate``)."""
    from modelops.governance import registry
    from modelops.config import load_config

    from modelops_airflow.hooks import ModelopsHook
    from modelops_airflow.operators import run_context

    try:
        ModelopsHook().configure_environment()
        cfg = load_config()
        ctx = run_context(context)
        try:
            failed = [ti.task_id for ti in context["dag_run"].get_task_instances(state="failed")]
        except Exception:  # noqa: BLE001 - the SDK's DagRun may not list task instances; the reason is cosmetic
            failed = []
        done = registry.abandon_run_key(cfg.model_name, ctx.run_key, f"run {ctx.run_id} failed ({', '.join(failed) or 'see the task logs'})")
        if done:
            log.warning("retrain run %s failed: candidate version(s) %s of %s tagged rejected", ctx.run_id, done, cfg.model_name)
    except Exception:  # noqa: BLE001 - a callback must never hide the run's own failure
        log.exception("could not clean up after the failed run")
