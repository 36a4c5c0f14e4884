"""Explanations and model health through real DAG runs (``dag.test()``).

One model's life with a StatsD listener on loopback: retrain (SHAP + permutation importance in the
MLflow run, on the approval form), approved; batch predictions with their top-k contributions
(table + parquet, adding up per row); a drift day with attribution drift beside feature drift; a
second candidate explained against production and rejected by the gate. Every health value
arrives tagged with the model. A metrics endpoint that is down (refusing, unresolvable) never
fails a run.
"""

from __future__ import annotations

import logging
from datetime import date

import numpy as np
import pandas as pd
import pytest

from modelops import db
from modelops.governance import registry
from modelops.monitoring import drift_store, explanation_store, predictions
from tests.runs.conftest import load_dag, states, utc
from tests.runs.test_retrain_weekly import V1_DAY, run_retrain
from tests.statsd_server import StatsdListener, configure_airflow_metrics, reset_airflow_metrics

pytestmark = pytest.mark.dagrun


@pytest.fixture
def metrics_env(monkeypatch):
    """Point Airflow's [metrics] somewhere for this test; the session's default (none) afterwards."""
    from modelops_airflow import health_metrics

    monkeypatch.setattr(health_metrics, "_warned", False)
    yield lambda **settings: configure_airflow_metrics(monkeypatch, **settings)
    monkeypatch.undo()
    reset_airflow_metrics()


def _values(listener: StatsdListener, name: str, model: str) -> list[float]:
    return [s.value for s in listener.samples("airflow.modelops.") if s.name == f"airflow.modelops.{name}"
            and s.tags.get("model_name") == model]


def _counter(listener: StatsdListener, name: str, model: str) -> float:
    return sum(s.value for s in listener.samples("airflow.modelops.") if s.name == f"airflow.modelops.{name}"
               and s.kind == "c" and s.tags.get("model_name") == model)


def _hitl_body(model_name: str) -> str:
    from airflow.models.hitl import HITLDetail
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as s:
        bodies = [d.body for d in s.scalars(select(HITLDetail)).all() if d.subject.startswith(f"Promote {model_name} v")]
    assert len(bodies) == 1, bodies
    return bodies[0]


def test_explained_lifecycle_with_health_metrics(api_app, problem, metrics_env):
    cfg = problem(**{"explain.per_prediction.enabled": True, "explain.per_prediction.top_k": 3,
                     "explain.permutation_repeats": 2})
    name = cfg.model_name
    engine = db.get_engine()
    with StatsdListener() as listener:
        metrics_env(statsd_on=True, statsd_host="127.0.0.1", statsd_port=listener.port, statsd_prefix="airflow",
                    statsd_influxdb_enabled=True)

        # -- v1: explained at evaluate, on the approval form, approved ---------------------------
        dr, _ = run_retrain(api_app, cfg, V1_DAY, [("reviewer", True, "v1")])
        assert str(dr.state) == "success", states(dr)
        v1 = registry.alias_version(name, "production")
        ev = dr.get_task_instance("evaluate").xcom_pull(task_ids="evaluate")
        ex = ev["explanation"]
        assert ex["space"] == "log1p(target)" and ex["rows"] > 0 and ex["additivity_error"] < 1e-4
        assert ex["vs_production"] is None and len(ex["importance"]) == cfg.explain.top_features
        assert {r["column"] for r in ex["permutation"]} >= {"customers", "sales (target history)"}
        run = registry.client().get_run(registry.get_version(name, v1).run_id)
        arts = {a.path for a in registry.client().list_artifacts(run.info.run_id, "explain")}
        assert {"explain/shap_importance.csv", "explain/shap_importance_by_column.csv", "explain/permutation_importance.csv",
                "explain/importance.png", "explain/explanation.html", "explain/shap_reference.json",
                "explain/explanation.json"} <= arts, arts
        top = ex["importance"][0]["feature"]
        assert run.data.metrics[f"shap_mean_abs.{top}"] == pytest.approx(ex["importance"][0]["mean_abs_shap"])
        body = _hitl_body(name)
        assert f"What drives v{v1}'s predictions" in body and f"| 1 | {top} |" in body and "Permutation importance:" in body
        assert _counter(listener, "gate_passes", name) == 1 and _counter(listener, "approvals", name) == 1
        assert _counter(listener, "gate_rejections", name) == 0

        # -- batch predictions with their top-k contributions --------------------------------
        bp = load_dag("batch_predict_daily")
        run1 = bp.test(logical_date=utc("2025-06-03"))
        assert states(run1)["score_batch"] == "success", states(run1)
        preds = predictions.load_predictions(engine, name)
        expl = explanation_store.load_explanations(engine, name)
        assert len(expl) == len(preds) == 40
        joined = preds.merge(expl, on=["logical_date", "model_role", "model_version", "entity", "ts"], validate="one_to_one")
        for _, r in joined.iterrows():
            assert len(r["contributions"]) == 3 and r["space"] == "log1p(target)"
            assert abs(r["contributions"][0][1]) >= abs(r["contributions"][-1][1])
            total = r["base_value"] + sum(v for _, v in r["contributions"]) + r["other_value"]
            assert total == pytest.approx(np.log1p(r["prediction"]), abs=1e-4)  # the stored row adds up
        part = pd.read_parquet(predictions.predictions_path(cfg, date(2025, 6, 2)))
        assert {"shap_space", "shap_base", "shap_other", "shap_1_feature", "shap_1_value", "shap_3_feature", "shap_3_value"} <= set(part)
        assert "shap_4_feature" not in part
        np.testing.assert_allclose(part["shap_base"] + part[["shap_1_value", "shap_2_value", "shap_3_value"]].sum(axis=1)
                                   + part["shap_other"], np.log1p(part["prediction"]), atol=1e-4)
        age = _values(listener, "production_age_seconds", name)
        assert age and 0 <= age[-1] < 3600
        assert _values(listener, "open_alerts", name)

        # the live metric and its limit: gauges with the model and metric tags
        live = [s for s in listener.samples() if s.name == "airflow.modelops.live_metric"]
        perf = run1.get_task_instance("evaluate_performance").xcom_pull(task_ids="evaluate_performance")
        assert perf["value"] is not None  # the sample data carries its actuals
        assert live and live[-1].tags == {"model_name": name, "metric": "rmspe"}
        assert live[-1].value == pytest.approx(perf["value"], rel=1e-6)
        assert _values(listener, "live_metric_limit", name)[-1] == pytest.approx(perf["limit"], rel=1e-6)

        # -- a drift day: attribution drift beside feature drift ---------------------------------
        drift = load_dag("drift_daily")
        d1 = drift.test(logical_date=utc("2025-06-11"))
        assert states(d1)["detect_drift"] == "success", states(d1)
        res = d1.get_task_instance("detect_drift").xcom_pull(task_ids="detect_drift")
        att = res["attribution"]
        assert att["available"] and att["model_version"] == v1 and -1 <= att["rank_correlation"] <= 1
        rows = explanation_store.load_attribution(engine, name)
        from modelops.data.features import FeatureBuilder

        assert sorted(rows["feature"]) == sorted(FeatureBuilder.from_config(cfg).feature_names)  # every model input
        assert set(rows["logical_date"].dt.date) == {date(2025, 6, 10)} and rows["model_version"].eq(v1).all()
        assert rows["rank_correlation"].iloc[0] == pytest.approx(att["rank_correlation"])
        drun = registry.client().get_run(res["mlflow_run_id"])
        assert drun.data.metrics["attribution_rank_correlation"] == pytest.approx(att["rank_correlation"])
        assert "drift_report/attribution/attribution_drift.html" in {
            a.path for a in registry.client().list_artifacts(res["mlflow_run_id"], "drift_report/attribution")}
        assert len(drift_store.load_reports(engine, name)) == len(cfg.drift_features)  # the feature drift itself, unchanged
        assert _values(listener, "drift_ratio", name) == [pytest.approx(res["drift_ratio"])]
        assert _values(listener, "drifted_features", name) == [len(res["drifted_features"])]
        assert _values(listener, "attribution_rank_correlation", name) == [pytest.approx(att["rank_correlation"])]
        drift.test(logical_date=utc("2025-06-11"))  # the same day again: replaced, not duplicated
        assert len(explanation_store.load_attribution(engine, name)) == len(rows)
        from modelops.monitoring import report as monitoring_report

        page = monitoring_report.render(monitoring_report.collect(engine, cfg, date(2025, 6, 1), date(2025, 6, 12)))
        section = page.split('<section id="attribution-drift">')[1].split("</section>")[0]
        assert "data:image/png;base64," in section and "2025-06-10: ranks on the day vs the test window" in section
        section = page.split('<section id="explanations">')[1].split("</section>")[0]
        assert f"production v{v1}" in section and top in section

        # -- v2: explained against production on the same rows; the gate rejects it ------------
        cfg2 = problem(model_name=name, **{"explain.per_prediction.enabled": True, "explain.permutation_repeats": 2,
                                          "evaluation.min_improvement": 10.0})
        dr2, _ = run_retrain(api_app, cfg2, "2025-06-08")
        assert states(dr2)["gate"] == "success" and states(dr2)["approve_production"] == "skipped", states(dr2)
        vs = dr2.get_task_instance("evaluate").xcom_pull(task_ids="evaluate")["explanation"]["vs_production"]
        assert vs["version"] == v1 and -1 <= vs["rank_correlation"] <= 1 and vs["features"]
        assert _counter(listener, "gate_rejections", name) == 1 and _counter(listener, "gate_passes", name) == 1


def test_a_metrics_endpoint_that_is_down_never_fails_a_run(problem, metrics_env, caplog):
    """drift_daily (window reference: no model needed): tags in the name on plain StatsD; then the
    StatsD endpoint down (nothing on the port) and unresolvable (logged once): the runs stay green."""
    cfg = problem(**{"drift.reference": "window", "drift.reference_window_days": 30})
    drift = load_dag("drift_daily")
    name = cfg.model_name

    with StatsdListener() as listener:  # plain StatsD: no tags on the wire, the model goes into the name
        metrics_env(statsd_on=True, statsd_host="127.0.0.1", statsd_port=listener.port, statsd_prefix="airflow")
        dr = drift.test(logical_date=utc("2025-06-11"))
        assert str(dr.state) == "success", states(dr)
        plain = {s.name: s.value for s in listener.samples("airflow.modelops.")}
        res = dr.get_task_instance("detect_drift").xcom_pull(task_ids="detect_drift")
        assert plain[f"airflow.modelops.model.{name}.drift_ratio"] == pytest.approx(res["drift_ratio"])
        assert plain[f"airflow.modelops.model.{name}.drifted_features"] == len(res["drifted_features"])
        assert f"airflow.modelops.model.{name}.open_alerts" in plain
        assert "airflow.modelops.drift_ratio" not in plain
        down_port = listener.port
    # the listener is gone: datagrams to its port are lost, nothing in the task notices
    metrics_env(statsd_on=True, statsd_host="127.0.0.1", statsd_port=down_port, statsd_prefix="airflow",
                statsd_influxdb_enabled=True)
    dr = drift.test(logical_date=utc("2025-06-12"))
    assert str(dr.state) == "success", states(dr)

    metrics_env(statsd_on=True, statsd_host="statsd-exporter.invalid", statsd_port=9125)
    with caplog.at_level(logging.ERROR):
        dr = drift.test(logical_date=utc("2025-06-13"))
        dr_again = drift.test(logical_date=utc("2025-06-14"))
    assert str(dr.state) == "success" and str(dr_again.state) == "success", (states(dr), states(dr_again))
    said = [r.getMessage() for r in caplog.records if "Could not configure StatsClient" in r.getMessage()]
    assert len(said) == 1, said  # Airflow falls back to no metrics once, and says so once
    assert len(drift_store.load_reports(db.get_engine(), name)["logical_date"].unique()) == 4
