"""Every validation rule fires with a message naming the column, the rule and the bad value."""

from __future__ import annotations

import json
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from modelops.config import load_config, parse_config
from modelops.data.sample_data import generate_store_sales
from modelops.data.validation import DataValidationError, validate_frame

START, END = datetime(2025, 3, 1), datetime(2025, 3, 8)


@pytest.fixture(scope="module")
def cfg():
    return load_config()


@pytest.fixture(scope="module")
def clean():
    return generate_store_sales(date(2025, 3, 1), date(2025, 3, 8), n_stores=20, seed=5)


def _fails(cfg, df, *needles):
    res = validate_frame(df, cfg, START, END)
    assert not res.success
    text = res.summary()
    for n in needles:
        assert n in text, text
    with pytest.raises(DataValidationError, match="data validation failed"):
        res.raise_for_failures()
    assert res.raw["modelops_failures"] and "results" in res.raw
    return text


def test_clean_frame_passes(cfg, clean):
    res = validate_frame(clean, cfg, START, END)
    assert res.success, res.summary()
    assert res.statistics["evaluated_expectations"] > 30
    # GX's own row hash of the batch is skipped (lineage keeps the snapshot's fingerprint)
    assert "pandas_data_fingerprint" not in json.dumps(res.raw), res.raw.get("meta")


def test_missing_column(cfg, clean):
    _fails(cfg, clean.drop(columns=["customers"]), "expect_column_to_exist on customers", "column missing")


def test_extra_column_rejected_only_when_configured(cfg, clean):
    extra = clean.assign(surprise=1)
    assert validate_frame(extra, cfg, START, END).success
    strict = parse_config({**cfg.model_dump(mode="json", exclude={"source_path", "config_hash"}),
                           "data": {**cfg.data.model_dump(), "allow_extra_columns": False}}, "strict.yaml")
    _fails(strict, extra, "expect_table_columns_to_match_set", "extra columns ['surprise']")


def test_wrong_dtype(cfg, clean):
    _fails(cfg, clean.assign(customers=clean["customers"].astype(str)), "expect_column_dtype on customers", "dtype str",
           "expected numeric column")


def test_all_null_column(cfg, clean):
    _fails(cfg, clean.assign(competition_distance=np.nan), "expect_column_not_entirely_null on competition_distance",
           "all values are null")


@pytest.mark.parametrize("value,needle", [(np.nan, "expect_column_values_to_not_be_null on sales"),
                                          (np.inf, "expect_column_values_to_be_between on sales"),
                                          (-5.0, "-5.0")])
def test_bad_target(cfg, clean, value, needle):
    df = clean.copy()
    df.loc[3, "sales"] = value
    _fails(cfg, df, needle)


def test_value_out_of_range(cfg, clean):
    df = clean.copy()
    df.loc[0, "promo"] = 7
    _fails(cfg, df, "expect_column_values_to_be_between on promo", "[0.0, 1.0]", "examples [7]")


def test_unseen_category(cfg, clean):
    df = clean.copy()
    df.loc[1, "store_type"] = "zz"
    _fails(cfg, df, "expect_column_values_to_be_in_set on store_type", "'zz'")


def test_too_few_rows_and_empty(cfg, clean):
    _fails(cfg, clean.head(5), "expect_table_row_count_to_be_between", "observed 5 rows")
    _fails(cfg, clean.iloc[0:0], "0 rows", "no rows in")


def test_timestamp_outside_interval(cfg, clean):
    df = clean.copy()
    df.loc[2, "date"] = pd.Timestamp("2025-03-08")  # the interval is half-open
    _fails(cfg, df, "expect_column_values_to_be_between on date", "2025-03-08")


def test_duplicated_keys(cfg, clean):
    _fails(cfg, pd.concat([clean, clean.head(2)], ignore_index=True), "expect_compound_columns_to_be_unique on store, date",
           "one row per entity and timestamp")


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_narrow_dtypes_get_the_same_rules(cfg, clean, unit):
    """Parquet hands pandas 3 datetime64[ms]/[us], int32 and float32 columns: GX is given widened
    copies (its vectorized path), and every rule still sees the values the data holds."""
    narrow = clean.astype({"date": f"datetime64[{unit}]", "customers": "int32", "competition_distance": "float32"})
    assert validate_frame(narrow, cfg, START, END).success
    late = narrow.copy()
    late.loc[2, "date"] = pd.Timestamp("2025-03-08")  # the end is exclusive
    _fails(cfg, late, "expect_column_values_to_be_between on date", "2025-03-08")
    early = narrow.copy()
    early.loc[3, "date"] = pd.Timestamp("2025-02-28 23:59:59")
    _fails(cfg, early, "expect_column_values_to_be_between on date", "2025-02-28T23:59:59")
    big = narrow.copy()
    big.loc[0, "customers"] = 25_000
    big.loc[1, "competition_distance"] = np.float32(-1.5)
    text = _fails(cfg, big, "expect_column_values_to_be_between on customers", "examples [25000]",
                  "expect_column_values_to_be_between on competition_distance", "examples [-1.5]")
    assert "date" not in text.split("failed for", 1)[1].split("\n", 1)[1], "the widened timestamp must not fail"
    assert narrow["date"].dtype == f"datetime64[{unit}]", "the caller's frame is left as it was"
