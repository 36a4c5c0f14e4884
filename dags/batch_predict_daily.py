"""
### batch_predict_daily

Every day, scores the previous day's rows (the run's data interval) with
`models:/NAME@production`, and with the `staging` version as a shadow challenger
while one waits for approval; then checks live performance against the
production version's test-set baseline once actuals have landed.

score_batch -> evaluate_performance -> [degraded only] emit_performance_event
                                    -> monitoring_report

* Predictions (entity, timestamp, prediction, model role and version, run ids) go to
  the `modelops_predictions` table and to parquet under the work root; a re-run or a
  backfill of a day replaces that day's rows.
* `evaluate_performance` joins the actuals of the last `monitoring.ground_truth_lookback_days`
  to their predictions and stores daily and rolling metrics (`modelops_performance`).
  Worse than the baseline by more than `monitoring.tolerance`: `emit_performance_event`
  updates the drift Asset (reason `performance_degradation`), which schedules
  `retrain_weekly`, and an alert goes out.
* `monitoring_report` logs an HTML report (metric over time, predicted vs actual,
  drift history, PSI heat map, shadow vs production, alerts) to MLflow.
* Backfill with `airflow backfill create --dag-id batch_predict_daily ...`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable
from modelops.dag_config import load_dag_config
from modelops_airflow.dag_support import default_args, drift_asset
from modelops_airflow.notifiers import ModelopsAlertNotifier
from modelops_airflow.operators import (
    BatchPredictOperator,
    EmitDegradationEventOperator,
    EvaluatePerformanceOperator,
    MonitoringReportOperator,
)

cfg = load_dag_config()

with DAG(
    dag_id="batch_predict_daily",
    description=f"Daily batch predictions, shadow challenger and live performance of {cfg.model_name}",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2023, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=3,
    default_args=default_args(),
    tags=["modelops", "monitoring", cfg.model_name],
) as dag:
    score = BatchPredictOperator(task_id="score_batch")
    evaluate = EvaluatePerformanceOperator(task_id="evaluate_performance", on_degraded_task_ids=["emit_performance_event"])
    emit = EmitDegradationEventOperator(
        task_id="emit_performance_event",
        outlets=[drift_asset(cfg.model_name)],
        on_success_callback=ModelopsAlertNotifier(kind="performance_degraded"),
    )
    report = MonitoringReportOperator(task_id="monitoring_report")

    score >> evaluate >> [emit, report]
