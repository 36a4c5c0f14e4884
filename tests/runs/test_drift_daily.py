"""drift_daily runs: a normal day, a drifted day that queues retrain_weekly, and the retrain it asks for."""

from __future__ import annotations

import pytest

from modelops.monitoring import drift_store
from modelops.governance import registry
from tests.runs.conftest import load_dag, states, utc
from tests.runs.test_retrain_weekly import V1_DAY, run_retrain

pytestmark = pytest.mark.dagrun


def test_drift_triggers_retrain_and_v2_replaces_v1(api_app, problem):
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    cfg = problem()
    dr, _ = run_retrain(api_app, cfg, V1_DAY, [("reviewer", True, "v1")])
    assert str(dr.state) == "success", states(dr)
    v1 = registry.alias_version(cfg.model_name, "production")

    drift = load_dag("drift_daily")
    normal = drift.test(logical_date=utc("2025-06-11"))
    st = states(normal)
    assert st["detect_drift"] == "success" and st["emit_drift_event"] == "skipped", st
    engine = drift_store.get_engine()
    rows = drift_store.load_reports(engine, cfg.model_name)
    assert len(rows) == len(cfg.drift_features) and not rows["dataset_drift"].any()

    # a user runs retrain_weekly unpaused (new DAGs start paused): only then does the event queue a run
    from airflow.models.dag import DagModel

    with create_session() as s:
        s.query(DagModel).filter(DagModel.dag_id == "retrain_weekly").update({"is_paused": False})
    drifted = drift.test(logical_date=utc("2025-11-26"))
    st = states(drifted)
    assert st["emit_drift_event"] == "success", st
    asset_uri = f"x-modelops://{cfg.model_name}/drift"
    with create_session() as s:
        asset = s.scalar(select(AssetModel).where(AssetModel.uri == asset_uri))
        events = s.scalars(select(AssetEvent).where(AssetEvent.asset_id == asset.id)).all()
        queued = s.scalars(select(AssetDagRunQueue).where(AssetDagRunQueue.asset_id == asset.id)).all()
    assert len(events) == 1 and events[0].extra["reason"] == "data_drift"
    end = events[0].extra["data_interval_end"]
    assert [q.target_dag_id for q in queued] == ["retrain_weekly"]  # what the scheduler turns into a run
    summary = drift_store.latest_summary(engine, cfg.model_name)
    assert summary["dataset_drift"] and summary["drift_ratio"] >= cfg.drift.drift_ratio_threshold

    # the retrain the event asks for, over the same window, then approved
    dr2, _ = run_retrain(api_app, cfg, end[:10], [("reviewer", True, "v2 on drifted data")], conf={"training_end": end[:10]})
    assert str(dr2.state) == "success", states(dr2)
    v2 = registry.alias_version(cfg.model_name, "production")
    assert v2 != v1
    t1 = registry.get_version(cfg.model_name, v1).tags
    assert t1["lifecycle"] == "archived" and t1["archived.replaced_by"] == v2
    assert registry.get_version(cfg.model_name, v2).tags["promoted.replaced"] == v1

    # backfilling the drifted day again replaces its report rows, never duplicates them
    drift.test(logical_date=utc("2025-11-26"))
    again = drift_store.load_reports(engine, cfg.model_name)
    assert len(again) == 2 * len(cfg.drift_features)
