"""
### drift_daily

Every day, compares the previous day's data (the run's data interval) with the
production model's training snapshot: two-sample KS and PSI per feature.

validate_current -> detect_drift -> [drift only] emit_drift_event

* The report goes to the `modelops_drift_reports` table and to an MLflow run
  (HTML report and per-feature plots).
* When the share of drifted features reaches `drift.drift_ratio_threshold`,
  `emit_drift_event` updates the drift Asset, which schedules `retrain_weekly`,
  and alerts (webhook/email connections; log only when none is configured).
* Backfill any range with `airflow backfill create --dag-id drift_daily ...`:
  each day's rows are replaced, never duplicated.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable
from modelops.dag_config import load_dag_config
from modelops_airflow.dag_support import default_args, drift_asset
from modelops_airflow.notifiers import ModelopsAlertNotifier
from modelops_airflow.operators import DetectDriftOperator, EmitDriftEventOperator, ValidateDataOperator

cfg = load_dag_config()

with DAG(
    dag_id="drift_daily",
    description=f"Daily KS/PSI drift check for {cfg.model_name}",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2023, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=3,
    default_args=default_args(),
    tags=["modelops", "monitoring", cfg.model_name],
) as dag:
    validate = ValidateDataOperator(task_id="validate_current", window="interval")
    detect = DetectDriftOperator(task_id="detect_drift", on_drift_task_ids=["emit_drift_event"])
    emit = EmitDriftEventOperator(task_id="emit_drift_event", outlets=[drift_asset(cfg.model_name)],
                                  on_success_callback=ModelopsAlertNotifier(kind="drift_detected"))

    validate >> detect >> emit
