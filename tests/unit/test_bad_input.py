"""Bad input, table-driven, through the validate task's own function (``lifecycle.validate_data``).

Each case writes a small date-partitioned dataset, breaks it the way real data breaks,
and checks that validation fails with a message naming the column/rule/value (or the
file), and that nothing was written downstream: no snapshot in the run directory, so
build_features has nothing to read, and nothing in the registry.

Issue 18/19 cases: text in numeric columns ("n/a", "unknown", in parquet and in CSV), typo'd
columns with a "did you mean", metrics and transforms the target does not allow, categoricals
with 50,000 values, stray partition folders, symlinks out of the data root, empty windows that
say why, and a copied config without its hyperparameters file.
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
from modelops.data.validation import DataValidationError, NoDataError
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


def _text(col, row, value):
    """The column as text (how a source with a stray word stores it), one cell ``value``."""
    def f(df):
        df = df.copy()
        df[col] = df[col].astype(str)
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
    # issue 18: "unknown" and "n/a" in a numeric column fail by name, wherever the column is
    ("'unknown' in a numeric column", _text("competition_distance", 5, "unknown"), {},
     ["expect_column_values_to_be_numeric on competition_distance", "1 non-numeric values", "examples ['unknown']"]),
    ("'n/a' in a numeric column", _text("competition_open_months", 7, "n/a"), {},
     ["expect_column_values_to_be_numeric on competition_open_months", "examples ['n/a']"]),
    # typo'd columns in the config: the key that names it and the data's nearest column
    ("typo'd feature column", lambda df: df.rename(columns={"customers": "customer"}), {},
     ["expect_column_to_exist on customers", "features.numeric names it", "did you mean 'customer'?"]),
    ("typo'd entity column", lambda df: df, {"data.entity_column": "stores"},
     ["expect_column_to_exist on stores", "data.entity_column names it", "did you mean 'store'?"]),
    # metric and transform against the target, caught at the first validation
    ("rmspe on a target with zeros", _set("sales", 4, 0.0), {"training.target_transform": "none"},
     ["expect_target_to_fit_metric on sales", "1 zero values", "evaluation.metric rmspe skips rows whose actual is 0"]),
    ("rmspe on a target that crosses zero", _set("sales", 4, -3.0), {"validation.target": {"allow_null": False},
                                                                      "training.target_transform": "none"},
     ["expect_target_to_fit_metric on sales", "1 negative values (min -3)", "the target crosses zero"]),
    ("log1p on negative targets", _set("sales", 4, -3.0), {"validation.target": {"allow_null": False}, "evaluation.metric": "rmse",
                                                           "evaluation.threshold": 1000.0},
     ["expect_target_to_fit_transform on sales", "training.target_transform log1p"]),
    # issue 19: a categorical with more distinct values than the limit
    ("too many categories", lambda df: df.assign(assortment=[f"v{i}" for i in range(len(df))]),
     {"validation.categories": {"store_type": ["a", "b", "c", "d"]}, "validation.max_categories": 100},
     ["expect_column_unique_value_count_to_be_between on assortment", "observed 140 distinct values",
      "at most 100 distinct values (validation.max_categories)"]),
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
    _expect_failure(cfg, NoDataError, ["0 rows", "no rows in [2025-03-01, 2025-03-08)",
                                       f"the 7 partitions in [2025-03-01, 2025-03-08) under {cfg.data.path} hold no rows"])


def test_no_partition_in_the_window_says_where_the_data_is(tmp_path, clean):
    cfg = _cfg(tmp_path)
    write_dataset(clean, cfg)
    with pytest.raises(NoDataError) as info:
        lifecycle.validate_data(cfg, CTX, date(2025, 4, 1), date(2025, 4, 8))
    assert (f"no partitions in [2025-04-01, 2025-04-08) under {cfg.data.path}; data ends at 2025-03-07 "
            "(7 partitions from 2025-03-01 to 2025-03-07)") in str(info.value)
    with pytest.raises(NoDataError, match=r"no partitions in \[2013-06-01, 2013-06-08\) under .*; data starts at 2025-03-01"):
        lifecycle.validate_data(cfg, CTX, date(2013, 6, 1), date(2013, 6, 8))


def test_typo_d_partition_key_gets_a_did_you_mean(tmp_path, clean):
    cfg = _cfg(tmp_path, **{"data.partition_column": "day"})
    for day, part in clean.groupby(clean["date"].dt.normalize()):
        storage.write_partition(part.reset_index(drop=True), cfg.data.path, "date", day.date())
    _expect_failure(cfg, NoDataError, [f"no partitions named day=YYYY-MM-DD under {cfg.data.path}",
                                       "the folders there are named date=YYYY-MM-DD: did you mean data.partition_column: date?"])


def test_numeric_text_in_csv_fails_everywhere(tmp_path, clean):
    """pandas reads "n/a" as missing by default; here only data.na_values are, so the value is named."""
    cfg = _cfg(tmp_path, fmt="csv")
    bad = _set("competition_distance", 9, "n/a")(_set("competition_open_months", 10, "unknown")(clean))
    write_dataset(bad, cfg)
    _expect_failure(cfg, DataValidationError, ["expect_column_values_to_be_numeric on competition_distance: observed 1 non-numeric",
                                               "examples ['n/a']", "data.na_values ['']",
                                               "expect_column_values_to_be_numeric on competition_open_months", "examples ['unknown']"])


def test_fifty_thousand_categories_fail_past_the_limit_and_warn_below(tmp_path):
    """Issue 19: 50,000 distinct values in a categorical were accepted without a word."""
    days = generate_store_sales(START, date(2025, 3, 3), n_stores=25_000, seed=1)
    wide = days.assign(assortment=[f"sku-{i}" for i in range(len(days))])
    cfg = _cfg(tmp_path, **{"validation.categories": {"store_type": ["a", "b", "c", "d"]}, "validation.min_rows": 1, "validation.ranges": {}})
    write_dataset(wide, cfg)
    with pytest.raises(DataValidationError) as info:
        lifecycle.validate_data(cfg, CTX, START, date(2025, 3, 3))
    assert "expect_column_unique_value_count_to_be_between on assortment: observed 50000 distinct values" in str(info.value)
    assert "at most 10000 distinct values (validation.max_categories)" in str(info.value)
    ok = _cfg(tmp_path, **{"data.path": cfg.data.path, "validation.categories": {"store_type": ["a", "b", "c", "d"]},
                           "validation.max_categories": 60_000, "validation.min_rows": 1, "validation.ranges": {}})
    out = lifecycle.validate_data(ok, CTX, START, date(2025, 3, 3))
    (note,) = out["notes"]
    assert "categorical feature 'assortment' has 50000 distinct values (validation.warn_categories=1000" in note


# -- hostile folders ----------------------------------------------------------------------------------

def test_stray_partition_folder_is_skipped_with_a_warning_naming_it(tmp_path, clean, caplog):
    """Issue 19: one folder date=2025-13-45 under the root failed every run with a bare ValueError."""
    cfg = _cfg(tmp_path)
    write_dataset(clean, cfg)
    stray = Path(cfg.data.path) / "date=2025-13-45"
    stray.mkdir()
    (stray / "part-0.parquet").write_bytes(b"junk")
    (Path(cfg.data.path) / "date=yesterday").mkdir()
    (Path(cfg.data.path) / "_SUCCESS").write_text("")
    with caplog.at_level("WARNING"):
        out = lifecycle.validate_data(cfg, CTX, START, END)
    assert out["rows"] == len(clean)
    assert any(f"skipped folder {stray} (month must be in 1..12)" in n for n in out["notes"]), out["notes"]
    assert any("date=yesterday" in n for n in out["notes"]) and not any("_SUCCESS" in n for n in out["notes"])
    assert f"skipped folder {stray}" in caplog.text


def test_partition_symlinked_out_of_the_root_is_refused_naming_it(tmp_path, clean):
    """Issue 19: a day folder that is a symlink out of the root was followed; the day came up short."""
    cfg = _cfg(tmp_path)
    write_dataset(clean[clean.date < "2025-03-07"], cfg)
    outside = tmp_path / "elsewhere" / "date=2025-03-07"
    outside.mkdir(parents=True)
    clean[clean.date == "2025-03-07"].head(3).to_parquet(outside / "part-0.parquet")
    link = Path(cfg.data.path) / "date=2025-03-07"
    link.symlink_to(outside, target_is_directory=True)
    _expect_failure(cfg, DataError, [f"partition folder {link} is a symlink to {outside}", f"outside the data root {cfg.data.path}",
                                     "refusing to read it"])


def test_file_symlinked_out_of_the_root_is_refused_and_links_inside_are_fine(tmp_path, clean):
    cfg = _cfg(tmp_path)
    write_dataset(clean, cfg)
    secret = tmp_path / "secret.parquet"
    clean.head(2).to_parquet(secret)
    link = Path(storage.partition_dir(cfg, date(2025, 3, 2))) / "part-1.parquet"
    link.symlink_to(secret)
    _expect_failure(cfg, DataError, [f"file {link} is a symlink to {secret}"])
    link.unlink()
    inside = Path(cfg.data.path) / "date=2025-03-08"
    inside.symlink_to(Path(storage.partition_dir(cfg, date(2025, 3, 1))), target_is_directory=True)  # within the root: read
    assert lifecycle.validate_data(cfg, CTX, START, END)["rows"] == len(clean)


# -- hyperparameters beside a copied config -------------------------------------------------------------

def test_copied_config_without_hyperparameters_uses_the_shipped_file_and_says_so(tmp_path, caplog):
    from modelops.config import SHIPPED_HYPERPARAMETERS
    from modelops.training.hyperparameters import load_active

    cfg = _cfg(tmp_path)  # copied to tmp_path/cfg, no best_hyperparameters.json beside it
    assert not (Path(cfg.source_path).parent / "best_hyperparameters.json").exists()
    with caplog.at_level("WARNING"):
        active = load_active(cfg)
    assert active.path == str(SHIPPED_HYPERPARAMETERS) and "xgboost" in active.params
    assert "is not beside" in caplog.text and "training uses the package's shipped parameters" in caplog.text
    named = _cfg(tmp_path, **{"training.hyperparameters_file": "my_params.json"})
    with pytest.raises(ConfigError) as info:
        load_hyperparameters(named)
    assert f"training.hyperparameters_file: {Path(named.source_path).parent / 'my_params.json'} does not exist" in str(info.value)
    assert "relative names resolve against the folder of" in str(info.value)


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
    ("typo'd layout", lambda r: r["data"].update(layout="partition"), ["data.layout", "(did you mean 'partitioned'?)"]),
    ("typo'd aggregation", lambda r: r["features"].update(target_aggregation="means"), ["(did you mean 'mean'?)"]),
    ("log1p with negative targets allowed", lambda r: r["validation"]["target"].update(min=-10),
     ["training.target_transform log1p needs a non-negative target, but validation.target.min is -10"]),
    ("rmspe on a target allowed below zero", lambda r: (r["validation"]["target"].update(min=-10), r["training"].update(target_transform="none")),
     ["evaluation.metric rmspe divides by the target, but validation.target.min -10 lets it cross zero"]),
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
