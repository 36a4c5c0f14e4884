"""The files one retrain task hands the next: split ranges instead of copies, no second raw snapshot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelops import lifecycle
from modelops.data import storage
from modelops.data.features import take_rows
from modelops.training.boosters import is_time_sorted


def _frame(n_days: int = 6, n_ent: int = 3) -> pd.DataFrame:
    days = pd.date_range("2025-01-01", periods=n_days, freq="D")
    return pd.DataFrame({"date": np.repeat(days, n_ent), "store": np.tile(np.arange(n_ent), n_days),
                         "sales": np.arange(n_days * n_ent, dtype=float)})


def test_is_sorted_is_what_a_stable_sort_would_leave_alone():
    df = _frame()
    assert is_time_sorted(df, "date", "store")
    swapped = df.copy()
    swapped.loc[[0, 1], "store"] = [1, 0]  # same day, entities out of order
    assert not is_time_sorted(swapped, "date", "store")
    late = df.copy()
    late.loc[0, "date"] = pd.Timestamp("2025-02-01")
    assert not is_time_sorted(late, "date", "store")
    assert not is_time_sorted(df.iloc[::-1], "date", "store")
    assert not is_time_sorted(df.set_index(df.index + 5), "date", "store")  # the index must be 0..n-1 like a sorted copy's
    with_nat = df.copy()
    with_nat.loc[4, "date"] = pd.NaT
    assert not is_time_sorted(with_nat, "date", "store")
    for sample in (swapped, late, df.iloc[::-1]):  # agrees with the sort itself
        resorted = sample.sort_values(["date", "store"], kind="stable").reset_index(drop=True)
        assert is_time_sorted(resorted, "date", "store")


@pytest.mark.parametrize("legacy", [False, True])
def test_load_split_gives_row_ranges_without_copying(tmp_path, legacy):
    n = 30
    X = pd.DataFrame(np.arange(n * 4, dtype=np.float32).reshape(n, 4), columns=list("abcd"))
    codes = np.array([0] * 20 + [1] * 5 + [2] * 5, dtype=np.int8)
    X["_split"] = np.array(lifecycle.SPLITS, dtype=object)[codes] if legacy else codes
    X["_target"] = np.arange(n, dtype=float)
    path = storage.write_frame(X, str(tmp_path / "features.parquet"))
    parts = lifecycle._load_split(path, "log1p")
    for i, name in enumerate(lifecycle.SPLITS):
        Xs, y, y_raw = parts[name]
        assert list(Xs.columns) == list("abcd")
        np.testing.assert_array_equal(y_raw, np.flatnonzero(codes == i).astype(float))
        np.testing.assert_allclose(y, np.log1p(y_raw))
        np.testing.assert_array_equal(Xs.to_numpy(), X.loc[codes == i, list("abcd")].to_numpy())
    # training and tuning read the leading train + validation rows only (legacy string codes: all rows, masked)
    fit = lifecycle._load_split(path, "log1p", ("train", "validation"))
    assert list(fit) == ["train", "validation"]
    np.testing.assert_array_equal(fit["validation"][2], np.flatnonzero(codes == 1).astype(float))
    held = lifecycle._read_feature_block(path, 1)
    assert len(held) == (30 if legacy else 25)


def test_run_files_split_float_bytes_keep_dictionaries_elsewhere_and_round_trip(tmp_path):
    """Float columns are byte-stream-split (no dictionary: the slow part of writing the feature file),
    the rest keep dictionaries; values, NaNs and dtypes come back as written."""
    import pyarrow.parquet as pq

    df = pd.DataFrame({"f32": np.array([1.5, np.nan, -0.0, 3e38], dtype=np.float32), "f64": [0.1, 2.0, np.nan, -1e300],
                       "code": np.array([0, 1, 1, 2], dtype=np.int8), "store": ["a", "b", None, "a"],
                       "when": pd.to_datetime(["2025-01-01", "2025-01-02", None, "2025-01-04"]),
                       "nullable": pd.array([1.5, None, 2.5, None], dtype="Float64")})
    path = storage.write_frame(df, str(tmp_path / "run.parquet"))
    meta = pq.ParquetFile(path).metadata.row_group(0)
    enc = {meta.column(i).path_in_schema: set(meta.column(i).encodings) for i in range(meta.num_columns)}
    for col in ("f32", "f64", "nullable"):
        assert "BYTE_STREAM_SPLIT" in enc[col] and "RLE_DICTIONARY" not in enc[col], (col, enc[col])
    for col in ("code", "store", "when"):
        assert "RLE_DICTIONARY" in enc[col], (col, enc[col])
    assert {meta.column(i).compression for i in range(meta.num_columns)} == {"LZ4"}  # pyarrow's name for LZ4_RAW
    pd.testing.assert_frame_equal(storage.read_frame(path), df)


def test_load_split_falls_back_to_masks_when_rows_interleave(tmp_path):
    X = pd.DataFrame({"a": np.arange(6, dtype=np.float32)})
    X["_split"] = np.array([0, 1, 0, 2, 1, 2], dtype=np.int8)
    X["_target"] = np.arange(6, dtype=float)
    parts = lifecycle._load_split(storage.write_frame(X, str(tmp_path / "f.parquet")), "none")
    assert parts["train"][0]["a"].tolist() == [0, 2] and parts["validation"][2].tolist() == [1, 4] and parts["test"][2].tolist() == [3, 5]


def _window_cfg(tmp_path):
    from modelops.config import load_config

    cfg = load_config()
    return cfg.model_copy(update={"data": cfg.data.model_copy(update={"path": str(tmp_path / "data")})})


def test_read_window_reads_like_pandas_concat(tmp_path):
    """Arrow's one-pass read gives what concatenating each day's ``pd.read_parquet`` gave, dtypes included,
    also when the days disagree (a column int one day and float the next, a column only some days have)."""
    from datetime import date

    cfg = _window_cfg(tmp_path)
    base = pd.DataFrame({"date": pd.to_datetime(["2025-01-01"] * 3), "store": [1, 2, 3], "sales": [1.0, 2.0, np.nan],
                         "store_type": ["a", None, "c"], "customers": [5, 6, 7]})
    day2 = base.assign(date=pd.Timestamp("2025-01-02"), customers=[1.5, np.nan, 3.0])  # int64 -> float64
    day3 = base.assign(date=pd.Timestamp("2025-01-03"), extra=["x", "y", "z"])
    frames = [base, day2, day3]
    paths = [storage.write_partition(f, cfg.data.path, "date", d) for f, d in zip(frames, [date(2025, 1, i) for i in (1, 2, 3)])]
    got = storage.read_window(cfg, date(2025, 1, 1), date(2025, 1, 4))
    want = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    pd.testing.assert_frame_equal(got, want)
    # a column whose type cannot be unified (text one day, numbers another) still reads, as pandas would
    storage.write_partition(base.assign(date=pd.Timestamp("2025-01-04"), store=["s1", "s2", "s3"]), cfg.data.path, "date", date(2025, 1, 4))
    mixed = storage.read_window(cfg, date(2025, 1, 3), date(2025, 1, 5))
    assert mixed["store"].tolist() == [1, 2, 3, "s1", "s2", "s3"]


def test_read_window_names_a_corrupt_file(tmp_path):
    from datetime import date

    cfg = _window_cfg(tmp_path)
    storage.write_partition(pd.DataFrame({"date": pd.to_datetime(["2025-01-01"]), "store": [1]}), cfg.data.path, "date", date(2025, 1, 1))
    bad = storage.write_partition(pd.DataFrame({"date": pd.to_datetime(["2025-01-02"]), "store": [1]}), cfg.data.path, "date", date(2025, 1, 2))
    with open(bad, "wb") as fh:
        fh.write(b"PAR1 not really")
    with pytest.raises(storage.DataError, match=r"part-0\.parquet: cannot read as parquet"):
        storage.read_window(cfg, date(2025, 1, 1), date(2025, 1, 3))


def test_take_rows_slices_a_range_and_masks_otherwise():
    X = pd.DataFrame({"a": np.arange(10.0)})
    rng = np.zeros(10, bool)
    rng[3:7] = True
    assert take_rows(X, rng)["a"].tolist() == [3, 4, 5, 6]
    holes = rng.copy()
    holes[5] = False
    assert take_rows(X, holes)["a"].tolist() == [3, 4, 6]
    assert take_rows(X, np.zeros(10, bool)).empty


def test_build_features_sorts_an_unordered_snapshot_once_and_reuses_an_ordered_one(tmp_path, monkeypatch):
    """An out-of-order snapshot gets one sorted copy that later steps read; an ordered one is used as is.
    Both give the same features."""
    from datetime import date

    from modelops.data.sample_data import generate_store_sales
    from modelops.tracking import RunContext

    monkeypatch.setenv("MODELOPS_WORK_ROOT", str(tmp_path / "work"))
    cfg = _window_cfg(tmp_path)
    ctx = RunContext("retrain_weekly", "manual__handoff", "2025-02-15T00:00:00+00:00", None, "2025-02-15T00:00:00+00:00")
    df = generate_store_sales(date(2025, 1, 1), date(2025, 2, 15), n_stores=4, seed=1)
    shuffled = storage.write_frame(df.sample(frac=1, random_state=0).reset_index(drop=True), str(tmp_path / "shuffled.parquet"))
    out = lifecycle.build_features(cfg, ctx, shuffled)
    assert out["raw_sorted_path"] == storage.join(lifecycle.run_dir(cfg, ctx), "raw_sorted.parquet")
    ordered = storage.read_frame(out["raw_sorted_path"])
    assert is_time_sorted(ordered, "date", "store") and len(ordered) == len(df)
    features_from_shuffled = storage.read_frame(out["features_path"])

    ordered_path = storage.write_frame(ordered, str(tmp_path / "ordered.parquet"))
    again = lifecycle.build_features(cfg, ctx, ordered_path)
    assert again["raw_sorted_path"] == ordered_path
    pd.testing.assert_frame_equal(storage.read_frame(again["features_path"]), features_from_shuffled)


@pytest.fixture(scope="module")
def small_ensemble():
    from datetime import date

    from modelops.config import load_config
    from modelops.training.ensemble import EnsembleModel
    from modelops.data.features import FeatureBuilder
    from modelops.data.sample_data import generate_store_sales
    from modelops.training.boosters import sort_by_time, time_split, train_lightgbm, train_xgboost

    cfg = load_config()
    ts, ent, tgt = cfg.data.timestamp_column, cfg.data.entity_column, cfg.data.target_column
    raw = sort_by_time(generate_store_sales(date(2025, 1, 1), date(2025, 3, 12), n_stores=6, seed=3), ts, ent)
    tr, va, te, _ = time_split(raw, ts, cfg.training.split.train, cfg.training.split.validation)
    builder = FeatureBuilder.from_config(cfg).fit(raw)
    X = builder.transform(raw, use_history=False)
    y = np.log1p(raw[tgt].to_numpy(dtype="float64"))
    m_x, _ = train_xgboost(X[tr], y[tr], X[va], y[va], {"n_estimators": 8, "max_depth": 3}, cfg.task, 5, 0)
    m_l, _ = train_lightgbm(X[tr], y[tr], X[va], y[va], {"n_estimators": 8, "num_leaves": 7, "min_child_samples": 5}, cfg.task, 5, 0,
                            builder.categorical_feature_names)
    return cfg, raw, te, EnsembleModel(builder, m_x, m_l, {"xgboost": 0.4, "lightgbm": 0.6}, cfg.task, "log1p")


def test_scoring_a_window_predicts_only_its_rows_and_gives_the_same_values(small_ensemble, monkeypatch):
    from modelops.training import ensemble
    from modelops.lifecycle import _scoring_context, score_window, score_window_components

    cfg, raw, te, model = small_ensemble
    sub, sel = _scoring_context(model, raw, cfg, te)
    assert sel.sum() == te.sum() < len(sub)  # the window and the days its lags reach back to
    everything = model.component_predictions(sub)
    seen: list[int] = []
    real = ensemble.predict_raw
    monkeypatch.setattr(ensemble, "predict_raw", lambda m, X, task: seen.append(len(X)) or real(m, X, task))
    parts = score_window_components(model, raw, cfg, te)
    assert seen == [int(te.sum())] * 2  # each booster predicted the window's rows, not its context
    for name in ("xgboost", "lightgbm"):
        np.testing.assert_array_equal(parts[name], everything[name][sel])
    np.testing.assert_array_equal(score_window(model, raw, cfg, te), model.combine(everything)[sel])


def test_a_model_from_an_older_release_is_still_scored(small_ensemble):
    """A production version's shipped code may predate ``rows``: score_window falls back to slicing."""
    from modelops.lifecycle import _scoring_context, score_window

    cfg, raw, te, model = small_ensemble

    class Older:
        builder = model.builder

        def predict_frame(self, df):
            return model.predict_frame(df)

    sub, sel = _scoring_context(model, raw, cfg, te)
    np.testing.assert_array_equal(score_window(Older(), raw, cfg, te), model.predict_frame(sub)[sel])


@pytest.mark.parametrize("env,applied,switched", [
    ({}, True, True),
    ({"ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}, True, False),  # a deployment's own choice wins
    ({"MODELOPS_LEAN_ALLOCATORS": "0"}, False, False),
])
def test_lean_memory_is_scoped_and_respects_the_deployment(env, applied, switched):
    """Lean inside the block (an inner block leaves it to the outer one), the previous pool after it."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import json, pyarrow as pa; from modelops._memory import lean_memory\n"
            "before = pa.default_memory_pool().backend_name\n"
            "with lean_memory() as outer:\n"
            "    inside = pa.default_memory_pool().backend_name\n"
            "    with lean_memory() as inner:\n"
            "        pass\n"
            "    still = pa.default_memory_pool().backend_name\n"
            "print(json.dumps([outer, inner, before, inside, still, pa.default_memory_pool().backend_name]))")
    root = Path(__file__).resolve().parents[2]
    clean = {k: v for k, v in os.environ.items() if k not in ("ARROW_DEFAULT_MEMORY_POOL", "MODELOPS_LEAN_ALLOCATORS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**clean, "PYTHONPATH": str(root / "include"), **env})
    assert out.returncode == 0, out.stderr[-2000:]
    outer, inner, before, inside, still, after = json.loads(out.stdout.strip().splitlines()[-1])
    assert (outer, inner) == (applied, False)
    assert inside == still == ("system" if switched else before)
    assert after == before
