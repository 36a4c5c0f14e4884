"""Event data: many rows per entity and timestamp, an optional entity, the stated aggregation rule.

Rule (README "Bring your own data"): the rows of one entity on one calendar day become one value
(``features.target_aggregation``); ``target_lag_k`` of a row on day d is that value on day d - k;
``target_roll_mean_w`` the mean of the values on days [d - horizon - w + 1, d - horizon] that have
rows. The row's own day is never read. Uniqueness of (entity, timestamp) is required only by
``last``. The panel behaviour (one row per entity and day) is unchanged.
"""

from __future__ import annotations

import math
import uuid
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelops.config import load_config
from modelops.data.features import FeatureBuilder
from modelops.data.sample_data import generate_store_sales, generate_trips
from modelops.data.shapes import row_keys
from modelops.data.validation import validate_frame
from tests.conftest import write_config

D = pd.Timestamp("2013-01-01")


def _events() -> pd.DataFrame:
    """Station 1: three trips on day 0 (hours 8, 8, 17), one on day 1; station 2: two on day 0; day 8 rows to score."""
    rows = [(D + pd.Timedelta(hours=8), 1, 1.0), (D + pd.Timedelta(hours=8), 1, 2.0), (D + pd.Timedelta(hours=17), 1, 6.0),
            (D + pd.Timedelta(days=1, hours=9), 1, 4.0), (D + pd.Timedelta(hours=10), 2, 10.0), (D + pd.Timedelta(hours=10), 2, 30.0),
            (D + pd.Timedelta(days=7, hours=12), 1, 5.0), (D + pd.Timedelta(days=7, hours=12), 1, 7.0),
            (D + pd.Timedelta(days=8, hours=7), 1, 99.0), (D + pd.Timedelta(days=8, hours=7), 2, 99.0)]
    return pd.DataFrame(rows, columns=["started_at", "station_id", "duration_min"]).assign(distance_km=1.0)


def _builder(how: str, entity: str | None = "station_id", **kw) -> FeatureBuilder:
    return FeatureBuilder(timestamp="started_at", entity=entity, target="duration_min", numeric=["distance_km"], categorical=[],
                          horizon_days=1, target_lags=[1, 7, 8], target_rolling_windows=[2, 8], target_aggregation=how,
                          entity_as_feature=entity is not None, **kw)


@pytest.mark.parametrize("how,lag8_s1,lag8_s2,lag7_s1", [
    ("mean", 3.0, 20.0, 4.0), ("sum", 9.0, 40.0, 4.0), ("count", 3.0, 2.0, 1.0), ("min", 1.0, 10.0, 4.0), ("max", 6.0, 30.0, 4.0),
    ("last", 6.0, 30.0, 4.0),  # last = the latest timestamp of the day; a tie keeps the later row
])
def test_lags_aggregate_each_entity_day_by_the_stated_rule(how, lag8_s1, lag8_s2, lag7_s1):
    df = _events()
    X = _builder(how).fit(df).transform(df, use_history=False)
    s1, s2 = df.index[8], df.index[9]  # the rows of day 8
    assert X.loc[s1, "target_lag_8"] == lag8_s1 and X.loc[s2, "target_lag_8"] == lag8_s2
    assert X.loc[s1, "target_lag_7"] == lag7_s1 and math.isnan(X.loc[s2, "target_lag_7"])  # station 2 had no trip on day 1
    # lag 1 of day 8 is day 7: station 1's two trips there, aggregated the same way
    day7 = {"mean": 6.0, "sum": 12.0, "count": 2.0, "min": 5.0, "max": 7.0, "last": 7.0}[how]
    assert X.loc[s1, "target_lag_1"] == day7
    # rolling window 8 ending horizon (1) day back = days 0..7: the mean over the days that have trips (0, 1, 7)
    assert X.loc[s1, "target_roll_mean_8"] == pytest.approx(np.mean([lag8_s1, lag7_s1, day7]))
    # the row's own day never counts: changing day 8's targets changes none of day 8's features
    poisoned = df.assign(duration_min=np.where(df.started_at.dt.day == 9, 1e6, df.duration_min))
    pd.testing.assert_frame_equal(X.loc[[s1, s2]], _builder(how).fit(df).transform(poisoned, use_history=False).loc[[s1, s2]])


def test_no_entity_aggregates_all_rows_of_a_day():
    df = _events()
    b = _builder("mean", entity=None).fit(df)
    X = b.transform(df, use_history=False)
    assert "entity_code" not in X.columns
    assert X.loc[8, "target_lag_8"] == pytest.approx(np.mean([1.0, 2.0, 6.0, 10.0, 30.0]))
    assert X.loc[9, "target_lag_8"] == X.loc[8, "target_lag_8"]  # one series: both rows of day 8 read the same day


def test_intraday_timestamps_add_the_hour_and_panels_do_not():
    assert "cal_hour" in _builder("mean").fit(_events()).feature_names
    panel = generate_store_sales(date(2025, 1, 1), date(2025, 2, 1), n_stores=3, seed=1)
    b = FeatureBuilder(timestamp="date", entity="store", target="sales", numeric=["customers"], categorical=[]).fit(panel)
    assert "cal_hour" not in b.feature_names


def _messy_events(rng, n_stations: int, days: int, entity: bool) -> pd.DataFrame:
    """Many rows per station, day and hour, gaps, missing targets, shuffled."""
    n = n_stations * days * 6
    df = pd.DataFrame({"started_at": pd.Timestamp("2013-01-01") + pd.to_timedelta(rng.integers(0, days * 24, n), unit="h"),
                       "station_id": rng.integers(1, n_stations + 1, n),
                       "duration_min": np.where(rng.random(n) < 0.1, np.nan, rng.gamma(2.0, 6.0, n)), "distance_km": 1.0})
    return df if entity else df.drop(columns=["station_id"])


@pytest.mark.parametrize("how", ["mean", "sum", "count", "min", "max", "last"])
@pytest.mark.parametrize("entity", [True, False])
def test_keyed_path_equals_indexed_for_every_aggregation(how, entity):
    rng = np.random.default_rng(len(how) + entity)
    train = _messy_events(rng, 6, 50, entity)
    b = _builder(how, entity="station_id" if entity else None).fit(train)
    later = _messy_events(rng, 8, 70, entity)  # overlaps the kept history, new stations
    for frame, use_history in [(train, False), (train, True), (later, True), (later.drop(columns=["duration_min"]), True)]:
        day = pd.to_datetime(frame["started_at"]).dt.normalize()
        fast = b._target_history_features(frame, day, use_history, np.float64)
        slow = b._target_history_features_indexed(frame, day, use_history, np.float64)
        for k in fast:
            np.testing.assert_allclose(fast[k], slow[k], rtol=1e-12, err_msg=f"{how} {k}")


def test_serving_raw_event_rows_sees_the_features_training_saw():
    """The pyfunc's feature builder on raw event rows of later days (no target): the same lags as over the whole history."""
    trips = generate_trips(date(2013, 1, 1), date(2013, 3, 1), n_stations=6, seed=4)
    cut = pd.Timestamp("2013-02-20")
    cfg = load_config(write_config(Path("/tmp") / f"ev-{uuid.uuid4().hex[:6]}", "trips.yaml"))
    b = FeatureBuilder.from_config(cfg).fit(trips[trips.started_at < cut])
    future = trips[trips.started_at >= cut].drop(columns=["duration_min"])
    served = b.transform(future)  # lags only from the history kept at fit time
    full = FeatureBuilder.from_config(cfg).fit(trips).transform(trips, use_history=False).loc[future.index]
    lag_cols = [c for c in served.columns if c.startswith("target_lag_7")]
    early = (future.started_at < cut + pd.Timedelta(days=7)).to_numpy()  # lag 7 still reaches back into the history
    pd.testing.assert_frame_equal(served.loc[early, lag_cols], full.loc[early, lag_cols])
    assert served.loc[early, "target_lag_7"].notna().all()


def test_row_keys_are_the_entity_for_a_panel_and_numbered_for_repeats():
    panel = generate_store_sales(date(2025, 1, 1), date(2025, 1, 3), n_stores=3, seed=1)
    cfg = load_config()
    assert list(row_keys(panel, cfg)) == [str(s) for s in panel["store"]]
    ev = _events()
    ecfg = load_config(write_config(Path("/tmp") / f"ev-{uuid.uuid4().hex[:6]}", "trips.yaml"))
    keys = list(row_keys(ev, ecfg))
    assert keys[:3] == ["1", "1#1", "1"] and keys[4:6] == ["2", "2#1"] and len(set(zip(keys, ev.started_at))) == len(ev)
    none = load_config(write_config(Path("/tmp") / f"ev-{uuid.uuid4().hex[:6]}", "trips.yaml", **{"data.entity_column": None,
                                                                                                     "features.entity_as_feature": False}))
    assert list(row_keys(ev, none))[:3] == ["#0", "#1", "#0"]


def test_uniqueness_is_required_only_where_a_feature_needs_it(tmp_path):
    trips = generate_trips(date(2013, 3, 1), date(2013, 3, 8), n_stations=5, seed=2)
    assert trips.duplicated(["station_id", "started_at"]).any()
    span = (datetime(2013, 3, 1), datetime(2013, 3, 8))
    mean_cfg = load_config(write_config(tmp_path / "a", "trips.yaml"))
    assert mean_cfg.unique_key is None and validate_frame(trips, mean_cfg, *span).success
    last_cfg = load_config(write_config(tmp_path / "b", "trips.yaml", **{"features.target_aggregation": "last"}))
    text = validate_frame(trips, last_cfg, *span).summary()
    assert "expect_compound_columns_to_be_unique on station_id, started_at" in text
    assert "for event data with many rows per key set features.target_aggregation to mean, sum or count" in text
    no_lags = load_config(write_config(tmp_path / "c", "trips.yaml", **{"features.target_aggregation": "last", "features.target_lags": [],
                                                                        "features.target_rolling_windows": []}))
    assert validate_frame(trips, no_lags, *span).success  # no feature reads "the" value: duplicates are fine
    asked = load_config(write_config(tmp_path / "d", "trips.yaml", **{"validation.unique_columns": ["station_id", "started_at"]}))
    assert not validate_frame(trips, asked, *span).success
    panel_cfg = load_config()
    assert panel_cfg.unique_key == ["store", "date"]  # the demo's panel keeps its one-row-per-store-and-day rule


def test_no_entity_column_validates_builds_features_and_signs_the_model(tmp_path):
    """data.entity_column left out: no key column is required, lags are daily aggregates over all rows."""
    from modelops.lifecycle import _signature

    trips = generate_trips(date(2013, 3, 1), date(2013, 3, 25), n_stations=4, seed=6).drop(columns=["station_id"])
    cfg = load_config(write_config(tmp_path, "trips.yaml", **{"data.entity_column": None}))
    assert cfg.data.entity_column is None and "station_id" not in cfg.required_columns
    assert validate_frame(trips, cfg, datetime(2013, 3, 1), datetime(2013, 3, 25)).success
    b = FeatureBuilder.from_config(cfg)
    assert not b.entity_as_feature  # nothing to encode
    X = b.fit(trips).transform(trips, use_history=False)
    day = trips.started_at.dt.normalize()
    d = pd.Timestamp("2013-03-20")
    want = trips.loc[day == d - pd.Timedelta(days=7), "duration_min"].mean()
    np.testing.assert_allclose(X.loc[(day == d).to_numpy(), "target_lag_7"], want, rtol=1e-6)  # float32 features
    assert [c.name for c in _signature(cfg, trips).inputs.inputs][:2] == ["started_at", "distance_km"]
