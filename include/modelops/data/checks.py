"""Rules on the data that the config implies beyond Great Expectations' own: each returns failures in the
same shape as the GX ones (rule, column, observed, expected, examples), so the task log reads the same.

* text in a numeric column, named by its values (``"n/a"``, ``"unknown"``);
* a metric or transform the target does not allow (percentage errors on a target with zeros or
  negative values, ``log1p`` on negative values), caught when the data is first validated rather
  than as a NaN metric or a crash in training;
* a configured column missing from the data, with the nearest column the data has ("did you mean")
  and the config key that named it;
* categorical features with so many distinct values that every one becomes a code the boosters
  must learn (warned above ``validation.warn_categories``; GX fails above ``validation.max_categories``).
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelops.config_io import PERCENTAGE_METRICS

if TYPE_CHECKING:
    from modelops.config import ModelopsConfig


def non_numeric_failure(s: pd.Series, col: str, cfg: ModelopsConfig, max_examples: int) -> dict[str, Any] | None:
    """Cells of a text column that are not numbers (what a CSV with ``"n/a"`` or ``"unknown"`` gives)."""
    present = s.dropna()
    parsed = pd.to_numeric(present.astype(object), errors="coerce")
    bad = present[parsed.isna().to_numpy()]
    if not len(bad):
        return None
    examples = [str(v) for v in pd.unique(bad.astype(str))[:max_examples]]
    return {"rule": "expect_column_values_to_be_numeric", "column": col,
            "observed": f"{len(bad)} non-numeric values ({len(bad) / max(len(s), 1):.2%} of rows)",
            "expected": f"numbers (cells read as missing: data.na_values {list(cfg.data.na_values)})", "examples": examples}


def metric_target_failures(df: pd.DataFrame, cfg: ModelopsConfig) -> list[dict[str, Any]]:
    """Metric and transform against the target's values: percentage errors need a target away from zero,
    ``log1p`` a non-negative one."""
    target = cfg.data.target_column
    if cfg.task != "regression" or target not in df.columns or not pd.api.types.is_numeric_dtype(df[target]):
        return []
    y = df[target].to_numpy(dtype="float64", na_value=np.nan)
    y = y[np.isfinite(y)]
    out = []
    neg, zero = y[y < 0], int((y == 0).sum())
    lo = cfg.validation.target.min
    if lo is not None and lo >= 0:
        neg = neg[:0]  # validation.target.min already refuses them, by name: one failure per cause
    for key, metric in (("evaluation.metric", cfg.evaluation.metric), ("tuning.metric", cfg.tuning_metric)):
        if metric not in PERCENTAGE_METRICS or (key == "tuning.metric" and metric == cfg.evaluation.metric):
            continue
        if len(neg):
            out.append({"rule": "expect_target_to_fit_metric", "column": target,
                        "observed": f"{len(neg)} negative values (min {float(neg.min()):g}): the target crosses zero",
                        "expected": f"a target that stays above zero: {key} {metric} divides by it; use rmse or mae",
                        "examples": [float(v) for v in np.unique(neg)[:3]]})
        if zero:
            out.append({"rule": "expect_target_to_fit_metric", "column": target,
                        "observed": f"{zero} zero values ({zero / max(len(y), 1):.2%} of rows)",
                        "expected": f"no zeros: {key} {metric} skips rows whose actual is 0, so they would never count; "
                                    "use rmse or mae, or leave those rows out of the data", "examples": [0.0]})
    if cfg.training.target_transform == "log1p" and len(neg):
        out.append({"rule": "expect_target_to_fit_transform", "column": target,
                    "observed": f"{len(neg)} negative values (min {float(neg.min()):g})",
                    "expected": "values >= 0: training.target_transform log1p is undefined below -1 and bends sign; set it to none",
                    "examples": [float(v) for v in np.unique(neg)[:3]]})
    return out


def config_key_of(cfg: ModelopsConfig, col: str) -> str:
    d = cfg.data
    for key, name in (("data.timestamp_column", d.timestamp_column), ("data.entity_column", d.entity_column),
                      ("data.target_column", d.target_column)):
        if col == name:
            return key
    return "features.numeric" if col in cfg.features.numeric else "features.categorical" if col in cfg.features.categorical else "the config"


def missing_column_hint(failure: dict[str, Any], df: pd.DataFrame, cfg: ModelopsConfig) -> None:
    """Name the config key of a missing column and the data's nearest column (in place)."""
    col = failure.get("column")
    if failure.get("rule") != "expect_column_to_exist" or not col:
        return
    columns = [str(c) for c in df.columns]
    close = difflib.get_close_matches(col, columns, n=1, cutoff=0.6)
    if not close:
        lower = {c.lower(): c for c in columns}
        close = [lower[col.lower()]] if col.lower() in lower else []
    hint = f"did you mean '{close[0]}'? " if close else ""
    shown = ", ".join(columns[:30]) + (", ..." if len(columns) > 30 else "")
    failure["expected"] = (f"the column to exist ({config_key_of(cfg, col)} names it); {hint}the data's columns: {shown}")


def cardinality_notes(df: pd.DataFrame, cfg: ModelopsConfig) -> list[str]:
    """Warnings for categorical features with many distinct values (below the failing limit)."""
    v = cfg.validation
    out = []
    for col in high_cardinality_candidates(df, cfg):
        n = int(df[col].nunique(dropna=True))
        if v.warn_categories < n <= v.max_categories:
            out.append(f"categorical feature '{col}' has {n} distinct values (validation.warn_categories={v.warn_categories}; "
                       f"the run fails above validation.max_categories={v.max_categories}): each value is a code the "
                       "boosters must learn; group rare values or make it numeric")
    return out


def high_cardinality_candidates(df: pd.DataFrame, cfg: ModelopsConfig) -> list[str]:
    """Categorical features whose values are not already fixed by ``validation.categories``."""
    return [c for c in cfg.features.categorical if c in df.columns and c not in cfg.validation.categories]
