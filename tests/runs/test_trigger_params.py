"""Params of a UI/REST trigger are validated before any work runs.

Triggers go through Airflow's real REST app (the one the UI's trigger form posts to) as
an authenticated user: a bad type or range is refused with HTTP 400 naming the param,
and no DAG run is created. Cross-field rules a JSON schema cannot express are checked by
the first task before it reads data or opens an MLflow run.
"""

from __future__ import annotations

import pytest

from tests.runs.conftest import api_as

pytestmark = pytest.mark.dagrun


@pytest.fixture(scope="module")
def synced(airflow_db):
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    manager = DagBundlesManager()
    with create_session() as session:
        manager.sync_bundles_to_db(session=session)
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        assert not bag.import_errors, bag.import_errors
        with create_session() as session:
            sync_bag_to_db(bag, bundle.name, None, session=session)
    return True


BAD = [
    ({"training_end": "June first"}, "training_end"),
    ({"training_start": 20250601}, "training_start"),
    ({"hyperparameter_overrides": {"catboost": {}}}, "catboost"),
    ({"hyperparameter_overrides": {"xgboost": {"max_depth": "6"}}}, "max_depth"),
    ({"hyperparameter_overrides": {"lightgbm": {"learning_rate": -0.1}}}, "learning_rate"),
    ({"hyperparameter_overrides": {"xgboost": {"n_estimators": True}}}, "n_estimators"),
    ({"note": "x" * 600}, "note"),
]


def _runs(dag_id: str) -> int:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as s:
        return s.query(DagRun).filter(DagRun.dag_id == dag_id).count()


@pytest.mark.parametrize("conf,needle", BAD, ids=[n for _, n in BAD])
def test_bad_trigger_params_are_refused_before_a_run_exists(api_app, synced, conf, needle):
    from modelops.governance.approvals import ApprovalError

    api = api_as(api_app, "admin")
    before = _runs("retrain_weekly")
    with pytest.raises(ApprovalError) as info:
        api.request("POST", "/api/v2/dags/retrain_weekly/dagRuns", json={"logical_date": None, "conf": conf})
    msg = str(info.value)
    assert "HTTP 400" in msg and needle in msg, msg
    assert _runs("retrain_weekly") == before


def test_cross_field_params_fail_the_first_task_before_any_work(tmp_path, fast_hp_file):
    """training_start >= training_end, and overrides the tuned file does not accept: a sentence, nothing read or logged."""
    from modelops import lifecycle
    from modelops.governance import registry
    from modelops.config import ConfigError, load_config, load_hyperparameters
    from modelops.tracking import RunContext
    from tests.conftest import write_config

    cfg = load_config(write_config(tmp_path, model_name="params_x", **{"mlflow.experiment": "params_x_never_created",
                                                                      "training.hyperparameters_file": str(fast_hp_file)}))
    ctx = RunContext("retrain_weekly", "manual__x", "2025-06-01T00:00:00+00:00", None, "2025-06-01T00:00:00+00:00")
    with pytest.raises(ValueError, match=r"training window is empty: start 2025-06-01 is not before end 2025-05-01"):
        lifecycle.training_window(cfg, ctx, "2025-06-01", "2025-05-01")
    with pytest.raises(ConfigError, match=r"run param\): xgboost.max_depth must be int, got float 6.5"):
        load_hyperparameters(cfg, {"xgboost": {"max_depth": 6.5}})
    assert registry.client().get_experiment_by_name("params_x_never_created") is None
