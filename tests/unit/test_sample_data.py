"""The sample generators: deterministic, realistic enough, drift only after its start."""

from __future__ import annotations

from datetime import date

import pandas as pd

from modelops.config import load_config
from modelops.data.sample_data import generate_churn, generate_store_sales, write_dataset
from modelops.data.storage import list_partitions, read_window


def test_store_sales_deterministic_and_shaped():
    a = generate_store_sales(date(2024, 1, 1), date(2024, 3, 1), n_stores=10, seed=1)
    b = generate_store_sales(date(2024, 1, 1), date(2024, 3, 1), n_stores=10, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(generate_store_sales(date(2024, 1, 1), date(2024, 3, 1), n_stores=10, seed=2))
    assert len(a) == 60 * 10 and (a["sales"] > 0).all() and (a["customers"] > 0).all()
    assert set(a["store_type"]) <= set("abcd") and set(a["state_holiday"]) <= {"0", "a", "b", "c"}
    assert a.loc[a.date == "2024-01-01", "state_holiday"].eq("a").all()
    by_dow = a.groupby(a.date.dt.dayofweek)["sales"].mean()
    assert by_dow[0] > by_dow[6] * 1.3  # Monday well above Sunday
    assert a.groupby("promo")["sales"].mean()[1] > a.groupby("promo")["sales"].mean()[0]


def test_drift_changes_inputs_and_relationship_only_after_start():
    kw = dict(start=date(2025, 5, 1), end=date(2025, 9, 1), n_stores=30, seed=4)
    base, drifted = generate_store_sales(**kw), generate_store_sales(**kw, drift_start=date(2025, 7, 1))
    before = base.date < "2025-07-01"
    pd.testing.assert_frame_equal(base[before], drifted[before])
    after = drifted.date >= "2025-07-10"
    assert drifted.loc[after, "customers"].mean() > 1.2 * base.loc[after, "customers"].mean()
    assert drifted.loc[after, "competition_distance"].mean() < 0.5 * base.loc[after, "competition_distance"].mean()
    spend = lambda df: (df.sales / df.customers).mean()  # noqa: E731
    assert spend(drifted[after]) < 0.85 * spend(base[after])


def test_churn_binary_and_balanced():
    c = generate_churn(date(2025, 1, 1), date(2025, 2, 1), n_per_day=50, seed=3)
    assert set(c["churned"].unique()) == {0, 1} and 0.15 < c["churned"].mean() < 0.45
    assert c.groupby("contract")["churned"].mean()["month_to_month"] > c.groupby("contract")["churned"].mean()["two_year"]


def test_write_dataset_one_partition_per_day_and_rerun_overwrites(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELOPS_DATA_ROOT", str(tmp_path))
    cfg = load_config()
    df = generate_store_sales(date(2025, 1, 1), date(2025, 1, 11), n_stores=5)
    assert write_dataset(df, cfg) == 10
    assert write_dataset(df, cfg) == 10
    assert len(list_partitions(cfg)) == 10
    back = read_window(cfg, date(2025, 1, 1), date(2025, 1, 11))
    assert len(back) == len(df)
    assert len(read_window(cfg, date(2025, 1, 3), date(2025, 1, 5))) == 10


def test_trips_are_events_from_2013_with_hourly_values_shared_within_the_hour():
    from modelops.data.sample_data import generate_trips

    a = generate_trips(date(2013, 1, 1), date(2013, 2, 1), n_stations=10, seed=1)
    pd.testing.assert_frame_equal(a, generate_trips(date(2013, 1, 1), date(2013, 2, 1), n_stations=10, seed=1))
    assert a["started_at"].min() >= pd.Timestamp("2013-01-01") and a["started_at"].max() < pd.Timestamp("2013-02-01")
    per_station_day = a.groupby([a.started_at.dt.date, "station_id"]).size()
    assert per_station_day.mean() > 5 and a.duplicated(["station_id", "started_at"]).any()  # many rows per key, day and hour
    assert a.groupby("started_at")[["temperature", "humidity", "weather"]].nunique().max().max() == 1  # one value per hour
    assert (a["duration_min"] > 0).all() and set(a["is_long"]) <= {0, 1}
    assert a.groupby("rider_type")["duration_min"].mean()["casual"] > a.groupby("rider_type")["duration_min"].mean()["member"]
    drifted = generate_trips(date(2013, 1, 1), date(2013, 3, 1), n_stations=10, seed=1, drift_start=date(2013, 2, 1))
    base = generate_trips(date(2013, 1, 1), date(2013, 3, 1), n_stations=10, seed=1)
    before = base.started_at < "2013-02-01"
    pd.testing.assert_frame_equal(base[before], drifted[drifted.started_at < "2013-02-01"])
    late = drifted.started_at >= "2013-02-10"
    assert drifted.loc[late, "distance_km"].mean() > 1.25 * base.loc[base.started_at >= "2013-02-10", "distance_km"].mean()


def test_generate_for_config_picks_the_trips_for_the_trips_config(tmp_path, monkeypatch):
    from pathlib import Path

    from modelops.data.sample_data import generate_for_config

    monkeypatch.setenv("MODELOPS_DATA_ROOT", str(tmp_path))
    cfg = load_config(Path(__file__).resolve().parents[2] / "include" / "config" / "trips.yaml")
    df = generate_for_config(cfg, date(2013, 1, 1), date(2013, 3, 1), seed=2)
    assert {"started_at", "station_id", "duration_min"} <= set(df.columns)
    assert write_dataset(df, cfg) == 2  # one file per month
    assert sorted(p.name for p in (tmp_path / "trips").iterdir()) == ["trips-2013-01.parquet", "trips-2013-02.parquet"]
    assert len(read_window(cfg, date(2013, 1, 1), date(2013, 3, 1))) == len(df)
