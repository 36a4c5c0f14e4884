"""Bad input, table-driven, through the validate task's own function (``lifecycle.validate_data``).

Each case writes a small date-partitioned dataset, breaks it the way real data breaks,
and checks that validation fails with a message naming the column/rule/value (or the
file), and that nothing was written downstream: no snapshot in the run directory, so
build_features has nothing to read, and nothing in the registry.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelops import lifecycle
from modelops.governance import registry
from modelops.data import storage
from modelops.config import ConfigError, load_config, load_hyperparameters, parse_config
from modelops.data.sample_data import generate_store_sales, write_dataset
from modelops.data.storage import DataError
from modelops.tracking import RunContext
from modelops.data.validation import DataValidationError
from tests.conftest import write_config

START, END = date(2025, 3, 1), date(2025, 3, 8)
CTX = RunContext("retrain_weekly", "manual__bad_input", "2025-03-08T00:00:00+00:00", None, "2025-03-08T00:00:00+00:00")


@pytest.fixture(scope="module")
def clean():
    return generate_store_sales(START, END, n_stores=20, seed=5)


def _cfg(tmp_path: Path, fmt: str = "parquet", **overrides):
    name = f"bad_{uuid.uuid4().hex[:8]}"
    path = write_config(tmp_path / "cfg", model_name=name, **{"data.path": str(tmp_path / "data"), "data.format": fmt,
                                                               "mlflow.experiment": name, **overrides})
    return load_config(path)


def _part_file(cfg, day: date, fmt: str = "parquet") -> Path:
    return Path(storage.partition_dir(cfg, day)) / f"part-0.{fmt}"


# -- frame-level breakage: (id, mutate(df) -> df, config overrides, needles) -----------------------

def _set(col, row, value):
    def f(df):
        df = df.copy()
        if isinstance(value, str) and pd.api.types.is_numeric_dtype(df[col]):
            df[col] = df[col].astype(object)
        df.loc[row, col] = value
        return df
    return f


FRAME_CASES = [
    ("missing column", lambda df: df.drop(columns=["customers"]), {},
     ["expect_column_to_exist on customers", "column missing"]),
    ("extra column, rejected by config", lambda df: df.assign(surprise=1), {"data.allow_extra_columns": False},
     ["expect_table_columns_to_match_set", "extra columns ['surprise']"]),
    ("wrong dtype", lambda df: df.assign(customers=df["customers"].astype(str)), {},
     ["expect_column_dtype on customers", "expected numeric column"]),
    ("all-null column", lambda df: df.assign(competition_distance=np.nan), {},
     ["expect_column_not_entirely_null on competition_distance", "all values are null"]),
    ("NaN target", _set("sales", 3, np.nan), {}, ["expect_column_values_to_not_be_null on sales", "1 bad values"]),
    ("inf target", _set("sales", 3, np.inf), {}, ["expect_column_values_to_be_between on sales", "finite values in [0.0, +inf]"]),
    ("negative target", _set("sales", 3, -5.0), {}, ["expect_column_values_to_be_between on sales", "examples [-5.0]"]),
    ("duplicated keys", lambda df: pd.concat([df, df.head(2)], ignore_index=True), {},
     ["expect_compound_columns_to_be_unique on store, date", "one row per entity and timestamp"]),
    ("unseen category", _set("store_type", 1, "zz"), {}, ["expect_column_values_to_be_in_set on store_type", "'zz'"]),
    ("extreme outlier", _set("customers", 0, 10**9), {},
     ["expect_column_values_to_be_between on customers", "[0.0, 20000.0]", "examples [1000000000"]),
    ("null in a non-null feature", _set("promo", 0, np.nan), {}, ["expect_column_values_to_not_be_null on promo"]),
    ("rows outside the partition's day", lambda df: df.assign(date=df["date"] + pd.Timedelta(days=30)), {},
     ["expect_column_values_to_be_between on date", "2025-03-31"]),
]


@pytest.mark.parametrize("case,mutate,overrides,needles", FRAME_CASES, ids=[c[0] for c in FRAME_CASES])
def test_bad_frame_is_rejected_before_anything_downstream(tmp_path, clean, case, mutate, overrides, needles):
    cfg = _cfg(tmp_path, **overrides)
    bad = mutate(clean)
    ts = bad["date"] if case != "rows outside the partition's day" else clean["date"]
    for day, part in bad.groupby(ts.dt.normalize(), sort=True):  # keep each row in its original day's partition
        storage.write_partition(part.reset_index(drop=True), cfg.data.path, "date", day.date())
    text = _expect_failure(cfg, DataValidationError, needles)
    assert text.startswith("data validation failed:") and "Traceback" not in text


def _expect_failure(cfg, exc_type, needles) -> str:
    with pytest.raises(exc_type) as info:
        lifecycle.validate_data(cfg, CTX, START, END)
    text = str(info.value)
    for n in needles:
        assert n in text, f"{n!r} not in:\n{text}"
    rdir = lifecycle.run_dir(cfg, CTX)
    assert not storage.exists(storage.join(rdir, "raw.parquet")), "a snapshot was written for build_features"
    assert not storage.exists(storage.join(rdir, "raw.parquet.tmp")), "the refused data's staged snapshot was left behind"
    assert registry.versions(cfg.model_name) == []
    return text


def test_extra_column_is_allowed_by_default(tmp_path, clean):
    cfg = _cfg(tmp_path)
    write_dataset(clean.assign(surprise=1), cfg)
    out = lifecycle.validate_data(cfg, CTX, START, END)
    assert out["rows"] == len(clean) and storage.exists(out["path"]) and not storage.exists(out["path"] + ".tmp")
    assert out["fingerprint"] == storage.fingerprint(storage.read_window(cfg, START, END))
    assert storage.fingerprint(storage.read_frame(out["path"])) == out["fingerprint"]


# -- file-level breakage ---------------------------------------------------------------------------

def test_empty_partitions(tmp_path, clean):
    cfg = _cfg(tmp_path)
    for day in storage.days(START, END):
        storage.write_partition(clean.iloc[0:0], cfg.data.path, "date", day)
    _expect_failure(cfg, DataValidationError, ["expect_table_row_count_to_be_between", "0 rows", "no rows in [2025-03-01"])


def test_no_partition_in_the_window(tmp_path, clean):
    cfg = _cfg(tmp_path)
    write_dataset(clean, cfg)
    with pytest.raises(DataValidationError, match=r"0 rows.*no rows in \[2025-04-01"):
        lifecycle.validate_data(cfg, CTX, date(2025, 4, 1), date(2025, 4, 8))


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_corrupt_parquet_names_the_file(tmp_path, clean, how):
    cfg = _cfg(tmp_path)
    write_dataset(clean, cfg)
    f = _part_file(cfg, date(2025, 3, 4))
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2] if how == "truncated" else b"\x00not parquet at all" * 10)
    text = _expect_failure(cfg, DataError, [str(f), "cannot read as parquet"])
    assert "Traceback" not in text


def test_csv_with_bad_encoding(tmp_path, clean):
    cfg = _cfg(tmp_path, fmt="csv")
    write_dataset(clean, cfg)
    f = _part_file(cfg, date(2025, 3, 2), "csv")
    f.write_bytes(f.read_bytes().replace(b",a,", b",\xe9t\xe9,", 1))  # latin-1 bytes in a utf-8 file
    _expect_failure(cfg, DataError, [str(f), "cannot decode as utf-8", "at byte"])


def test_csv_with_the_wrong_delimiter(tmp_path, clean):
    cfg = _cfg(tmp_path, fmt="csv")
    for day, part in clean.groupby(clean["date"].dt.normalize()):
        d = Path(storage.partition_dir(cfg, day.date()))
        d.mkdir(parents=True, exist_ok=True)
        part.to_csv(d / "part-0.csv", index=False, sep=";")
    _expect_failure(cfg, DataError, ["a single column", "data.csv_delimiter is ','", "looks ';'-separated"])


def test_csv_with_unparseable_timestamps(tmp_path, clean):
    cfg = _cfg(tmp_path, fmt="csv")
    write_dataset(clean, cfg)
    f = _part_file(cfg, date(2025, 3, 3), "csv")
    lines = f.read_text().splitlines()
    lines[1] = "not-a-date" + lines[1][lines[1].index(","):]
    f.write_text("\n".join(lines) + "\n")
    _expect_failure(cfg, DataError, ["column 'date' (data.timestamp_column) cannot be parsed as timestamps"])


# -- config and hyperparameters ----------------------------------------------------------------------

def _raw():
    return load_config().model_dump(mode="json", exclude={"source_path", "config_hash"})


CONFIG_CASES = [
    ("typo'd key", lambda r: r["data"].update(timestamp_colum=r["data"].pop("timestamp_column")),
     ["unknown key 'data.timestamp_colum' (did you mean 'timestamp_column'?)", "missing required key 'data.timestamp_column'"]),
    ("typo'd section", lambda r: r.update(evalution=r.pop("evaluation")), ["unknown key 'evalution' (did you mean 'evaluation'?)"]),
    ("missing key", lambda r: r["approval"].pop("approvers"), ["missing required key 'approval.approvers'"]),
    ("no approvers", lambda r: r["approval"].update(approvers=[]), ["approval.approvers", "at least 1 item"]),
    ("wrong type", lambda r: r["validation"].update(min_rows="many"), ["validation.min_rows", "(got 'many')"]),
    ("out of range", lambda r: r["drift"].update(ks_pvalue=1.5), ["drift.ks_pvalue", "less than 1", "(got 1.5)"]),
    ("unknown metric", lambda r: r["evaluation"].update(metric="auc"), ["evaluation.metric 'auc' does not fit task 'regression'"]),
    ("unknown column in a rule", lambda r: r["validation"]["ranges"].update(custmers={"min": 0}),
     ["validation.ranges names columns ['custmers']"]),
]


@pytest.mark.parametrize("case,mutate,needles", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_is_one_clear_message(case, mutate, needles):
    raw = _raw()
    mutate(raw)
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "bad.yaml")
    text = str(info.value)
    assert text.startswith("invalid config file bad.yaml:")
    for n in needles:
        assert n in text, f"{n!r} not in:\n{text}"


def test_config_file_that_is_not_yaml_or_missing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_name: [unclosed\n")
    with pytest.raises(ConfigError, match=f"config file {bad} is not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("content,needle", [
    ({"xgboost": {"max_depth": "6"}}, "xgboost.max_depth must be int, got str '6'"),
    ({"lightgbm": {"learning_rate": [0.1]}}, "lightgbm.learning_rate must be number, got list [0.1]"),
    ({"xgboost": {"n_estimators": True}}, "xgboost.n_estimators must be int, got bool True"),
    ({"xgboost": {"subsample": -1}}, "xgboost.subsample must be >= 0"),
    ({"xgboost": "deep"}, "'xgboost' must be a mapping"),
    ("{not json", "is not valid JSON"),
])
def test_hyperparameters_file_of_the_wrong_type(tmp_path, content, needle):
    hp = tmp_path / "hp.json"
    hp.write_text(content if isinstance(content, str) else json.dumps(content))
    cfg = _cfg(tmp_path, **{"training.hyperparameters_file": str(hp)})
    with pytest.raises(ConfigError) as info:
        load_hyperparameters(cfg)
    assert needle in str(info.value) and str(hp) in str(info.value)


def test_hyperparameter_override_param_of_the_wrong_type(tmp_path, fast_hp_file):
    cfg = _cfg(tmp_path, **{"training.hyperparameters_file": str(fast_hp_file)})
    with pytest.raises(ConfigError, match=r"hyperparameter overrides \(run param\): lightgbm.num_leaves must be int, got float 31.5"):
        load_hyperparameters(cfg, {"lightgbm": {"num_leaves": 31.5}})


def test_validation_result_is_kept_for_the_reader(tmp_path, clean):
    """The full GX result is next to the failure, for the person reading the task log."""
    cfg = _cfg(tmp_path)
    write_dataset(_set("sales", 3, -5.0)(clean), cfg)
    with pytest.raises(DataValidationError):
        lifecycle.validate_data(cfg, CTX, START, END)
    raw = json.loads(storage.read_text(storage.join(lifecycle.run_dir(cfg, CTX), "validation_result.json")))
    assert raw["success"] is False and any(f["column"] == "sales" for f in raw["modelops_failures"])
    assert datetime.fromisoformat(CTX.logical_date)  # the run dir is keyed by the logical date
