"""The files one retrain task hands the next: split ranges instead of copies, no second raw snapshot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelops import lifecycle, storage


def _frame(n_days: int = 6, n_ent: int = 3) -> pd.DataFrame:
    days = pd.date_range("2025-01-01", periods=n_days, freq="D")
    return pd.DataFrame({"date": np.repeat(days, n_ent), "store": np.tile(np.arange(n_ent), n_days),
                         "sales": np.arange(n_days * n_ent, dtype=float)})


def test_is_sorted_is_what_a_stable_sort_would_leave_alone():
    df = _frame()
    assert lifecycle._is_sorted(df, "date", "store")
    swapped = df.copy()
    swapped.loc[[0, 1], "store"] = [1, 0]  # same day, entities out of order
    assert not lifecycle._is_sorted(swapped, "date", "store")
    late = df.copy()
    late.loc[0, "date"] = pd.Timestamp("2025-02-01")
    assert not lifecycle._is_sorted(late, "date", "store")
    assert not lifecycle._is_sorted(df.iloc[::-1], "date", "store")
    assert not lifecycle._is_sorted(df.set_index(df.index + 5), "date", "store")  # the index must be 0..n-1 like a sorted copy's
    with_nat = df.copy()
    with_nat.loc[4, "date"] = pd.NaT
    assert not lifecycle._is_sorted(with_nat, "date", "store")
    for sample in (swapped, late, df.iloc[::-1]):  # agrees with the sort itself
        resorted = sample.sort_values(["date", "store"], kind="stable").reset_index(drop=True)
        assert lifecycle._is_sorted(resorted, "date", "store")


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


def test_load_split_falls_back_to_masks_when_rows_interleave(tmp_path):
    X = pd.DataFrame({"a": np.arange(6, dtype=np.float32)})
    X["_split"] = np.array([0, 1, 0, 2, 1, 2], dtype=np.int8)
    X["_target"] = np.arange(6, dtype=float)
    parts = lifecycle._load_split(storage.write_frame(X, str(tmp_path / "f.parquet")), "none")
    assert parts["train"][0]["a"].tolist() == [0, 2] and parts["validation"][2].tolist() == [1, 4] and parts["test"][2].tolist() == [3, 5]
