"""Data shapes by config: day folders or files (one file, a glob), parquet or CSV, local or s3://.

The demo's panel (store sales) and the event data (bike-share trips, 2013) both go through every
layout; CSV keeps the dtypes the config implies; the parquet window is pushed down to pyarrow.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelops.config import ConfigError, load_config, parse_config
from modelops.data import sources, storage
from modelops.data.sample_data import generate_store_sales, generate_trips, write_dataset
from modelops.data.validation import validate_frame
from tests.conftest import write_config

P_START, P_END = date(2025, 3, 1), date(2025, 3, 15)
E_START, E_END = date(2013, 3, 1), date(2013, 3, 15)


@pytest.fixture(scope="module")
def panel():
    return generate_store_sales(P_START, P_END, n_stores=12, seed=5)


@pytest.fixture(scope="module")
def events():
    return generate_trips(E_START, E_END, n_stations=8, seed=3)


def _cfg(tmp_path: Path, base: str = "store_sales.yaml", **overrides):
    name = f"src_{uuid.uuid4().hex[:8]}"
    return load_config(write_config(tmp_path / f"cfg-{name}", base, model_name=name, **{"mlflow.experiment": name, **overrides}))


def _trips_cfg(tmp_path: Path, path: str, **overrides):
    return _cfg(tmp_path, "trips.yaml", **{"data.path": path, **overrides})


def _same_rows(a: pd.DataFrame, b: pd.DataFrame, keys: list[str]) -> None:
    a = a.sort_values(keys, kind="stable").reset_index(drop=True)
    b = b.sort_values(keys, kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(a[list(b.columns)], b, check_dtype=False)


# -- layouts x formats ----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_files_layout_reads_a_glob_and_a_single_file(tmp_path, events, fmt):
    glob = _trips_cfg(tmp_path, str(tmp_path / "g" / f"trips-*.{fmt}"), **{"data.format": fmt})
    assert write_dataset(events, glob) == 1  # one month -> one file (a glob of one)
    one = _trips_cfg(tmp_path, str(tmp_path / "one" / f"all.{fmt}"), **{"data.format": fmt})
    write_dataset(events, one)
    want = events[(events.started_at >= "2013-03-04") & (events.started_at < "2013-03-06")]
    for cfg in (glob, one):
        got = storage.read_window(cfg, date(2013, 3, 4), date(2013, 3, 6))
        assert len(got) == len(want) and got["started_at"].min() >= pd.Timestamp("2013-03-04")
        _same_rows(got, want, ["started_at", "station_id", "duration_min"])
        assert pd.api.types.is_datetime64_any_dtype(got["started_at"])


def test_partitioned_and_files_layouts_read_the_same_rows(tmp_path, events):
    part = _trips_cfg(tmp_path, str(tmp_path / "p"), **{"data.layout": "partitioned"})
    files = _trips_cfg(tmp_path, str(tmp_path / "f" / "*.parquet"))
    write_dataset(events, part)
    write_dataset(events, files)
    a, b = storage.read_window(part, date(2013, 3, 2), date(2013, 3, 9)), storage.read_window(files, date(2013, 3, 2), date(2013, 3, 9))
    _same_rows(a, b, ["started_at", "station_id", "duration_min", "distance_km"])


def test_parquet_window_is_pushed_down_only_the_needed_row_groups_are_read(monkeypatch, tmp_path):
    """Through an fsspec file system (as on s3://): the bytes of row data read for one day of six weeks,
    against all days (the footer, read once per file, is left out of both)."""
    from fsspec.implementations.memory import MemoryFile

    trips = generate_trips(date(2013, 3, 1), date(2013, 4, 12), n_stations=20, seed=3)
    cfg = _trips_cfg(tmp_path, f"memory://pushdown-{uuid.uuid4().hex[:6]}/trips.parquet")
    write_dataset(trips, cfg)  # one file, a row group per day
    size = sources._fs(cfg.data.path)[0].size(sources._fs(cfg.data.path)[1])
    reads: list[tuple[int, int]] = []
    orig = MemoryFile.read

    def counting(self, *a):
        at = self.tell()
        out = orig(self, *a)
        reads.append((at, len(out)))
        return out

    monkeypatch.setattr(MemoryFile, "read", counting)

    def row_bytes() -> int:
        n = sum(k for at, k in reads if at + k < size)  # reads that end at the end of the file are the footer
        reads.clear()
        return n

    one_day = storage.read_window(cfg, date(2013, 3, 7), date(2013, 3, 8))
    day_bytes = row_bytes()
    every_day = storage.read_window(cfg, date(2013, 3, 1), date(2013, 4, 12))
    all_bytes = row_bytes()
    assert len(one_day) == int((trips.started_at.dt.date == date(2013, 3, 7)).sum()) and len(every_day) == len(trips)
    assert 0 < day_bytes * 10 < all_bytes, (day_bytes, all_bytes)


def test_demo_panel_saved_as_csv_validates_with_its_string_categories(tmp_path, panel):
    """Issue 19: state_holiday "0" read back as an integer failed validation; categorical features are read as text."""
    for layout, path in (("partitioned", str(tmp_path / "csv-days")), ("files", str(tmp_path / "csv-files" / "sales-*.csv"))):
        cfg = _cfg(tmp_path, **{"data.format": "csv", "data.layout": layout, "data.path": path})
        write_dataset(panel, cfg)
        df = storage.read_window(cfg, P_START, P_END)
        assert set(df["state_holiday"].unique()) <= {"0", "a", "b", "c"} and "0" in set(df["state_holiday"])
        assert pd.api.types.is_integer_dtype(df["customers"]) and pd.api.types.is_float_dtype(df["competition_distance"])
        result = validate_frame(df, cfg, datetime(2025, 3, 1), datetime(2025, 3, 15))
        assert result.success, result.summary()


def test_csv_na_values_are_configurable(tmp_path, panel):
    cfg = _cfg(tmp_path, **{"data.format": "csv"})
    bad = panel.copy()
    bad["competition_distance"] = bad["competition_distance"].astype(object)
    bad.loc[[3, 40], "competition_distance"] = "NA"
    write_dataset(bad, cfg)
    df = storage.read_window(cfg, P_START, P_END)
    text = validate_frame(df, cfg, datetime(2025, 3, 1), datetime(2025, 3, 15)).summary()
    assert "expect_column_values_to_be_numeric on competition_distance" in text and "2 non-numeric values" in text and "'NA'" in text
    ok = _cfg(tmp_path, **{"data.format": "csv", "data.path": cfg.data.path, "data.na_values": ["", "NA"]})
    df = storage.read_window(ok, P_START, P_END)
    assert df["competition_distance"].isna().sum() == 2 and pd.api.types.is_float_dtype(df["competition_distance"])
    assert validate_frame(df, ok, datetime(2025, 3, 1), datetime(2025, 3, 15)).success


def test_layout_typo_gets_a_did_you_mean():
    raw = load_config().model_dump(mode="json", exclude={"source_path", "config_hash"})
    raw["data"]["layout"] = "file"
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "mine.yaml")
    assert "data.layout: Input should be 'partitioned' or 'files' (did you mean 'files'?)" in str(info.value)


def test_wrong_layout_for_the_path_says_which_to_use(tmp_path, events):
    files = _trips_cfg(tmp_path, str(tmp_path / "f" / "*.parquet"))
    write_dataset(events, files)
    as_folders = _trips_cfg(tmp_path, sorted(map(str, (tmp_path / "f").glob("*.parquet")))[0], **{"data.layout": "partitioned"})
    with pytest.raises(storage.DataError, match="is a file, but data.layout is 'partitioned'.*set data.layout: files"):
        storage.read_window(as_folders, E_START, E_END)
    as_files = _trips_cfg(tmp_path, str(tmp_path / "f"))
    with pytest.raises(storage.DataError, match=r"is a folder, but data.layout is 'files': give a file or a glob \(e.g\. .*/f/\*\.parquet\)"):
        storage.read_window(as_files, E_START, E_END)
    nothing = _trips_cfg(tmp_path, str(tmp_path / "f" / "*.csv"))
    with pytest.raises(storage.DataError, match=r"no files match .*/f/\*\.csv \(data.path, layout files\)"):
        storage.read_window(nothing, E_START, E_END)


def test_files_whose_schemas_disagree_are_combined_and_a_corrupt_file_is_named(tmp_path):
    """A month where a numeric column arrived as text: validation names the values (no cast error from the
    reader); a file that is not parquet is named."""
    trips = generate_trips(date(2013, 1, 20), date(2013, 3, 10), n_stations=5, seed=2)
    cfg = _trips_cfg(tmp_path, str(tmp_path / "m" / "trips-*.parquet"))
    write_dataset(trips[trips.started_at < "2013-02-01"], cfg)
    feb = trips[trips.started_at >= "2013-02-01"].copy()
    feb["distance_km"] = feb["distance_km"].astype(str)
    feb.iloc[2, feb.columns.get_loc("distance_km")] = "n/a"
    feb.to_parquet(tmp_path / "m" / "trips-2013-02.parquet", index=False)
    df = storage.read_window(cfg, date(2013, 1, 25), date(2013, 2, 5))
    assert len(df) == int(((trips.started_at >= "2013-01-25") & (trips.started_at < "2013-02-05")).sum())
    text = validate_frame(df, cfg, datetime(2013, 1, 25), datetime(2013, 2, 5)).summary()
    assert "expect_column_values_to_be_numeric on distance_km" in text and "'n/a'" in text
    (tmp_path / "m" / "trips-2013-03.parquet").write_bytes(b"not parquet" * 50)
    with pytest.raises(storage.DataError, match=r"trips-2013-03\.parquet: cannot read as parquet"):
        storage.read_window(cfg, date(2013, 1, 25), date(2013, 3, 5))


def test_s3_files_and_day_folders_on_an_s3_server(tmp_path, monkeypatch, events, panel):
    """The same readers against moto's S3 server on loopback: a parquet glob (pushed down) and CSV day folders."""
    import boto3
    import s3fs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                     "AWS_ENDPOINT_URL_S3": endpoint, "FSSPEC_S3_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(k, v)
        s3fs.S3FileSystem.clear_instance_cache()
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="data")
        trips = _trips_cfg(tmp_path, "s3://data/trips/trips-*.parquet")
        write_dataset(events, trips)
        got = storage.read_window(trips, date(2013, 3, 3), date(2013, 3, 5))
        _same_rows(got, events[(events.started_at >= "2013-03-03") & (events.started_at < "2013-03-05")], ["started_at", "station_id", "duration_min"])
        sales = _cfg(tmp_path, **{"data.path": "s3://data/sales", "data.format": "csv"})
        write_dataset(panel, sales)
        df = storage.read_window(sales, P_START, P_END)
        assert len(df) == len(panel) and "0" in set(df["state_holiday"])
        assert validate_frame(df, sales, datetime(2025, 3, 1), datetime(2025, 3, 15)).success
        why = storage.describe_window(sales, date(2026, 1, 1), date(2026, 1, 2))
        assert "no partitions in [2026-01-01, 2026-01-02) under s3://data/sales; data ends at 2025-03-14" in why
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


# -- an empty window says why ---------------------------------------------------------------------

def test_empty_window_says_where_the_data_is(tmp_path, panel, events):
    cfg = _cfg(tmp_path, **{"data.path": str(tmp_path / "days")})
    write_dataset(panel, cfg)
    root = cfg.data.path
    assert storage.describe_window(cfg, date(2024, 1, 1), date(2024, 1, 8)) == (
        f"no partitions in [2024-01-01, 2024-01-08) under {root}; data starts at 2025-03-01 (14 partitions from 2025-03-01 to 2025-03-14)")
    assert "data ends at 2025-03-14" in storage.describe_window(cfg, date(2025, 4, 1), date(2025, 4, 2))
    trips = _trips_cfg(tmp_path, str(tmp_path / "t" / "*.parquet"))
    write_dataset(events, trips)
    why = storage.describe_window(trips, date(2012, 1, 1), date(2012, 1, 2))
    assert why.startswith("no rows with started_at in [2012-01-01, 2012-01-02) in 1 files matching") and "data starts at 2013-03-01" in why
