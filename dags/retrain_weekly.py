"""
### retrain_weekly

Retrains the model described by the problem config (`$MODELOPS_CONFIG`, default
`include/config/store_sales.yaml`) every Sunday 04:00 UTC, **or** as soon as
`drift_daily` reports drift (Asset event), then asks a human before production.

validate_data -> build_features -> train_xgboost / train_lightgbm -> build_ensemble
-> evaluate -> register_candidate -> gate -> approve_production -> promote -> smoke_test

* The training window ends at the run's data interval end (or the drift day that
  triggered it) and reaches back `training.window_days`; params can override it.
* **gate**: threshold AND beats production on the same test window; otherwise the
  version is tagged `rejected` and everything after is skipped.
* **approve_production** waits (no worker slot) for an approver from the config:
  Required Actions page in the UI, `python -m modelops approve`, or the REST API.
* Re-running or backfilling a logical date reuses the version it registered.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, AssetOrTimeSchedule, CronDataIntervalTimetable
from modelops.dag_config import hyperparameter_overrides_schema, load_dag_config
from modelops_airflow.approval import ModelApprovalOperator
from modelops_airflow.dag_support import TRAINING_POOL, abandon_failed_run, default_args, drift_asset, param
from modelops_airflow.notifiers import ModelopsAlertNotifier
from modelops_airflow.operators import (
    BuildEnsembleOperator,
    BuildFeaturesOperator,
    EvaluateOperator,
    GateOperator,
    PromoteOperator,
    RegisterCandidateOperator,
    SmokeTestOperator,
    TrainModelOperator,
    ValidateDataOperator,
)

cfg = load_dag_config()

with DAG(
    dag_id="retrain_weekly",
    description=f"Retrain, gate, approve and promote {cfg.model_name}",
    doc_md=__doc__,
    schedule=AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable("0 4 * * 0", timezone="UTC"),
        assets=drift_asset(cfg.model_name),
    ),
    start_date=pendulum.datetime(2023, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    on_failure_callback=abandon_failed_run,
    tags=["modelops", "training", cfg.model_name],
    params={
        "training_start": param(None, type=["null", "string"], format="date",
                                description="First day of the training window (YYYY-MM-DD); default: end - training.window_days"),
        "training_end": param(None, type=["null", "string"], format="date",
                              description="Day after the last training day (YYYY-MM-DD); default: the data interval end"),
        "hyperparameter_overrides": param(
            {}, description='e.g. {"xgboost": {"max_depth": 6}, "lightgbm": {"num_leaves": 31}}',
            **hyperparameter_overrides_schema(),
        ),
        "note": param("", type="string", maxLength=500, description="Why this run; stored on the MLflow run"),
    },
) as dag:
    validate = ValidateDataOperator(task_id="validate_data", window="training")
    features = BuildFeaturesOperator(task_id="build_features")
    train_xgb = TrainModelOperator(task_id="train_xgboost", model="xgboost", pool=TRAINING_POOL)
    train_lgbm = TrainModelOperator(task_id="train_lightgbm", model="lightgbm", pool=TRAINING_POOL)
    ensemble = BuildEnsembleOperator(task_id="build_ensemble")
    evaluate = EvaluateOperator(task_id="evaluate")
    register = RegisterCandidateOperator(task_id="register_candidate")
    gate = GateOperator(task_id="gate", on_success_callback=ModelopsAlertNotifier(kind="gate_rejected"))
    approve = ModelApprovalOperator(
        task_id="approve_production",
        approvers=cfg.approval.approvers,
        timeout=timedelta(hours=cfg.approval.timeout_hours),
        retries=0,
    )
    promote = PromoteOperator(task_id="promote")
    smoke = SmokeTestOperator(task_id="smoke_test")

    validate >> features >> [train_xgb, train_lgbm] >> ensemble >> evaluate >> register >> gate >> approve >> promote >> smoke
