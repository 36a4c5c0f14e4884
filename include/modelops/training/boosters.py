"""Time-aware splits, the two boosters, and the ensemble weights.

Splits cut on calendar days, never on shuffled rows: the validation and test
windows are strictly later than training, as they would be in production.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Callable

import numpy as np
import pandas as pd

from modelops import metrics as M
from modelops.errors import UserInputError


class TrainingError(UserInputError):
    """Training cannot proceed with this data/config; the message says why."""


@dataclass(frozen=True)
class SplitBounds:
    train_start: str
    validation_start: str
    test_start: str
    test_end: str  # exclusive
    train_rows: int
    validation_rows: int
    test_rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_split(df: pd.DataFrame, timestamp: str, train: float, validation: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, SplitBounds]:
    """Row masks for train/validation/test by whole days (sorted frame not required)."""
    day = pd.to_datetime(df[timestamp]).dt.normalize()
    uniq = np.sort(day.unique())
    n = len(uniq)
    if n < 3:
        raise TrainingError(f"need at least 3 distinct days to split train/validation/test, got {n}")
    n_train = max(1, int(round(n * train)))
    n_val = max(1, int(round(n * validation)))
    if n_train + n_val >= n:
        n_train = n - n_val - 1
    v0, t0 = uniq[n_train], uniq[n_train + n_val]
    tr = (day < v0).to_numpy()
    va = ((day >= v0) & (day < t0)).to_numpy()
    te = (day >= t0).to_numpy()
    bounds = SplitBounds(
        train_start=str(pd.Timestamp(uniq[0]).date()),
        validation_start=str(pd.Timestamp(v0).date()),
        test_start=str(pd.Timestamp(t0).date()),
        test_end=str((pd.Timestamp(uniq[-1]) + pd.Timedelta(days=1)).date()),
        train_rows=int(tr.sum()), validation_rows=int(va.sum()), test_rows=int(te.sum()),
    )
    return tr, va, te, bounds


def is_time_sorted(df: pd.DataFrame, timestamp: str, entity: str | None) -> bool:
    """Ordered by (timestamp, entity) with a 0..n-1 index: what a stable sort on both would leave unchanged."""
    if len(df) < 2:
        return True
    if not df.index.equals(pd.RangeIndex(len(df))):
        return False
    t = df[timestamp]
    if t.isna().any() or not t.is_monotonic_increasing:
        return False
    if entity is None:
        return True
    if df[entity].isna().any():
        return False
    tv = t.to_numpy()
    same = tv[1:] == tv[:-1]
    if not same.any():
        return True
    e = df[entity].to_numpy()
    try:
        return bool(np.all(e[1:][same] >= e[:-1][same]))
    except TypeError:  # mixed entity types: let the sort decide
        return False


def sort_by_time(df: pd.DataFrame, timestamp: str, entity: str | None) -> pd.DataFrame:
    """Time order for day splits; a frame already in order (daily partitions usually are) is returned as is, not copied."""
    if is_time_sorted(df, timestamp, entity):
        return df
    return df.sort_values([c for c in (timestamp, entity) if c], kind="stable").reset_index(drop=True)


def transform_target(y: np.ndarray, how: str) -> np.ndarray:
    y = np.asarray(y, dtype="float64")
    if how == "log1p":
        if np.any(y < 0):
            raise TrainingError("target_transform log1p needs a non-negative target")
        return np.log1p(y)
    return y


def _n_jobs() -> int:
    """Booster threads: ``$MODELOPS_TRAINING_THREADS``, else the CPU count (at most 4).

    Set it when several training tasks share a worker's cores: OpenMP threads of two boosters
    on the same cores spin against each other and can run many times slower than one thread each.
    """
    import os

    env = os.environ.get("MODELOPS_TRAINING_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise TrainingError(f"MODELOPS_TRAINING_THREADS must be a whole number, got {env!r}") from None
    return max(1, min(4, os.cpu_count() or 1))


# Called after every boosting round with (round, validation metric); tuning reports it to a pruner.
# It may raise to stop training (optuna.TrialPruned); the boosters let the exception through.
IterationHook = Callable[[int, float], None]


def _xgb_hook(hook: IterationHook) -> Any:
    import xgboost as xgb

    class _Hook(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:  # noqa: ARG002
            curves = evals_log.get("validation_0") or {}
            if curves:
                hook(epoch, float(next(iter(curves.values()))[-1]))
            return False

    return _Hook()


def _lgbm_hook(hook: IterationHook) -> Any:
    def _callback(env: Any) -> None:
        for entry in env.evaluation_result_list or []:
            if entry[0] != "training":
                hook(env.iteration, float(entry[2]))
                return

    _callback.order = 20  # type: ignore[attr-defined]  # before early stopping (30)
    return _callback


def train_xgboost(X_tr: pd.DataFrame, y_tr: np.ndarray, X_va: pd.DataFrame, y_va: np.ndarray, params: dict[str, Any],
                  task: str, early_stopping_rounds: int, seed: int, on_iteration: IterationHook | None = None) -> tuple[Any, dict[str, Any]]:
    import xgboost as xgb

    p = {"n_estimators": 500, "tree_method": "hist", **params}
    cls = xgb.XGBRegressor if task == "regression" else xgb.XGBClassifier
    extra: dict[str, Any] = {"eval_metric": "rmse" if task == "regression" else "logloss"}
    if on_iteration is not None:
        extra["callbacks"] = [_xgb_hook(on_iteration)]
    model = cls(**p, early_stopping_rounds=early_stopping_rounds, random_state=seed, n_jobs=_n_jobs(), **extra)
    t0 = time.perf_counter()
    model.fit(X_tr, y_tr, eval_set=[(X_va, y_va)], verbose=False)
    fit_seconds = time.perf_counter() - t0
    curve = model.evals_result().get("validation_0", {})
    info = {"best_iteration": int(model.best_iteration), "params": p, "fit_seconds": fit_seconds,
            "validation_curve": next(iter(curve.values()), [])}
    return model, info


def train_lightgbm(X_tr: pd.DataFrame, y_tr: np.ndarray, X_va: pd.DataFrame, y_va: np.ndarray, params: dict[str, Any],
                   task: str, early_stopping_rounds: int, seed: int, categorical: list[str],
                   on_iteration: IterationHook | None = None) -> tuple[Any, dict[str, Any]]:
    import lightgbm as lgb

    p = {"n_estimators": 500, **params}
    cls = lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier
    model = cls(**p, random_state=seed, n_jobs=_n_jobs(), verbose=-1)
    t0 = time.perf_counter()
    model.fit(
        X_tr, y_tr, eval_set=[(X_va, y_va)],
        eval_metric="rmse" if task == "regression" else "binary_logloss",
        categorical_feature=[c for c in categorical if c in X_tr.columns] or "auto",
        callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False),
                   *([_lgbm_hook(on_iteration)] if on_iteration is not None else [])],
    )
    fit_seconds = time.perf_counter() - t0
    curve = model.evals_result_.get("valid_0", {})
    info = {"best_iteration": int(model.best_iteration_ or p["n_estimators"]), "params": p, "fit_seconds": fit_seconds,
            "validation_curve": list(next(iter(curve.values()), []))}
    return model, info


def fit_weights(pred_xgb: np.ndarray, pred_lgbm: np.ndarray, y: np.ndarray, task: str, metric: str,
                greater_is_better: bool, inverse: Any = None, steps: int = 21) -> dict[str, float]:
    """Grid-search the xgboost weight in [0, 1] on validation for the configured metric."""
    best_w, best = 0.5, None
    for w in np.linspace(0.0, 1.0, steps):
        raw = w * pred_xgb + (1 - w) * pred_lgbm
        pred = inverse(raw) if inverse else raw
        score = M.compute(task, y, pred)[metric]
        if np.isnan(score):
            continue
        if best is None or (score > best if greater_is_better else score < best):
            best, best_w = score, float(w)
    return {"xgboost": round(best_w, 4), "lightgbm": round(1 - best_w, 4)}


def feature_importance(model: Any, names: list[str]) -> pd.Series:
    imp = getattr(model, "feature_importances_", None)
    if imp is None:
        return pd.Series(dtype="float64")
    s = pd.Series(np.asarray(imp, dtype="float64"), index=names)
    total = s.sum()
    return (s / total if total else s).sort_values(ascending=False)


def parse_day(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
