"""MLflow runs for a logical Airflow run: found again on retry, never duplicated.

Every task of one DAG run writes into the same parent MLflow run, looked up by a
``modelops.run_key`` tag, so a retry or a re-run of the same logical date lands
in the run it already started instead of scattering new ones.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import modelops
from modelops import settings
from modelops.governance.registry import RUN_KEY, client, ensure_experiment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunContext:
    """What the core needs to know about the orchestrator's run (no Airflow types)."""

    dag_id: str
    run_id: str
    logical_date: str | None
    data_interval_start: str | None
    data_interval_end: str | None
    try_number: int = 1
    run_type: str = "manual"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def run_key(self) -> str:
        """Same logical date -> same key, so backfills and re-runs find their own results."""
        anchor = self.logical_date or self.data_interval_end or self.run_id
        return f"{self.dag_id}/{anchor}"

    def lineage_tags(self) -> dict[str, str]:
        return {
            "airflow.dag_id": self.dag_id,
            "airflow.run_id": self.run_id,
            "airflow.logical_date": self.logical_date or "",
            "airflow.data_interval_start": self.data_interval_start or "",
            "airflow.data_interval_end": self.data_interval_end or "",
            "airflow.try_number": str(self.try_number),
            "airflow.run_type": self.run_type,
            "modelops.package_version": modelops.__version__,
            RUN_KEY: self.run_key,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def local(cls, dag_id: str = "local", when: datetime | None = None) -> RunContext:
        ts = (when or datetime.now()).isoformat()
        return cls(dag_id, f"local__{ts}", ts, None, ts)


def find_run(experiment_id: str, run_key: str, kind: str) -> Any | None:
    c = client()
    runs = c.search_runs([experiment_id], filter_string=f"tags.`{RUN_KEY}` = '{run_key}' and tags.`modelops.kind` = '{kind}'",
                         max_results=5, order_by=["attributes.start_time ASC"])
    return runs[0] if runs else None


def get_or_create_run(experiment_name: str, ctx: RunContext, kind: str, run_name: str, extra_tags: dict[str, str] | None = None,
                      parent_run_id: str | None = None) -> str:
    """The MLflow run for (run_key, kind); created once, reused by retries."""
    exp_id = ensure_experiment(experiment_name)
    found = find_run(exp_id, ctx.run_key, kind)
    c = client()
    tags = {**ctx.lineage_tags(), "modelops.kind": kind, **(extra_tags or {})}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    if found is not None:
        rid = found.info.run_id
        c.set_tag(rid, "airflow.try_number", str(ctx.try_number))
        if found.info.status != "RUNNING":
            c.update_run(rid, status="RUNNING")
        return rid
    c.create_run(exp_id, run_name=run_name, tags=tags)
    # MLflow's HTTP client re-POSTs create_run after a 5xx; if the server had committed the
    # first one there are two runs for this key now. The oldest counts (find_run's order); the
    # extras are deleted so no orphan RUNNING run is left behind.
    runs = c.search_runs([exp_id], filter_string=f"tags.`{RUN_KEY}` = '{ctx.run_key}' and tags.`modelops.kind` = '{kind}'",
                         max_results=10, order_by=["attributes.start_time ASC"])
    for extra in runs[1:]:
        c.delete_run(extra.info.run_id)
    return runs[0].info.run_id


def finish_run(run_id: str, status: str = "FINISHED") -> None:
    client().set_terminated(run_id, status=status)


def log_json(run_id: str, obj: Any, artifact_file: str) -> None:
    client().log_text(run_id, json.dumps(obj, indent=2, default=str, sort_keys=True), artifact_file)


def log_metrics(run_id: str, metrics: dict[str, float], prefix: str = "") -> None:
    import math

    from mlflow.entities import Metric

    ts = int(datetime.now().timestamp() * 1000)
    batch = [Metric(f"{prefix}{k}", float(v), ts, 0) for k, v in metrics.items() if v is not None and not math.isnan(float(v))]
    if batch:
        client().log_batch(run_id, metrics=batch)


def log_params(run_id: str, params: dict[str, Any], prefix: str = "") -> None:
    """Params are write-once in MLflow; a retry re-logging the same value is fine, a new one is skipped."""
    c = client()
    existing = c.get_run(run_id).data.params
    from mlflow.entities import Param

    batch = []
    for k, v in params.items():
        key = f"{prefix}{k}"
        val = v if isinstance(v, str) else json.dumps(v, default=str)
        val = val[:6000]
        if key in existing:
            continue
        batch.append(Param(key, val))
    for i in range(0, len(batch), 90):
        c.log_batch(run_id, params=batch[i:i + 90])


def run_link(run_id: str) -> str:
    """Where a human finds the run (for task logs and approval bodies)."""
    base = os.environ.get("MODELOPS_MLFLOW_UI_URL") or (settings.tracking_uri() if settings.tracking_uri().startswith("http") else "http://127.0.0.1:5000")
    run = client().get_run(run_id)
    return f"{base.rstrip('/')}/#/experiments/{run.info.experiment_id}/runs/{run_id}"
