"""Features (no leakage, same code at train and serve), metrics by hand, config errors, URI guard."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from modelops import metrics as M
from modelops.config import ConfigError, load_config, parse_config, validate_hyperparameters
from modelops.data.features import FeatureBuilder
from modelops.security import UntrustedModelURI, check_model_uri


def _frame(days=60, entities=(1, 2)):
    rows = []
    for e in entities:
        for d in range(days):
            rows.append({"date": pd.Timestamp("2025-01-01") + pd.Timedelta(days=d), "store": e, "sales": 100.0 * e + d,
                         "customers": 10 + d, "kind": "a" if d % 2 else "b"})
    return pd.DataFrame(rows)


def _builder(**kw):
    return FeatureBuilder(timestamp="date", entity="store", target="sales", numeric=["customers"], categorical=["kind"],
                          horizon_days=7, target_lags=[7, 14], target_rolling_windows=[7], **kw)


def test_lags_use_only_actuals_at_least_horizon_days_old():
    df = _frame()
    b = _builder().fit(df)
    X = b.transform(df, use_history=False)
    row = df.index[(df.store == 2) & (df.date == pd.Timestamp("2025-01-21"))][0]  # day 20
    assert X.loc[row, "target_lag_7"] == 200 + 13
    assert X.loc[row, "target_lag_14"] == 200 + 6
    # rolling mean of days 7..13 (window 7 ending horizon days back): no actual newer than 7 days
    assert X.loc[row, "target_roll_mean_7"] == pytest.approx(200 + np.mean(range(7, 14)))
    first = df.index[(df.store == 1) & (df.date == pd.Timestamp("2025-01-03"))][0]
    assert math.isnan(X.loc[first, "target_lag_7"])


def test_changing_recent_actuals_does_not_change_features():
    df = _frame()
    b = _builder().fit(df)
    X = b.transform(df, use_history=False)
    poisoned = df.copy()
    recent = poisoned.date > pd.Timestamp("2025-02-20") - pd.Timedelta(days=7)
    poisoned.loc[recent, "sales"] = 1e9
    X2 = b.transform(poisoned, use_history=False)
    target = poisoned.date == pd.Timestamp("2025-02-20")
    pd.testing.assert_frame_equal(X[target], X2[target])


def test_serving_uses_history_kept_at_fit_time():
    df = _frame()
    b = _builder().fit(df)
    future = pd.DataFrame({"date": [pd.Timestamp("2025-03-05")], "store": [1], "customers": [5], "kind": ["a"]})
    X = b.transform(future)  # no target column at all: lags come from the stored history
    assert X.loc[0, "target_lag_7"] == 100 + 56  # 2025-02-26 is day 56
    assert X.loc[0, "kind_code"] == 0
    unseen = b.transform(future.assign(kind="zzz"))
    assert math.isnan(unseen.loc[0, "kind_code"])


def test_metrics_by_hand():
    y, p = np.array([100.0, 200.0, 0.0]), np.array([110.0, 180.0, 5.0])
    assert M.rmspe(y, p) == pytest.approx(math.sqrt((0.1**2 + 0.1**2) / 2))
    assert M.mape(y, p) == pytest.approx(0.1)
    c = M.classification_metrics(np.array([1, 0, 1, 0]), np.array([0.9, 0.2, 0.4, 0.6]))
    assert c["accuracy"] == 0.5 and c["precision"] == 0.5 and c["recall"] == 0.5 and c["roc_auc"] == 0.75
    assert M.is_better(0.07, 0.08, False) and not M.is_better(0.08, 0.08, False)
    assert M.passes_threshold(0.099, 0.10, False) and not M.passes_threshold(float("nan"), 0.1, False)


def test_config_errors_name_the_key():
    cfg = load_config()
    raw = cfg.model_dump(mode="json", exclude={"source_path", "config_hash"})
    raw["evaluation"]["metric"] = "roc_auc"
    with pytest.raises(ConfigError, match="evaluation.metric 'roc_auc' does not fit task 'regression'"):
        parse_config(raw, "x.yaml")
    raw = cfg.model_dump(mode="json", exclude={"source_path", "config_hash"})
    del raw["data"]["target_column"]
    with pytest.raises(ConfigError, match="missing required key 'data.target_column'"):
        parse_config(raw, "x.yaml")
    raw = cfg.model_dump(mode="json", exclude={"source_path", "config_hash"})
    raw["training"]["split"] = {"train": 0.8, "validation": 0.15, "test": 0.15}
    with pytest.raises(ConfigError, match="must sum to 1.0"):
        parse_config(raw, "x.yaml")
    raw = cfg.model_dump(mode="json", exclude={"source_path", "config_hash"})
    raw["features"]["target_lags"] = [1, 7]
    with pytest.raises(ConfigError, match="shorter than features.horizon_days"):
        parse_config(raw, "x.yaml")


def test_hyperparameters_of_the_wrong_type():
    with pytest.raises(ConfigError, match=r"xgboost.max_depth must be int, got str '6'"):
        validate_hyperparameters({"xgboost": {"max_depth": "6"}, "lightgbm": {}})
    with pytest.raises(ConfigError, match="unknown model sections"):
        validate_hyperparameters({"catboost": {}})
    with pytest.raises(ConfigError, match="learning_rate must be >= 0"):
        validate_hyperparameters({"lightgbm": {"learning_rate": -0.1}})


def test_model_uri_guard():
    for ok in ("models:/m@production", "models:/m/3", "runs:/abc123/model", "models:/m-0123abcd"):
        assert check_model_uri(ok) == ok
    for bad in ("models://other-profile@remote/m/1", "/tmp/model", "s3://bucket/model", "http://evil/m", "models:/m@prod;rm"):
        with pytest.raises(UntrustedModelURI):
            check_model_uri(bad)


# -- the keyed lag/rolling path equals the MultiIndex formulation, value for value -------------

def _messy_frame(rng, n_entities: int, days: int, string_entities: bool) -> pd.DataFrame:
    """Gaps in the days, missing targets, duplicate (entity, day) rows, entities of either type."""
    rows = []
    for e in range(n_entities):
        present = np.flatnonzero(rng.random(days) < 0.8)
        for d in present:
            rows.append({"date": pd.Timestamp("2025-01-01") + pd.Timedelta(days=int(d), hours=int(rng.integers(0, 24))),
                         "store": f"s{e}" if string_entities else e,
                         "sales": np.nan if rng.random() < 0.1 else float(rng.normal(100, 30)),
                         "customers": int(rng.integers(0, 50)), "kind": "a"})
    df = pd.DataFrame(rows)
    dup = df.sample(frac=0.05, random_state=int(rng.integers(1 << 30)))
    return pd.concat([df, dup.assign(sales=dup["sales"] + 1.0)], ignore_index=True).sample(frac=1.0, random_state=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("string_entities", [False, True])
def test_keyed_target_history_equals_indexed(seed, string_entities):
    rng = np.random.default_rng(seed)
    train = _messy_frame(rng, 7, 60, string_entities)
    b = FeatureBuilder(timestamp="date", entity="store", target="sales", numeric=["customers"], categorical=["kind"],
                       horizon_days=3, target_lags=[1, 3, 10], target_rolling_windows=[2, 7, 30]).fit(train)
    later = _messy_frame(rng, 9, 75, string_entities)  # overlaps the history, new entities, no target
    cases = [(train, False), (train, True), (later, True), (later.drop(columns=["sales"]), True), (later.head(0), True)]
    for frame, use_history in cases:
        day = pd.to_datetime(frame["date"]).dt.normalize()
        for dtype in (np.float32, np.float64):
            fast = b._target_history_features(frame, day, use_history, dtype)
            slow = b._target_history_features_indexed(frame, day, use_history, dtype)
            assert fast.keys() == slow.keys()
            for k in fast:
                assert fast[k].dtype == slow[k].dtype, k
                np.testing.assert_array_equal(fast[k], slow[k], err_msg=k)


def test_keyed_target_history_equals_indexed_on_the_sample_data():
    from datetime import date

    from modelops.data.sample_data import generate_store_sales

    df = generate_store_sales(date(2025, 1, 1), date(2025, 4, 1), n_stores=30, seed=4)
    b = FeatureBuilder(timestamp="date", entity="store", target="sales", numeric=["customers"], categorical=[],
                       horizon_days=7, target_lags=[7, 14, 28], target_rolling_windows=[7, 28]).fit(df)
    future = generate_store_sales(date(2025, 4, 1), date(2025, 4, 20), n_stores=30, seed=4).drop(columns=["sales"])
    for frame, use_history in ((df, False), (future, True)):
        day = pd.to_datetime(frame["date"]).dt.normalize()
        fast = b._target_history_features(frame, day, use_history, np.float32)
        slow = b._target_history_features_indexed(frame, day, use_history, np.float32)
        for k in fast:
            np.testing.assert_array_equal(fast[k], slow[k], err_msg=k)
        assert np.isfinite(fast["target_lag_7"]).any()


def test_tz_aware_timestamps_take_the_indexed_path():
    df = _frame()
    df["date"] = df["date"].dt.tz_localize("UTC")
    b = _builder().fit(df)
    X = b.transform(df, use_history=False)
    row = df.index[(df.store == 2) & (df.date == pd.Timestamp("2025-01-21", tz="UTC"))][0]
    assert X.loc[row, "target_lag_7"] == 200 + 13


@pytest.mark.parametrize("values", [
    pd.Series(["a", "b", None, "zzz", "a"], dtype="string"),
    pd.Series(["a", "b", None, "zzz", "a"], dtype=object),
    pd.Series([1, 2, 3, 2, 7], dtype="int64"),
    pd.Series([1, None, 3, 2, 7], dtype="Int64"),
    pd.Series([True, False, None, True], dtype="boolean"),
    pd.Series([1.0, -0.0, 0.0, float("nan"), 2.5]),
    pd.Series([1, 1.0, "1", None], dtype=object),
    pd.Series([], dtype="string"),
])
def test_category_codes_equal_converting_every_value(values):
    from modelops.data.features import _category_codes

    vocab = ["0.0", "1", "1.0", "2", "3", "False", "True", "a", "b"]
    expected = pd.Categorical(values.astype("string").astype(object), categories=vocab).codes.astype(np.int64)
    np.testing.assert_array_equal(_category_codes(values, vocab), expected)
    np.testing.assert_array_equal(_category_codes(values, []), np.full(len(values), -1))


def test_transform_returns_one_block_in_feature_order():
    df = _frame()
    b = _builder().fit(df)
    X = b.transform(df, use_history=False)
    assert list(X.columns) == b.feature_names
    assert (X.dtypes == np.float32).all()
    assert X.index.equals(df.index)


def test_training_threads_from_the_environment(monkeypatch):
    from modelops.training.boosters import TrainingError, _n_jobs

    monkeypatch.setenv("MODELOPS_TRAINING_THREADS", "1")
    assert _n_jobs() == 1
    monkeypatch.setenv("MODELOPS_TRAINING_THREADS", "many")
    with pytest.raises(TrainingError, match="MODELOPS_TRAINING_THREADS"):
        _n_jobs()
    monkeypatch.delenv("MODELOPS_TRAINING_THREADS")
    assert 1 <= _n_jobs() <= 4
