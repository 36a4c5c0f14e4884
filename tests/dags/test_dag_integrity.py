"""Tier 2: the DAG files parse, say what they are, and stay cheap to import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["pandas", "numpy", "mlflow", "xgboost", "lightgbm", "great_expectations", "sklearn", "scipy", "matplotlib", "boto3", "pyarrow",
         "optuna"]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}, dagbag.import_errors


def test_expected_dags(dagbag):
    assert set(dagbag.dag_ids) == {"retrain_weekly", "drift_daily", "batch_predict_daily", "tune_hyperparameters"}


def test_batch_predict_daily_wiring(dagbag):
    dag = dagbag.dags["batch_predict_daily"]
    retrain = dagbag.dags["retrain_weekly"]
    assert dag.timetable.expression == "0 0 * * *" and not dag.catchup  # interval timetable: one-day windows, backfillable
    assert dag.get_task("score_batch").downstream_task_ids == {"evaluate_performance"}
    assert dag.get_task("evaluate_performance").downstream_task_ids == {"emit_performance_event", "monitoring_report"}
    emit = dag.get_task("emit_performance_event")
    assert [o.uri for o in emit.outlets] == [retrain.timetable.asset_condition.uri]  # the same event schedules retraining
    assert [type(c).__name__ for c in emit.on_success_callback] == ["ModelopsAlertNotifier"]
    failure = [getattr(c, "kind", getattr(c, "__name__", "")) for c in dag.get_task("score_batch").on_failure_callback]
    assert failure == ["log_failure", "task_failed"]
    assert dag.doc_md and "batch_predict_daily" in dag.doc_md


def test_retrain_schedule_is_weekly_cron_or_drift_asset(dagbag):
    from airflow.sdk import AssetOrTimeSchedule, CronDataIntervalTimetable

    dag = dagbag.dags["retrain_weekly"]
    tt = dag.timetable
    assert isinstance(tt, AssetOrTimeSchedule)
    assert isinstance(tt.timetable, CronDataIntervalTimetable)
    assert tt.timetable.expression == "0 4 * * 0"
    assert "store_sales_forecaster/drift" in tt.asset_condition.uri
    assert dag.max_active_runs == 1
    assert dag.doc_md and "retrain_weekly" in dag.doc_md
    assert set(dag.params) == {"training_start", "training_end", "hyperparameter_overrides", "note"}


def test_drift_outlet_is_the_retrain_asset(dagbag):
    retrain, drift = dagbag.dags["retrain_weekly"], dagbag.dags["drift_daily"]
    outlets = drift.get_task("emit_drift_event").outlets
    assert [o.uri for o in outlets] == [retrain.timetable.asset_condition.uri]
    assert drift.timetable.expression == "0 0 * * *"  # interval timetable: a real one-day window
    assert drift.doc_md


def test_task_order_is_the_lifecycle(dagbag):
    dag = dagbag.dags["retrain_weekly"]
    order = ["validate_data", "build_features", "train_xgboost", "build_ensemble", "evaluate", "register_candidate", "gate",
             "approve_production", "promote", "smoke_test"]
    for up, down in zip(order, order[1:]):
        assert down in dag.get_task(up).downstream_task_ids, (up, down)
    assert dag.get_task("build_features").downstream_task_ids == {"train_xgboost", "train_lightgbm"}


def test_training_pool_retries_and_backoff(dagbag):
    dag = dagbag.dags["retrain_weekly"]
    for tid in ("train_xgboost", "train_lightgbm"):
        assert dag.get_task(tid).pool == "modelops_training"
    for tid in ("validate_data", "build_features", "train_xgboost", "build_ensemble", "evaluate", "register_candidate",
                "gate", "promote", "smoke_test"):
        t = dag.get_task(tid)
        assert t.retries >= 1 and t.retry_exponential_backoff, tid  # registry/store faults are retried with backoff
    assert dag.on_failure_callback is not None  # a run that fails for good leaves no bare candidate
    assert dagbag.dags["drift_daily"].get_task("detect_drift").retries >= 1
    approval = dag.get_task("approve_production")
    assert approval.retries == 0
    assert [u["id"] for u in approval.assigned_users] == ["admin", "reviewer"]
    assert approval.defaults == ["Reject"]  # a timeout counts as a rejection
    assert approval.response_timeout.total_seconds() == 168 * 3600


def test_params_are_validated(dagbag):
    from airflow.sdk.definitions.param import ParamsDict

    dag = dagbag.dags["retrain_weekly"]
    good = ParamsDict(dag.params)
    good.update({"training_end": "2025-06-01", "hyperparameter_overrides": {"xgboost": {"max_depth": 4}}})
    good.validate()
    for bad in ({"training_end": "June first"}, {"hyperparameter_overrides": {"catboost": {}}}, {"note": "x" * 600}):
        p = ParamsDict(dag.params)
        with pytest.raises(Exception):  # noqa: B017 - ParamValidationError
            p.update(bad)
            p.validate()


def test_every_param_declares_the_cheap_schema_dialect(dagbag):
    """Without it Airflow checks each schema against draft 2020-12's metaschema on every parse (4x slower)."""
    from modelops_airflow.dag_support import PARAM_DIALECT

    params = [(dag.dag_id, name, p) for dag in dagbag.dags.values() for name, p in dag.params.items()]
    assert len(params) >= 13
    assert [(d, n) for d, n, p in params if p.schema.get("$schema") != PARAM_DIALECT] == []


def test_tuning_dag_is_manual_and_ordered(dagbag):
    dag = dagbag.dags["tune_hyperparameters"]
    from airflow.sdk.definitions.timetables.simple import NullTimetable

    assert isinstance(dag.timetable, NullTimetable) and dag.max_active_runs == 1 and dag.doc_md
    order = ["check_request", "validate_data", "build_features"]
    for up, down in zip(order, order[1:]):
        assert dag.get_task(up).downstream_task_ids == {down}, (up, down)
    assert dag.get_task("build_features").downstream_task_ids == {"tune_xgboost", "tune_lightgbm"}
    for tid in ("tune_xgboost", "tune_lightgbm"):
        assert dag.get_task(tid).downstream_task_ids == {"publish_hyperparameters"}
        assert dag.get_task(tid).pool == "modelops_training" and dag.get_task(tid).retries >= 1
    assert dag.get_task("publish_hyperparameters").trigger_rule == "none_failed_min_one_success"
    assert set(dag.params) == {"models", "n_trials", "timeout_minutes", "metric", "search_space", "apply", "training_start",
                               "training_end", "note"}


def test_tuning_params_are_validated(dagbag):
    from airflow.sdk.definitions.param import ParamsDict

    dag = dagbag.dags["tune_hyperparameters"]
    good = ParamsDict(dag.params)
    good.update({"models": ["lightgbm"], "n_trials": 5, "timeout_minutes": 0.5, "metric": "mape",
                 "search_space": {"xgboost": {"max_depth": {"type": "int", "low": 3, "high": 6}}}})
    good.validate()
    for bad in ({"models": []}, {"models": ["catboost"]}, {"models": ["xgboost", "xgboost"]}, {"n_trials": 0}, {"n_trials": 2.5},
                {"n_trials": "10"}, {"timeout_minutes": 0}, {"metric": "f1"}, {"search_space": {"catboost": {}}}, {"apply": "yes"}):
        p = ParamsDict(dag.params)
        with pytest.raises(Exception):  # noqa: B017 - ParamValidationError
            p.update(bad)
            p.validate()


@pytest.mark.parametrize("dag_file", ["retrain_weekly.py", "drift_daily.py", "tune_hyperparameters.py"])
def test_no_heavy_imports_at_parse_time(dag_file):
    code = (
        "import runpy, sys, json; runpy.run_path(sys.argv[1]);"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'include'}:{ROOT / 'plugins'}"}
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "dags" / dag_file)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_bad_config_fails_at_parse_time_with_a_sentence(tmp_path):
    import yaml

    raw = yaml.safe_load((ROOT / "include/config/store_sales.yaml").read_text())
    raw["trainig"] = raw.pop("training")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "MODELOPS_CONFIG": str(bad), "PYTHONPATH": f"{ROOT / 'include'}:{ROOT / 'plugins'}"}
    out = subprocess.run([sys.executable, str(ROOT / "dags" / "retrain_weekly.py")], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode != 0
    assert "unknown key 'trainig' (did you mean 'training'?)" in out.stderr
