"""The DAGs on event data from 2013: bike-share trips, many per station and hour, one parquet file per month.

* ``retrain_weekly`` trains on the 2013 data as it is: the run's logical date is after the DAG's
  start (2023-01-01) and the window comes from the ``training_start``/``training_end`` params.
* ``drift_daily`` and ``batch_predict_daily`` take their window from the data interval, and a
  logical date before the DAG's start runs nothing (issue 18, "Dates": the fleet work makes the
  start date come from the config). Until then these tests copy the same trips 626 whole weeks
  forward (2013 -> 2024/2025, weekdays kept), in the test only, and run those days.
* Hostile days fail at the first try, say why, and store nothing: text in a numeric column, and a
  day with no rows (drift and batch follow the same rule, ``monitoring.on_empty_day``).
"""

from __future__ import annotations

import os
import uuid
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelops import db
from modelops.data import storage
from modelops.data.sample_data import generate_trips, write_dataset
from modelops.governance import registry
from modelops.monitoring import performance, predictions
from tests.conftest import write_config
from tests.runs.conftest import Reviewer, load_dag, states, utc

pytestmark = pytest.mark.dagrun

SHIFT = timedelta(weeks=626)  # 2013-01-01 (Tue) -> 2024-12-31 (Tue)
DAY, BAD_DAY, EMPTY_DAY = date(2025, 6, 9), date(2025, 6, 11), date(2025, 6, 12)  # shifted days (2013-06-10, -12, -13)


def _tries(dr) -> dict[str, tuple[int, str]]:
    return {ti.task_id: (ti.try_number, str(ti.state)) for ti in dr.get_task_instances()}


def _next(day: date) -> str:
    return (day + timedelta(days=1)).isoformat()  # the run whose data interval is [day, day + 1)


@pytest.fixture(scope="module")
def trips_model(api_app, fast_hp_file, tmp_path_factory):
    """One trips model, trained and approved on 2013 data; configs for the shifted copies."""
    root = tmp_path_factory.mktemp("trips")
    name = f"trips_{uuid.uuid4().hex[:8]}"
    trips = generate_trips(date(2013, 1, 1), date(2013, 7, 1), n_stations=20, seed=13)

    def config(folder: str, **extra) -> Path:
        return write_config(root / f"cfg-{folder}-{len(extra)}", "trips.yaml", model_name=name, **{
            "mlflow.experiment": name, "training.hyperparameters_file": str(fast_hp_file),
            "data.path": str(root / folder / "trips-*.parquet"), **extra})

    from modelops.config import load_config

    paths = {"2013": config("2013"), "shifted": config("shifted"), "bad": config("bad"),
             "bad_skip": config("bad", **{"monitoring.on_empty_day": "skip"})}
    write_dataset(trips, load_config(paths["2013"]))
    shifted = trips.assign(started_at=trips["started_at"] + SHIFT)
    write_dataset(shifted, load_config(paths["shifted"]))
    bad = shifted[shifted["started_at"].dt.date != EMPTY_DAY].copy()
    bad["distance_km"] = bad["distance_km"].astype(str)
    on_bad_day = np.flatnonzero((bad["started_at"].dt.date == BAD_DAY).to_numpy())[[3, 8]]
    bad.iloc[on_bad_day, bad.columns.get_loc("distance_km")] = ["n/a", "unknown"]
    write_dataset(bad, load_config(paths["bad"]))

    before = os.environ.get("MODELOPS_CONFIG")
    os.environ["MODELOPS_CONFIG"] = str(paths["2013"])
    reviewer = Reviewer(api_app, name, [("reviewer", True, "trips model on 2013 events")])
    reviewer.start()
    try:
        dr = load_dag("retrain_weekly").test(logical_date=utc("2025-06-01"),
                                              run_conf={"training_start": "2013-02-01", "training_end": "2013-06-01"})
    finally:
        reviewer.run_done.set()
        reviewer.join(60)
    yield {"name": name, "paths": paths, "trips": trips, "shifted": shifted, "retrain": dr, "reviewer": reviewer}
    if before is None:
        os.environ.pop("MODELOPS_CONFIG", None)
    else:
        os.environ["MODELOPS_CONFIG"] = before


def _use(monkeypatch, trips_model, which: str):
    from modelops.config import load_config

    monkeypatch.setenv("MODELOPS_CONFIG", str(trips_model["paths"][which]))
    return load_config(trips_model["paths"][which])


def test_retrain_on_2013_events_and_the_model_scores_raw_event_rows(trips_model, monkeypatch):
    dr, name = trips_model["retrain"], trips_model["name"]
    assert trips_model["reviewer"].error is None, trips_model["reviewer"].error
    assert str(dr.state) == "success", states(dr)
    (v,) = registry.versions(name)
    assert registry.alias_version(name, "production") == str(v.version)
    tags = registry.get_version(name, v.version).tags
    assert tags["modelops.training_window"] == "[2013-02-01, 2013-06-01)"
    run = registry.client().get_run(v.run_id)
    features = run.data.params["features"]
    assert "cal_hour" in features and "target_lag_7" in features and "target_roll_mean_28" in features

    import mlflow

    trips = trips_model["trips"]
    june = trips[(trips.started_at >= "2013-06-01") & (trips.started_at < "2013-06-04")].drop(columns=["duration_min", "is_long"])
    assert june.duplicated(["station_id", "started_at"]).any()  # raw events, several per station and hour
    pred = np.asarray(mlflow.pyfunc.load_model(f"models:/{name}@production").predict(june))
    assert len(pred) == len(june) and np.isfinite(pred).all() and (pred > 0).all()


def test_drift_and_batch_on_event_days(trips_model, monkeypatch):
    cfg = _use(monkeypatch, trips_model, "shifted")
    drift = load_dag("drift_daily").test(logical_date=utc(_next(DAY)))
    st = states(drift)
    assert st["validate_current"] == "success" and st["detect_drift"] == "success", st

    batch = load_dag("batch_predict_daily").test(logical_date=utc(_next(DAY)))
    st = states(batch)
    assert st["score_batch"] == "success" and st["evaluate_performance"] == "success", st
    rows = predictions.load_predictions(db.get_engine(), cfg.model_name, DAY, DAY + timedelta(days=1))
    day_rows = trips_model["shifted"][trips_model["shifted"]["started_at"].dt.date == DAY]
    assert len(rows) == len(day_rows) and set(rows["model_role"]) == {"production"}
    assert not rows.duplicated(["entity", "ts"]).any() and rows["entity"].str.contains("#").any()  # repeats numbered
    perf = performance.load_performance(db.get_engine(), cfg.model_name, DAY, DAY + timedelta(days=1))
    (p,) = perf.itertuples()
    assert p.n_rows == len(day_rows)  # every event's actual found its own prediction
    assert p.value < 2 * float(registry.get_version(cfg.model_name, registry.alias_version(cfg.model_name, "production")).tags["metric.mae"])


def test_hostile_event_days_fail_at_the_first_try_say_why_and_store_nothing(trips_model, monkeypatch, capfd):
    cfg = _use(monkeypatch, trips_model, "bad")
    engine = db.get_engine()
    # text in a numeric column: drift and batch both refuse the day, without retries
    drift = load_dag("drift_daily").test(logical_date=utc(_next(BAD_DAY)))
    assert _tries(drift)["validate_current"] == (1, "failed"), _tries(drift)
    batch = load_dag("batch_predict_daily").test(logical_date=utc(_next(BAD_DAY)))
    assert _tries(batch)["score_batch"] == (1, "failed"), _tries(batch)
    assert predictions.load_predictions(engine, cfg.model_name, BAD_DAY, BAD_DAY + timedelta(days=1)).empty
    assert not storage.exists(predictions.predictions_path(cfg, BAD_DAY))
    out = capfd.readouterr()
    text = out.out + out.err
    assert "expect_column_values_to_be_numeric on distance_km" in text and "'n/a'" in text and "'unknown'" in text
    assert "not retried: fix the config or the data" in text

    # a day with no rows: one rule for both DAGs (default: fail at once, saying why)
    why = f"no rows with started_at in [{EMPTY_DAY}, {EMPTY_DAY + timedelta(days=1)})"
    drift = load_dag("drift_daily").test(logical_date=utc(_next(EMPTY_DAY)))
    batch = load_dag("batch_predict_daily").test(logical_date=utc(_next(EMPTY_DAY)))
    assert _tries(drift)["validate_current"] == (1, "failed") and _tries(batch)["score_batch"] == (1, "failed")
    out = capfd.readouterr()
    assert (out.out + out.err).count(why) >= 2, why

    # ... or, with monitoring.on_empty_day: skip, both skip with the reason
    _use(monkeypatch, trips_model, "bad_skip")
    drift = load_dag("drift_daily").test(logical_date=utc(_next(EMPTY_DAY)))
    batch = load_dag("batch_predict_daily").test(logical_date=utc(_next(EMPTY_DAY)))
    assert states(drift)["validate_current"] == "skipped" and states(drift)["detect_drift"] == "skipped", states(drift)
    assert states(batch)["score_batch"] == "skipped", states(batch)
    out = capfd.readouterr()
    assert "skipped (monitoring.on_empty_day: skip)" in out.out + out.err
    assert predictions.load_predictions(engine, cfg.model_name, EMPTY_DAY, EMPTY_DAY + timedelta(days=1)).empty
