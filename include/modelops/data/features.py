"""Feature building, shared by training and serving.

The fitted ``FeatureBuilder`` is pickled inside the MLflow pyfunc, so the exact
same code turns raw rows into model inputs at training and at inference time.

Leakage rule: target lags and rolling means are per entity and use only actuals
at least ``horizon_days`` older than the row's own timestamp. At inference the
builder joins the input with the recent actuals it kept from training, so a
forecast for the days after training still sees the lags it was trained with.

Aggregation rule (``features.target_aggregation``): the rows of one entity on one
calendar day become one value, ``last`` (the latest row; a panel's one row) or the
day's ``mean``/``sum``/``count``/``min``/``max`` of the target. A row on day d reads
``target_lag_k`` = that value on day d - k, and ``target_roll_mean_w`` = the mean of
the values on days [d - horizon - w + 1, d - horizon] that have rows (days without
rows are missing, not zero). The row's own day is never read (horizon >= 1). No
entity column: the same over all rows of a day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pandas.api.indexers import BaseIndexer

from modelops._memory import trim_heap

if TYPE_CHECKING:
    from modelops.config import ModelopsConfig

CALENDAR_FEATURES = ["cal_dayofweek", "cal_day", "cal_month", "cal_weekofyear", "cal_dayofyear", "cal_year", "cal_is_month_start", "cal_is_month_end"]


AGGREGATIONS = ("last", "mean", "sum", "count", "min", "max")


@dataclass
class FeatureBuilder:
    timestamp: str
    entity: str | None
    target: str
    numeric: list[str]
    categorical: list[str]
    calendar: bool = True
    horizon_days: int = 7
    target_lags: list[int] = field(default_factory=list)
    target_rolling_windows: list[int] = field(default_factory=list)
    entity_as_feature: bool = True
    float32: bool = True
    target_aggregation: str = "last"
    # fitted state
    categories: dict[str, list[str]] = field(default_factory=dict)
    history: pd.DataFrame | None = None  # one aggregated actual per (entity, day) of the last history_days
    intraday: bool = False  # timestamps carry a time of day: cal_hour joins the calendar features

    @classmethod
    def from_config(cls, cfg: ModelopsConfig) -> FeatureBuilder:
        f = cfg.features
        return cls(
            timestamp=cfg.data.timestamp_column,
            entity=cfg.data.entity_column,
            target=cfg.data.target_column,
            numeric=list(f.numeric),
            categorical=list(f.categorical),
            calendar=f.calendar,
            horizon_days=f.horizon_days,
            target_lags=sorted(f.target_lags),
            target_rolling_windows=sorted(f.target_rolling_windows),
            entity_as_feature=f.entity_as_feature and cfg.data.entity_column is not None,
            float32=cfg.training.use_float32,
            target_aggregation=f.target_aggregation,
        )

    @property
    def _ent(self) -> str:
        """Column name of the entity in the kept history (a constant entity when the data has none)."""
        return self.entity or "_entity"

    def _entities(self, df: pd.DataFrame) -> np.ndarray:
        return df[self.entity].to_numpy() if self.entity else np.zeros(len(df), dtype=np.int64)

    # -- fitting -------------------------------------------------------------------
    @property
    def uses_target_history(self) -> bool:
        return bool(self.target_lags or self.target_rolling_windows)

    @property
    def history_days(self) -> int:
        """How many days of actuals a row's lag features can reach back."""
        if not self.uses_target_history:
            return 0
        longest_roll = max(self.target_rolling_windows, default=0)
        return max(max(self.target_lags, default=0), self.horizon_days + longest_roll)

    def fit(self, df: pd.DataFrame) -> FeatureBuilder:
        """Learn category vocabularies and keep the last actuals per entity for serving."""
        self.categories = {
            c: sorted(map(str, pd.Series(df[c]).dropna().astype(str).unique())) for c in self.categorical
        }
        stamp = pd.to_datetime(df[self.timestamp])
        self.intraday = bool(len(stamp)) and bool((stamp != stamp.dt.normalize()).any())
        if self.uses_target_history:
            ts = stamp.dt.normalize()
            cutoff = ts.max() - pd.Timedelta(days=self.history_days)
            y = pd.to_numeric(df[self.target], errors="coerce")
            keep = ((ts > cutoff) & y.notna()).to_numpy()
            rows = pd.DataFrame({self._ent: self._entities(df)[keep], "_day": ts.to_numpy()[keep],
                                 "_y": y.to_numpy(dtype="float64")[keep], "_ts": stamp.to_numpy()[keep]})
            self.history = self._aggregate_frame(rows).reset_index(drop=True)
        return self

    def _aggregate_frame(self, rows: pd.DataFrame) -> pd.DataFrame:
        """(entity, _day, _y[, _ts]) rows -> one ``target_aggregation`` value per (entity, day)."""
        keys = [self._ent, "_day"]
        how = getattr(self, "target_aggregation", "last")
        if how == "last":
            if "_ts" in rows.columns:
                rows = rows.sort_values("_ts", kind="stable")
            return rows.drop_duplicates(keys, keep="last")[[*keys, "_y"]]
        grouped = rows.groupby(keys, sort=False, dropna=False)["_y"]
        return (grouped.size().astype("float64") if how == "count" else grouped.agg(how)).rename("_y").reset_index()

    @property
    def feature_names(self) -> list[str]:
        names = list(self.numeric)
        names += [f"{c}_code" for c in self.categorical]
        if self.entity_as_feature:
            names.append("entity_code")
        if self.calendar:
            names += CALENDAR_FEATURES + (["cal_hour"] if getattr(self, "intraday", False) else [])
        names += [f"target_lag_{k}" for k in self.target_lags]
        names += [f"target_roll_mean_{w}" for w in self.target_rolling_windows]
        return names

    @property
    def categorical_feature_names(self) -> list[str]:
        return [f"{c}_code" for c in self.categorical]

    # -- transforming ----------------------------------------------------------------
    def transform(self, df: pd.DataFrame, use_history: bool = True) -> pd.DataFrame:
        """Model inputs for ``df``'s rows, in ``df``'s order.

        ``use_history`` adds the actuals kept at fit time; training calls it with
        False because the training frame already holds its own past.
        """
        dtype = np.float32 if self.float32 else np.float64
        # One (features x rows) block, each feature written into its row as soon as it is computed:
        # the frame wraps it as is, and no second full set of columns ever exists.
        names = self.feature_names
        block = np.empty((len(names), len(df)), dtype=dtype)
        row = {name: i for i, name in enumerate(names)}

        def put(name: str, values: Any) -> None:
            block[row[name]] = values

        ts = pd.to_datetime(df[self.timestamp])
        if self.uses_target_history:
            # First, while the block's pages are still untouched (np.empty reserves, writing commits):
            # this step's temporaries and the block are then never resident together.
            for name, values in self._target_history_features(df, ts.dt.normalize(), use_history, dtype).items():
                put(name, values)
            trim_heap()
        for c in self.numeric:
            put(c, pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=dtype, na_value=np.nan))
        for c in self.categorical:
            codes = _category_codes(df[c], self.categories.get(c, []))
            put(f"{c}_code", np.where(codes < 0, np.nan, codes))  # unseen or missing category -> missing, handled by the boosters
        if self.entity_as_feature:
            put("entity_code", pd.to_numeric(df[self.entity], errors="coerce").to_numpy(dtype=dtype, na_value=np.nan)
                if pd.api.types.is_numeric_dtype(df[self.entity]) else pd.util.hash_array(df[self.entity].astype(str).to_numpy()).astype(dtype) % 100003)
        if self.calendar:
            put("cal_dayofweek", ts.dt.dayofweek.to_numpy())
            put("cal_day", ts.dt.day.to_numpy())
            put("cal_month", ts.dt.month.to_numpy())
            put("cal_weekofyear", ts.dt.isocalendar()["week"].to_numpy(dtype=dtype))
            put("cal_dayofyear", ts.dt.dayofyear.to_numpy())
            put("cal_year", ts.dt.year.to_numpy())
            put("cal_is_month_start", ts.dt.is_month_start.to_numpy())
            put("cal_is_month_end", ts.dt.is_month_end.to_numpy())
            if getattr(self, "intraday", False):
                put("cal_hour", ts.dt.hour.to_numpy())
        return pd.DataFrame(block.T, index=df.index, columns=names, copy=False)

    def _known_actuals(self, df: pd.DataFrame, day: pd.Series, use_history: bool) -> pd.DataFrame:
        """Actuals (entity, day, y) a row may look back at: the input's non-null targets aggregated per
        entity and day, after the kept history (the input's day wins over the history's)."""
        known = pd.DataFrame({self._ent: self._entities(df), "_day": day.to_numpy(),
                              "_ts": pd.to_datetime(df[self.timestamp]).to_numpy()})
        if self.target in df.columns:
            known["_y"] = pd.to_numeric(df[self.target], errors="coerce").to_numpy(dtype="float64")
        else:
            known["_y"] = np.nan
        known = self._aggregate_frame(known[known["_y"].notna()])
        if use_history and self.history is not None and len(self.history):
            known = pd.concat([self.history, known], ignore_index=True)
        return known

    def _known_arrays(self, df: pd.DataFrame, rdays: np.ndarray, use_history: bool
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray | None] | None:
        """The actuals as (entity, day number, y) arrays, the kept history's first, plus how many of them
        come from the history and, when the input has times of day, the input rows' timestamps (ns);
        None when the kept history has null entities or non-day timestamps (the indexed path handles those)."""
        ents = self._entities(df)
        tsns = None
        if self.target in df.columns:
            y = pd.to_numeric(df[self.target], errors="coerce").to_numpy(dtype="float64")
            m = ~np.isnan(y)
            ent, days, y = ents[m], rdays[m], y[m]
            if getattr(self, "intraday", False):
                tsns = pd.to_datetime(df[self.timestamp]).to_numpy().astype("datetime64[ns]").astype(np.int64)[m]
        else:
            ent, days, y = ents[:0], rdays[:0], np.empty(0)
        n_hist = 0
        if use_history and self.history is not None and len(self.history):
            h = self.history
            hdays = _day_numbers(h["_day"])
            if hdays is None or h[self._ent].isna().any():
                return None
            n_hist = len(h)
            ent = np.concatenate([h[self._ent].to_numpy(), ent])
            days = np.concatenate([hdays, days])
            y = np.concatenate([h["_y"].to_numpy(dtype="float64"), y])
            if tsns is not None:
                tsns = np.concatenate([hdays * 86_400_000_000_000, tsns])
        return ent, days, y, n_hist, tsns

    def _target_history_features(self, df: pd.DataFrame, day: pd.Series, use_history: bool, dtype: type) -> dict[str, np.ndarray]:
        """Lags and rolling means by integer keys (entity code x day number) instead of MultiIndex joins.

        Same values as :meth:`_target_history_features_indexed` (tested equal): a lag is an exact
        lookup, and the rolling mean runs pandas' own rolling on the same per-entity daily grid;
        only the joins change, which cost most of the time and memory of ``transform`` (O(n log n)
        searches on int64 keys instead of hashing MultiIndexes). Timestamps with a time zone, NaT
        or null entities take the indexed path.
        """
        rdays = _day_numbers(day)
        rows_ent = pd.Series(self._entities(df))
        known = self._known_arrays(df, rdays, use_history) if rdays is not None and not rows_ent.isna().any() else None
        if known is None:
            return self._target_history_features_indexed(df, day, use_history, dtype)
        k_ent, kdays, k_y, n_hist, k_ts = known
        del known
        n = len(df)
        out: dict[str, np.ndarray] = {}
        names = [f"target_lag_{k}" for k in self.target_lags] + [f"target_roll_mean_{w}" for w in self.target_rolling_windows]
        if not len(k_y) or n == 0:
            return {name: np.full(n, np.nan, dtype=dtype) for name in names}
        # Temporaries are row-sized int64 arrays: each is dropped as soon as it is used, which keeps
        # this step's peak at a few of them instead of all ~20 (it was most of transform's peak).
        n_entities, kcode, rcode = _entity_codes(k_ent, rows_ent.to_numpy())  # rcode -1: no actuals
        del k_ent
        d0, d1 = int(kdays.min()), int(max(kdays.max(), rdays.max()))
        span = d1 - d0 + 1
        # one actual per entity and day: the last one (history first, then the input; by time of day
        # when there is one), or the aggregate of the input's rows (the input's day wins over the history's)
        key = kcode * span + (kdays - d0)
        del kcode, kdays
        order = np.argsort(key, kind="stable") if k_ts is None else np.lexsort((k_ts, key))
        del k_ts
        sorted_key = key[order]
        del key
        how = getattr(self, "target_aggregation", "last")
        if how == "last":
            last = np.append(sorted_key[1:] != sorted_key[:-1], True)
            keys, pos_y = sorted_key[last], order[last]
            del sorted_key, order, last
            y = k_y[pos_y]
            del k_y, pos_y
        else:
            keys, y = _aggregate_sorted(sorted_key, k_y[order], order >= n_hist, how)
            del sorted_key, order, k_y
        base = np.where(rcode >= 0, rcode * span - d0, -1)  # a row's key for day q is base + q
        for k in self.target_lags:
            qday = rdays - k
            ok = (rcode >= 0) & (qday >= d0) & (qday <= d1)
            q = base + qday
            del qday
            pos = np.minimum(np.searchsorted(keys, q), keys.size - 1)
            ok &= keys[pos] == q
            del q
            vals = np.full(n, np.nan, dtype=dtype)
            vals[ok] = y[pos[ok]]
            del pos, ok
            out[f"target_lag_{k}"] = vals
        del base
        if self.target_rolling_windows:
            # Daily grid per entity so a window is calendar days, not rows (what pivot_table + reindex built).
            # Entity-major: each entity's days are one contiguous block of ``span`` values, and one
            # rolling pass over all blocks (windows never reach into the previous block) does what a
            # per-entity rolling does, without pandas' per-column overhead (thousands of entities).
            grid = np.full((n_entities, span), np.nan, dtype=np.float64)
            grid[keys // span, keys % span] = y
            flat = pd.Series(grid.ravel())
            del grid
            row_at = rdays - d0 - self.horizon_days  # mean over [d - horizon - w + 1, d - horizon]
            ok = (rcode >= 0) & (row_at >= 0) & (row_at < span)
            flat_at = np.where(ok, rcode * span + row_at, 0)
            del row_at
            for w in self.target_rolling_windows:
                roll = flat.rolling(_BlockWindows(window_size=w, block=span), min_periods=1).mean().to_numpy()
                vals = np.full(n, np.nan, dtype=dtype)
                vals[ok] = roll[flat_at[ok]]
                out[f"target_roll_mean_{w}"] = vals
        return out

    def _target_history_features_indexed(self, df: pd.DataFrame, day: pd.Series, use_history: bool, dtype: type) -> dict[str, np.ndarray]:
        """The MultiIndex formulation: any timestamp/entity type; the reference the keyed path is tested against."""
        known = self._known_actuals(df, day, use_history)
        # One actual per entity and day (the input wins over the stored history).
        ent = self._ent
        known = known.drop_duplicates([ent, "_day"], keep="last")

        rows = pd.DataFrame({ent: self._entities(df), "_day": day.to_numpy()})
        out: dict[str, np.ndarray] = {}
        lookup = known.set_index([ent, "_day"])["_y"]
        for k in self.target_lags:
            idx = pd.MultiIndex.from_arrays([rows[ent], rows["_day"] - pd.Timedelta(days=k)])
            out[f"target_lag_{k}"] = lookup.reindex(idx).to_numpy(dtype=dtype)
        if self.target_rolling_windows:
            # Daily grid per entity so a window is calendar days, not rows.
            wide = known.pivot_table(index="_day", columns=ent, values="_y", aggfunc="last")
            if len(wide):
                full = pd.date_range(wide.index.min(), max(wide.index.max(), rows["_day"].max()), freq="D")
                wide = wide.reindex(full)
            for w in self.target_rolling_windows:
                if not len(wide):
                    out[f"target_roll_mean_{w}"] = np.full(len(rows), np.nan, dtype=dtype)
                    continue
                # mean over [d - horizon - w + 1, d - horizon]: shifted so no recent actual leaks in
                roll = wide.rolling(w, min_periods=1).mean().shift(self.horizon_days)
                stacked = roll.stack(future_stack=True)
                stacked.index = stacked.index.set_names(["_day", ent])
                s = stacked.swaplevel().sort_index()
                idx = pd.MultiIndex.from_arrays([rows[ent], rows["_day"]])
                out[f"target_roll_mean_{w}"] = s.reindex(idx).to_numpy(dtype=dtype)
        return out


def _aggregate_sorted(sorted_key: np.ndarray, y: np.ndarray, from_input: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    """One value per key of a sorted key array: ``how`` over the input's rows of the key; a key only
    the kept history has keeps its (already aggregated) value. Keys and values, sorted by key."""
    start = np.append(True, sorted_key[1:] != sorted_key[:-1])
    group = np.cumsum(start) - 1
    has_input = np.zeros(int(group[-1]) + 1 if len(group) else 0, dtype=bool)
    has_input[group[from_input]] = True
    keep = from_input | ~has_input[group]  # history rows of a day the input also has are dropped
    sk, v, inp = sorted_key[keep], y[keep], from_input[keep]
    if how == "count":
        v = np.where(inp, 1.0, v)  # each input row counts once; a history-only day keeps its count
    first = np.flatnonzero(np.append(True, sk[1:] != sk[:-1]))
    if how in ("sum", "count"):
        vals = np.add.reduceat(v, first)
    elif how == "mean":
        vals = np.add.reduceat(v, first) / np.diff(np.append(first, len(sk)))
    elif how == "min":
        vals = np.minimum.reduceat(v, first)
    elif how == "max":
        vals = np.maximum.reduceat(v, first)
    else:
        raise ValueError(f"unknown target aggregation {how!r}; expected one of {list(AGGREGATIONS)}")
    return sk[first], vals


def _entity_codes(known: np.ndarray, rows: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Integer codes of the entities with actuals, for ``known`` and for ``rows`` (-1: none known).

    Numeric ids go through a sorted search: ``Index.get_indexer`` hashed 1M rows into ~95 MB of
    tables, the largest allocation of the whole feature build. Other types keep the hash lookup.
    """
    if known.dtype.kind in "iuf" and rows.dtype.kind in "iuf":
        ents = np.unique(known)
        kcode = np.searchsorted(ents, known).astype(np.int64)
        pos = np.minimum(np.searchsorted(ents, rows), max(ents.size - 1, 0))
        rcode = np.where(ents[pos] == rows, pos, -1).astype(np.int64) if ents.size else np.full(rows.shape, -1, np.int64)
        return int(ents.size), kcode, rcode
    entities = pd.Index(known).unique()
    return int(entities.size), entities.get_indexer(known).astype(np.int64), entities.get_indexer(rows).astype(np.int64)


def _category_codes(values: pd.Series, vocab: list[str]) -> np.ndarray:
    """Codes of ``values`` (as strings) in ``vocab``; -1 for missing or unseen.

    String and integer columns are converted once per distinct value instead of once per row;
    for them the two give the same strings. Object and float columns convert every value
    (a factorized 1 and 1.0, or 0.0 and -0.0, would share one spelling).
    """
    dt = values.dtype
    if isinstance(dt, pd.StringDtype) or pd.api.types.is_integer_dtype(dt) or pd.api.types.is_bool_dtype(dt):
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        spelled = pd.Series(np.asarray(uniques, dtype=object)).astype("string").astype(object)
        per_unique = pd.Categorical(spelled, categories=vocab).codes.astype(np.int64)
        return np.where(codes >= 0, per_unique[np.maximum(codes, 0)] if per_unique.size else -1, -1)
    return pd.Categorical(values.astype("string").astype(object), categories=vocab).codes.astype(np.int64)


class _BlockWindows(BaseIndexer):
    """Trailing windows of ``window_size`` values that stop at the start of their block of ``block``.

    At a block's first value the window does not overlap the previous one, so pandas' rolling
    kernels start from a clean state there: each block gets exactly the values (and the same
    floating-point sums) a separate ``rolling(window_size, min_periods=1)`` over it would give.
    """

    def get_window_bounds(self, num_values: int = 0, min_periods: int | None = None, center: bool | None = None,
                          closed: str | None = None, step: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        i = np.arange(num_values, dtype=np.int64)
        start = np.maximum(i - self.window_size + 1, i - i % self.block)
        return start, i + 1


def _day_numbers(day: pd.Series) -> np.ndarray | None:
    """Whole days since 1970-01-01 of normalized tz-naive timestamps; None for tz-aware or NaT."""
    if not pd.api.types.is_datetime64_dtype(day.dtype) or getattr(day.dtype, "tz", None) is not None:
        return None
    values = day.to_numpy()
    if np.isnat(values).any():
        return None
    return values.astype("datetime64[D]").astype(np.int64)


def take_rows(X: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """Rows under ``mask``: a slice (no copy) when they are one contiguous range, as day splits of a sorted frame are."""
    idx = np.flatnonzero(mask)
    if len(idx) and idx[-1] - idx[0] + 1 == len(idx):
        return X.iloc[idx[0]:idx[-1] + 1]
    return X.loc[mask] if len(idx) else X.iloc[0:0]
