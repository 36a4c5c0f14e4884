"""Monitoring core: prediction log idempotency, metrics against hand-computed values, the degradation
rule, alert messages and ledger, and the HTML report with every section for a multi-day range."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from modelops import db
from modelops.monitoring import alerts
from modelops.monitoring import performance
from modelops.monitoring import report as monitoring_report
from modelops.monitoring import predictions
from modelops.config import ConfigError, load_config, parse_config
from tests.conftest import write_config


@pytest.fixture
def engine(tmp_path):
    eng = db.get_engine(f"sqlite:///{tmp_path / 'modelops.db'}")
    db.migrate(eng)
    return eng


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_engine(request, tmp_path):
    """The same tests on the embedded SQLite and on PostgreSQL (the real stack)."""
    url = f"sqlite:///{tmp_path / 'm.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    eng = db.get_engine(url)
    db.migrate(eng)
    yield eng
    db.dispose_engines()  # before pg_url's teardown drops the database


def _cfg(tmp_path, **overrides):
    return load_config(write_config(tmp_path / "cfg", **{"data.path": str(tmp_path / "data"), **overrides}))


def _preds(day: date, entities, values, role="production", version="1") -> pd.DataFrame:
    return pd.DataFrame({"entity": [str(e) for e in entities], "ts": pd.Timestamp(day), "prediction": values,
                         "model_role": role, "model_version": version, "dag_id": "batch_predict_daily", "run_id": f"r-{day}"})


# -- prediction log ------------------------------------------------------------------------------

def test_saving_a_day_twice_replaces_its_rows_and_leaves_other_days_alone(any_engine):
    engine = any_engine
    d1, d2 = date(2025, 6, 2), date(2025, 6, 3)
    predictions.save_predictions(engine, "m", _preds(d1, [1, 2, 3], [1.0, 2.0, 3.0]), d1, d1 + timedelta(days=1))
    predictions.save_predictions(engine, "m", _preds(d2, [1, 2], [5.0, 6.0]), d2, d2 + timedelta(days=1))
    again = pd.concat([_preds(d1, [1, 2, 3], [1.5, 2.5, 3.5]), _preds(d1, [1, 2, 3], [9.0, 9.0, 9.0], "shadow", "2")])
    assert predictions.save_predictions(engine, "m", again, d1, d1 + timedelta(days=1)) == 6
    rows = predictions.load_predictions(engine, "m")
    assert len(rows) == 8  # 3 production + 3 shadow on d1, 2 on d2: never 11
    day1 = rows[rows["logical_date"] == pd.Timestamp(d1)]
    assert sorted(day1.loc[day1["model_role"] == "production", "prediction"]) == [1.5, 2.5, 3.5]
    assert set(day1.loc[day1["model_role"] == "shadow", "model_version"]) == {"2"}
    assert list(rows.loc[rows["logical_date"] == pd.Timestamp(d2), "prediction"]) == [5.0, 6.0]
    assert len(predictions.load_predictions(engine, "other")) == 0


def test_a_bad_frame_changes_nothing(any_engine):
    engine = any_engine
    d = date(2025, 6, 2)
    predictions.save_predictions(engine, "m", _preds(d, [1, 2], [1.0, 2.0]), d, d + timedelta(days=1))
    with pytest.raises(ValueError, match="1 of 2 predictions are NaN"):
        predictions.save_predictions(engine, "m", _preds(d, [1, 2], [1.0, float("nan")]), d, d + timedelta(days=1))
    with pytest.raises(ValueError, match="outside"):
        predictions.save_predictions(engine, "m", _preds(d + timedelta(days=1), [1], [1.0]), d, d + timedelta(days=1))
    with pytest.raises(ValueError, match="unknown model_role"):
        predictions.save_predictions(engine, "m", _preds(d, [1], [1.0], role="canary"), d, d + timedelta(days=1))
    assert list(predictions.load_predictions(engine, "m")["prediction"]) == [1.0, 2.0]


# -- metrics and the rule ------------------------------------------------------------------------

def test_daily_and_rolling_rmspe_match_hand_computed_values(tmp_path):
    cfg = _cfg(tmp_path, **{"monitoring.rolling_window_days": 2})
    d1, d2, d3 = date(2025, 6, 1), date(2025, 6, 2), date(2025, 6, 3)
    preds = pd.concat([_preds(d1, ["a", "b"], [110.0, 180.0]), _preds(d2, ["a"], [70.0]), _preds(d3, ["a", "b"], [50.0, 1.0])])
    preds["logical_date"] = preds["ts"]
    # actuals landed for every row except b on d3 (still unknown); entity ids are ints in the source
    source = pd.DataFrame({"store": [1, 2, 1, 1, 2], "date": pd.to_datetime([d1, d1, d2, d3, d3]),
                           "sales": [100.0, 200.0, 100.0, 50.0, np.nan]})
    source["store"] = source["store"].map({1: "a", 2: "b"})
    joined = performance.join_actuals(cfg, preds, source)
    assert len(joined) == 4
    perf = performance.daily_performance(cfg, joined).set_index("logical_date")
    assert perf.loc[d1, "value"] == pytest.approx(0.1)  # errors +10 %, -10 %
    assert perf.loc[d2, "value"] == pytest.approx(0.3)
    assert perf.loc[d2, "rolling_value"] == pytest.approx(math.sqrt((0.01 + 0.01 + 0.09) / 3))  # pooled, not averaged
    assert perf.loc[d3, "value"] == pytest.approx(0.0) and perf.loc[d3, "n_rows"] == 1
    assert perf.loc[d3, "rolling_value"] == pytest.approx(math.sqrt(0.09 / 2)) and perf.loc[d3, "rolling_n_rows"] == 2
    assert perf.loc[d2, "metrics"]["mae"] == pytest.approx(30.0)


@pytest.mark.parametrize("mode,tol,value,degraded", [
    ("relative", 0.25, 0.1251, True), ("relative", 0.25, 0.1249, False), ("relative", 0.25, 0.125, False),
    ("absolute", 0.05, 0.151, True), ("absolute", 0.05, 0.149, False),
])
def test_lower_is_better_rule(tmp_path, mode, tol, value, degraded):
    cfg = _cfg(tmp_path, **{"monitoring.tolerance": tol, "monitoring.tolerance_mode": mode, "monitoring.min_rows": 10})
    v = performance.judge("rmspe", value, 10, 0.1, cfg)
    assert v.judged and v.degraded is degraded
    assert v.limit == pytest.approx(0.125 if mode == "relative" else 0.15)
    assert ("above the limit" in v.reason) is degraded


def test_higher_is_better_rule_and_unjudged_windows(tmp_path):
    cfg = _cfg(tmp_path, **{"monitoring.tolerance": 0.05, "monitoring.tolerance_mode": "absolute", "monitoring.min_rows": 30})
    raw = cfg.model_dump(exclude={"source_path", "config_hash"})
    raw["task"] = "classification"
    raw["evaluation"]["metric"] = "roc_auc"
    raw["training"]["target_transform"] = "none"
    cls = parse_config(raw)
    assert performance.judge("roc_auc", 0.74, 30, 0.80, cls).degraded
    assert not performance.judge("roc_auc", 0.76, 30, 0.80, cls).degraded
    few = performance.judge("roc_auc", 0.10, 29, 0.80, cls)
    assert not few.judged and not few.degraded and "only 29 labelled rows" in few.reason
    assert not performance.judge("roc_auc", 0.1, 100, None, cls).judged


def test_monitoring_config_is_strict(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'tolerance'"):
        _cfg(tmp_path, **{"monitoring.tolerence": 0.1})
    with pytest.raises(ConfigError, match="monitoring.tolerance_mode"):
        _cfg(tmp_path, **{"monitoring.tolerance_mode": "percent"})
    with pytest.raises(ConfigError, match="monitoring.tolerance"):
        _cfg(tmp_path, **{"monitoring.tolerance": -0.1})


# -- alerts ------------------------------------------------------------------------------------------

def test_alert_messages_say_what_which_version_the_numbers_and_links():
    a = alerts.build_alert("performance_degraded", "sales", {
        "degraded": True, "metric": "rmspe", "value": 0.31, "baseline": 0.08, "limit": 0.1, "model_version": "3",
        "day": "2025-06-05", "rolling_n_rows": 120, "rolling_window_days": 7, "shadow": {"model_version": "4", "rolling_value": 0.09}},
        airflow_url="http://af/dags/batch_predict_daily/runs/r1", mlflow_url="http://mlflow/#/experiments/1/runs/abc", key="k")
    text = a.text()
    assert "sales v3" in a.title and "0.3100" in text and "0.0800" in text and "0.1000" in text and "120" in text
    assert "shadow staging v4" in text and "http://af/dags/batch_predict_daily/runs/r1" in text and "runs/abc" in text
    assert a.payload()["modelops"]["severity"] == "critical" and a.day == "2025-06-05"
    assert "<a href=\"http://mlflow/#/experiments/1/runs/abc\">" in a.html()
    assert alerts.build_alert("gate_rejected", "sales", {"passed": True}) is None
    g = alerts.build_alert("gate_rejected", "sales", {"passed": False, "version": "2", "metric": "rmspe", "value": 0.2,
                                                      "threshold": 0.1, "reasons": ["rmspe 0.2 does not pass the threshold 0.1"]})
    assert "v2" in g.title and "does not pass the threshold" in g.text()
    t = alerts.build_alert("approval_timed_out", "sales", {"model_version": "5", "timeout_hours": 168.0})
    assert t.title == "Approval timed out: sales v5 was not promoted" and "within 168.0 h" in t.text()
    w = alerts.build_alert("approval_waiting", "sales", {"model_version": "5", "metric": "rmspe", "value": 0.05,
                                                          "production_version": "4", "production_value": 0.06,
                                                          "approvers": ["admin", "reviewer"], "timeout_hours": 24})
    assert "candidate rmspe 0.0500 vs production v4 0.0600" in w.text() and w.severity == "action"
    with pytest.raises(ValueError, match="unknown alert kind"):
        alerts.build_alert("coffee_empty", "sales", {})
    assert alerts.airflow_run_url("http://h/", "d", "manual__2025-01-01T00:00:00+00:00", "t") == \
        "http://h/dags/d/runs/manual__2025-01-01T00%3A00%3A00%2B00%3A00/tasks/t"


def test_alert_ledger_open_resolve_and_no_double_delivery(any_engine):
    engine = any_engine
    a = alerts.build_alert("drift_detected", "m", {"drift_ratio": 0.5, "drifted_features": ["x"], "day": "2025-06-03"}, key="run1/t")
    assert alerts.already_delivered(engine, a) is None
    alerts.record(engine, a, ["webhook"])
    alerts.record(engine, a, ["webhook"])  # a retry updates, never duplicates
    assert alerts.already_delivered(engine, a) == "webhook"
    g = alerts.build_alert("gate_rejected", "m", {"passed": False, "version": "1", "reasons": []}, key="run2/gate")
    alerts.record(engine, g, [])
    assert [x["kind"] for x in alerts.open_alerts(engine, "m")] == ["drift_detected"]  # gate rejections are informational
    assert alerts.resolve(engine, "m", ["drift_detected"], "no drift on 2025-06-04") == 1
    assert alerts.open_alerts(engine, "m") == []
    assert len(alerts.load_alerts(engine, "m", date(2025, 6, 1), date(2025, 6, 4))) == 1  # by data day; gate has none


# -- report ------------------------------------------------------------------------------------------

def _fill(engine, cfg, days: list[date]):
    """Ten days of everything the report shows: drift rows, production + shadow predictions, actuals, metrics, an alert."""
    from modelops.monitoring import drift_store
    from modelops.data import storage
    from modelops.monitoring.drift import ReferenceProfile, detect_drift

    rng = np.random.default_rng(0)
    num, cat = ["customers", "competition_distance"], ["store_type"]
    ref = pd.DataFrame({"customers": rng.normal(500, 50, 400), "competition_distance": rng.exponential(2000, 400),
                        "store_type": rng.choice(list("abcd"), 400)})
    profile = ReferenceProfile.from_frame(ref, num, cat, cfg.drift.psi_bins)
    for i, d in enumerate(days):
        shift = 0 if i < 6 else 80 * (i - 5)
        cur = pd.DataFrame({"customers": rng.normal(500 + shift, 50, 60), "competition_distance": rng.exponential(2000, 60),
                            "store_type": rng.choice(list("abcd"), 60)})
        drift_store.save_report(engine, detect_drift(profile, cur, cfg.drift, num, cat), cfg.model_name, d, model_version="1")
        actual = rng.uniform(2000, 8000, 40)
        err = 0.05 if i < 6 else 0.05 + 0.06 * (i - 5)
        part = pd.DataFrame({"date": pd.Timestamp(d), "store": np.arange(40), "sales": actual})
        storage.write_partition(part, cfg.data.path, "date", d)
        frame = pd.concat([_preds(d, range(40), actual * (1 + rng.normal(0, err, 40))),
                           _preds(d, range(40), actual * (1 + rng.normal(0, 0.04, 40)), "shadow", "2")])
        predictions.save_predictions(engine, cfg.model_name, frame, d, d + timedelta(days=1))
    preds = predictions.load_predictions(engine, cfg.model_name)
    source = storage.read_window(cfg, days[0], days[-1] + timedelta(days=1))
    perf = performance.daily_performance(cfg, performance.join_actuals(cfg, preds, source))
    performance.save_performance(engine, cfg, perf, {"1": 0.06, "2": 0.05})
    a = alerts.build_alert("performance_degraded", cfg.model_name, {"degraded": True, "metric": "rmspe", "value": 0.2,
                                                                    "baseline": 0.06, "limit": 0.075, "model_version": "1",
                                                                    "day": days[-1].isoformat()}, key="x")
    alerts.record(engine, a, ["webhook"])


def test_report_renders_every_section_for_a_multi_day_range(engine, tmp_path):
    cfg = _cfg(tmp_path, **{"monitoring.rolling_window_days": 3, "monitoring.min_rows": 20})
    days = [date(2025, 6, 1) + timedelta(days=i) for i in range(10)]
    _fill(engine, cfg, days)
    data = monitoring_report.collect(engine, cfg, days[0], days[-1] + timedelta(days=1))
    assert len(data.joined) == 800 and data.drift["logical_date"].nunique() == 10
    page = monitoring_report.render(data)
    for section in monitoring_report.SECTIONS:
        assert f'<section id="{section}">' in page, section
    assert page.count("data:image/png;base64,") == 4  # metric, predicted vs actual, drift history, PSI heat map
    assert "No labelled" not in page and "No drift checks" not in page
    perf = data.performance
    prod = perf[perf["model_role"] == "production"]
    assert prod["degraded"].iloc[-1] and not prod["degraded"].iloc[0]  # the injected decay is judged as such
    shadow_rows = page.split('<section id="shadow">')[1].split("</section>")[0]
    assert shadow_rows.count("<tr>") == 1 + 10 and "v2" in shadow_rows  # header + one row per day
    assert "Performance degraded" in page and page.count("DEGRADED") >= 1
    # an empty range still renders every section, and says why each is empty
    empty = monitoring_report.render(monitoring_report.collect(engine, cfg, date(2024, 1, 1), date(2024, 1, 8)))
    assert all(f'<section id="{s}">' in empty for s in monitoring_report.SECTIONS) and "data:image/png" not in empty
    with pytest.raises(ValueError, match="empty report range"):
        monitoring_report.collect(engine, cfg, days[1], days[0])


def test_report_cli_and_status_summary(tmp_path, capsys):
    import uuid

    from modelops.governance import status
    from modelops.__main__ import main

    name = f"mon_{uuid.uuid4().hex[:8]}"
    cfg = _cfg(tmp_path, model_name=name, **{"monitoring.rolling_window_days": 3, "monitoring.min_rows": 20})
    engine = db.get_engine()  # the default database the CLI uses
    db.migrate(engine)
    days = [date(2025, 6, 1) + timedelta(days=i) for i in range(10)]
    _fill(engine, cfg, days)
    out = tmp_path / "reports" / "june.html"
    assert main(["--config", cfg.source_path, "report", "--start", "2025-06-02", "--end", "2025-06-10", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    page = out.read_text()
    assert f"{name} monitoring 2025-06-02 to 2025-06-10" in page and page.count("data:image/png;base64,") == 4
    assert all(f'<section id="{s}">' in page for s in monitoring_report.SECTIONS)
    assert page.split('<section id="days">')[1].count("<tr") == 1 + 9  # the range is inclusive of --end
    assert main(["--config", cfg.source_path, "report", "--start", "2025-06-10", "--end", "2025-06-01", "--out", str(out)]) == 2
    assert "--end 2025-06-01 is before --start 2025-06-10" in capsys.readouterr().err

    text = status.render_table(status.collect(cfg))
    assert "live rmspe (rolling 3 d up to 2025-06-10)" in text
    assert "production v1:" in text and "DEGRADED" in text and "shadow     v2:" in text
    assert "open alerts: 1" in text and "Performance degraded" in text


def test_classification_metrics_rule_and_report(engine, tmp_path):
    """roc_auc (higher is better) with the churn config's absolute tolerance: a noisier second week degrades."""
    from modelops.data import storage

    cfg = load_config(write_config(tmp_path / "cfg", base="churn.yaml", **{"data.path": str(tmp_path / "data"),
                                                                             "monitoring.min_rows": 100}))
    assert cfg.monitoring.tolerance_mode == "absolute" and cfg.monitoring.tolerance == 0.05
    rng = np.random.default_rng(1)
    days = [date(2025, 6, 1) + timedelta(days=i) for i in range(14)]
    ent, ts, tgt = cfg.data.entity_column, cfg.data.timestamp_column, cfg.data.target_column
    for i, d in enumerate(days):
        p = rng.uniform(0, 1, 200)
        y = (rng.uniform(0, 1, 200) < np.clip(p + rng.normal(0, 0.1 if i < 7 else 0.6, 200), 0, 1)).astype(int)
        storage.write_partition(pd.DataFrame({ts: pd.Timestamp(d), ent: np.arange(200), tgt: y}), cfg.data.path, "date", d)
        predictions.save_predictions(engine, cfg.model_name, _preds(d, range(200), p), d, d + timedelta(days=1))
    joined = performance.join_actuals(cfg, predictions.load_predictions(engine, cfg.model_name),
                                     storage.read_window(cfg, days[0], days[-1] + timedelta(days=1)))
    perf = performance.daily_performance(cfg, joined)
    from sklearn.metrics import roc_auc_score

    first = joined[joined["logical_date"] == pd.Timestamp(days[0])]
    assert perf["value"].iloc[0] == pytest.approx(roc_auc_score(first["actual"], first["prediction"]))
    performance.save_performance(engine, cfg, perf, {"1": 0.85})
    stored = performance.load_performance(engine, cfg.model_name)
    assert np.allclose(stored["limit_value"], 0.80)
    assert not stored["degraded"].iloc[:7].any() and stored["degraded"].iloc[-1]
    page = monitoring_report.render_range(engine, cfg, days[0], days[-1] + timedelta(days=1))
    assert all(f'<section id="{s}">' in page for s in monitoring_report.SECTIONS)
    assert page.count("data:image/png;base64,") == 2 and "No drift checks stored" in page  # drift DAG never ran here
