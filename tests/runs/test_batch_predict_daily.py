"""batch_predict_daily runs: daily scoring from @production, idempotent re-runs, the staging shadow,
actuals that land worse than expected -> degradation event + alert, and the report in MLflow."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from modelops import db
from modelops.monitoring import alerts
from modelops.monitoring import performance
from modelops.monitoring import predictions
from modelops.governance import registry
from modelops.governance import status
from modelops.data import storage
from tests.alert_servers import WebhookServer
from tests.runs.conftest import load_dag, states, utc
from tests.runs.test_retrain_weekly import V1_DAY, run_retrain

pytestmark = pytest.mark.dagrun


def _copy_data(src: str, dst: Path, first: date, last: date) -> str:
    """The partitions this test needs, in its own data root (it rewrites some actuals later)."""
    dst.mkdir(parents=True)
    for part in Path(src).iterdir():
        day = date.fromisoformat(part.name.split("=", 1)[1])
        if first <= day <= last:
            shutil.copytree(part, dst / part.name)
    return str(dst)


def _land_actuals(cfg, day: date, factor: float) -> None:
    """Ground truth for ``day`` lands in the source, and it is not what the model expected."""
    part = storage.read_window(cfg, day, date.fromordinal(day.toordinal() + 1))
    part[cfg.data.target_column] = part[cfg.data.target_column] * factor
    storage.write_partition(part, cfg.data.path, cfg.data.partition_column, day)


def test_daily_scoring_shadow_and_degradation(api_app, problem, store_data, tmp_path, monkeypatch):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    data = _copy_data(store_data, tmp_path / "data" / "store_sales", date(2024, 11, 1), date(2025, 6, 10))
    cfg = problem(**{"data.path": data, "monitoring.rolling_window_days": 3, "monitoring.min_rows": 30,
                     "monitoring.tolerance": 1.0, "monitoring.tolerance_mode": "relative", "monitoring.report_days": 5})
    engine = db.get_engine()
    bp = load_dag("batch_predict_daily")

    with WebhookServer() as hook:
        monkeypatch.setenv("AIRFLOW_CONN_MODELOPS_ALERTS_WEBHOOK", hook.connection("/slack"))
        dr, _ = run_retrain(api_app, cfg, V1_DAY, [("reviewer", True, "v1")])
        assert str(dr.state) == "success", states(dr)
        v1 = registry.alias_version(cfg.model_name, "production")
        baseline = float(registry.get_version(cfg.model_name, v1).tags["metric.rmspe"])
        # the reviewers were told, with the numbers; the decision closed that alert
        (_, waiting, _), = hook.wait_for(1)
        assert waiting["modelops"]["kind"] == "approval_waiting" and waiting["modelops"]["model_version"] == v1
        assert f"Approval needed: promote {cfg.model_name} v{v1}" in waiting["text"] and f"{baseline:.4f}" in waiting["text"]
        assert "/dags/retrain_weekly/runs/" in waiting["text"] and "approvers: admin, reviewer" in waiting["text"]
        assert alerts.open_alerts(engine, cfg.model_name) == []
        hook.items.clear()

        # logical date D covers the data interval [D-1, D): the run of 06-03 scores the rows of 06-02
        # day 1: production only (no staging version), actuals as expected -> within tolerance, no event
        run1 = bp.test(logical_date=utc("2025-06-03"))
        st = states(run1)
        assert st == {"score_batch": "success", "evaluate_performance": "success", "emit_performance_event": "skipped",
                      "monitoring_report": "success"}, st
        rows = predictions.load_predictions(engine, cfg.model_name)
        assert len(rows) == 40 and set(rows["model_role"]) == {"production"} and set(rows["model_version"]) == {v1}
        assert set(rows["logical_date"].dt.date) == {date(2025, 6, 2)} and rows["model_run_id"].notna().all()
        assert storage.exists(predictions.predictions_path(cfg, date(2025, 6, 2)))
        perf = performance.load_performance(engine, cfg.model_name)
        assert len(perf) == 1 and not perf["degraded"].iloc[0] and perf["baseline"].iloc[0] == pytest.approx(baseline)
        # a healthy day still leaves its numbers in XCom (skipping the event task must not drop them)
        healthy = run1.get_task_instance("evaluate_performance").xcom_pull(task_ids="evaluate_performance")
        assert healthy["judged"] and not healthy["degraded"] and healthy["value"] == pytest.approx(perf["rolling_value"].iloc[0])

        # the same day again (a retry or a backfill): rows replaced, never duplicated
        bp.test(logical_date=utc("2025-06-03"))
        again = predictions.load_predictions(engine, cfg.model_name)
        assert len(again) == 40 and again["run_id"].iloc[0] != rows["run_id"].iloc[0]
        pd.testing.assert_series_equal(again["prediction"], rows["prediction"])  # same model, same rows, same answer

        # a challenger waits for approval in staging: it is scored as a shadow on the same rows
        mv1 = registry.get_version(cfg.model_name, v1)
        v2 = str(registry.client().create_model_version(cfg.model_name, mv1.source, mv1.run_id,
                                                        tags={"metric.rmspe": mv1.tags["metric.rmspe"]}).version)
        registry.client().set_registered_model_alias(cfg.model_name, "staging", v2)
        run2 = bp.test(logical_date=utc("2025-06-04"))
        assert states(run2)["emit_performance_event"] == "skipped"
        day2 = predictions.load_predictions(engine, cfg.model_name, "2025-06-03", "2025-06-04")
        assert day2.groupby("model_role")["model_version"].agg(set).to_dict() == {"production": {v1}, "shadow": {v2}}
        prod2, shadow2 = (day2[day2["model_role"] == r].set_index("entity")["prediction"] for r in ("production", "shadow"))
        pd.testing.assert_series_equal(prod2, shadow2, check_names=False)  # same artifact, same rows
        summary = status.collect(cfg)["monitoring"]
        assert set(summary["roles"]) == {"production", "shadow"} and summary["roles"]["shadow"]["model_version"] == v2
        assert "shadow" in status.render_table(status.collect(cfg))
        assert hook.items == []  # nothing to say so far

        # actuals for the first two days land far above what was predicted -> degraded
        _land_actuals(cfg, date(2025, 6, 2), 2.5)
        _land_actuals(cfg, date(2025, 6, 3), 2.5)
        run3 = bp.test(logical_date=utc("2025-06-05"))
        st = states(run3)
        assert st["emit_performance_event"] == "success" and st["monitoring_report"] == "success", st
        (path, body, _), = hook.wait_for(1)

        # a corrupt partition: the task fails (after its retries) and the failure callback says why
        bad = Path(storage.partition_dir(cfg, date(2025, 6, 5)))
        shutil.rmtree(bad)
        bad.mkdir()
        (bad / "part-0.parquet").write_bytes(b"not parquet at all")
        run4 = bp.test(logical_date=utc("2025-06-06"))
        assert states(run4)["score_batch"] == "failed", states(run4)
        (_, _, _), (_, failed, _) = hook.wait_for(2)

    assert failed["modelops"]["kind"] == "task_failed" and "Task failed: batch_predict_daily.score_batch" in failed["text"]
    assert "date=2025-06-05/part-0.parquet: cannot read as parquet" in failed["text"] and "/tasks/score_batch" in failed["text"]

    perf = performance.load_performance(engine, cfg.model_name)
    last = perf[(perf["model_role"] == "production")].iloc[-1]
    assert last["logical_date"] == pd.Timestamp("2025-06-04") and last["degraded"] and last["rolling_n_rows"] == 120
    assert last["rolling_value"] > 2 * baseline
    asset_uri = f"x-modelops://{cfg.model_name}/drift"
    with create_session() as s:
        asset = s.scalar(select(AssetModel).where(AssetModel.uri == asset_uri))
        (event,) = s.scalars(select(AssetEvent).where(AssetEvent.asset_id == asset.id)).all()
    assert event.extra["reason"] == "performance_degradation" and event.extra["model_version"] == v1
    assert event.extra["data_interval_end"][:10] == "2025-06-05" and event.extra["value"] == pytest.approx(last["rolling_value"])

    assert path == "/slack" and body["modelops"]["kind"] == "performance_degraded"
    text = body["text"]
    assert f"{cfg.model_name} v{v1}" in text and f"{last['rolling_value']:.4f}" in text and f"{baseline:.4f}" in text
    assert f"shadow staging v{v2}" in text and "/dags/batch_predict_daily/runs/" in text and "#/experiments/" in text
    (open_alert,) = alerts.open_alerts(engine, cfg.model_name)
    assert open_alert["kind"] == "performance_degraded" and open_alert["delivered"] == "webhook"

    # the day's HTML report is in MLflow, with every section
    run = registry.client().search_runs([registry.ensure_experiment(cfg.mlflow.experiment)],
                                        "tags.`modelops.kind` = 'monitoring' and tags.`modelops.monitoring_day` = '2025-06-04'")
    assert len(run) == 1 and run[0].data.tags["modelops.degraded"] == "true"
    local = registry.client().download_artifacts(run[0].info.run_id, "monitoring_report/monitoring_report.html", str(tmp_path))
    page = Path(local).read_text()
    from modelops.monitoring.report import SECTIONS

    assert all(f'<section id="{s}">' in page for s in SECTIONS) and page.count("data:image/png;base64,") >= 2


def test_gate_rejection_is_announced(api_app, problem, monkeypatch):
    cfg = problem(**{"evaluation.threshold": 0.001})
    with WebhookServer() as hook:
        monkeypatch.setenv("AIRFLOW_CONN_MODELOPS_ALERTS_WEBHOOK", hook.connection())
        dr, _ = run_retrain(api_app, cfg, V1_DAY)
        assert states(dr)["gate"] == "success" and states(dr)["approve_production"] == "skipped"
        (_, body, _), = hook.wait_for(1)
    assert body["modelops"]["kind"] == "gate_rejected" and body["modelops"]["model_version"] == "1"
    assert f"Gate rejected {cfg.model_name} v1" in body["text"] and "threshold 0.0010" in body["text"]
    assert "does not pass the threshold" in body["text"] and "production is untouched" in body["text"]
    assert "/dags/retrain_weekly/runs/" in body["text"] and "/tasks/gate" in body["text"]
