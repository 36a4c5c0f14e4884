"""Why the ensemble predicts what it does: exact TreeSHAP from the boosters, permutation importance, rankings.

SHAP values come from each booster's own C++ TreeSHAP (XGBoost ``pred_contribs``, LightGBM
``pred_contrib``): exact, no new dependency, and the numbers are the booster's own, not a
re-implementation's. Values are per *model input feature* (what ``FeatureBuilder`` makes);
:func:`feature_sources` says which raw column each one comes from, and summing a row's values
over a column's features gives that column's share exactly (SHAP values add).

In which space the values add up
--------------------------------
Each booster's contributions plus its base value equal its *margin*, the raw score before any
link function. The ensemble weights the boosters' outputs with weights w (sum 1), and the
combined values are ``w_x * phi_x + w_l * phi_l`` (base likewise):

* regression, ``target_transform: none``: the ensemble is the weighted sum of the margins, so
  the combined values plus base reproduce the prediction in target units, exactly.
* regression, ``log1p``: the weighted sum is taken in log1p units and then ``expm1``: the
  combined values reproduce ``log1p(prediction)`` exactly. A value phi multiplies
  ``1 + prediction`` by ``exp(phi)``; it is not an amount of target units.
* classification: the ensemble averages the boosters' *probabilities*, not their log-odds. The
  combined values reproduce the weighted mean of the boosters' log-odds (what a log-odds average
  would predict), which is not ``logit(ensemble probability)``; they rank features and give the
  direction of each one's push on both boosters' log-odds, not a share of the probability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import pandas as pd

from modelops.errors import UserInputError

if TYPE_CHECKING:
    from modelops.data.features import FeatureBuilder

BOOSTERS = ("xgboost", "lightgbm")
TARGET_HISTORY = "target history"  # what the lag/rolling features are read from: the target's past actuals


class ExplainInputError(UserInputError):
    """Explanations were asked for, but the data to compute them is not there (rows, columns): never retried."""


def explanation_space(task: str, target_transform: str = "none") -> str:
    """Where the combined values add up (see the module docstring)."""
    if task == "classification":
        return "log-odds (weighted mean of the boosters' log-odds)"
    return "log1p(target)" if target_transform == "log1p" else "target units"


@dataclass
class Contributions:
    """Per-row SHAP values: ``values[i] . sum() + base[i] == output[i]`` in ``space``."""

    values: np.ndarray  # (rows, features), float64
    base: np.ndarray  # (rows,)
    feature_names: list[str]
    space: str

    @property
    def output(self) -> np.ndarray:
        return self.values.sum(axis=1) + self.base

    def mean_abs(self) -> pd.Series:
        """Mean |SHAP| per feature, largest first (the usual global importance)."""
        s = pd.Series(np.abs(self.values).mean(axis=0) if len(self.values) else np.zeros(len(self.feature_names)),
                      index=self.feature_names, dtype="float64")
        return s.sort_values(ascending=False, kind="stable")

    def by_source(self, sources: dict[str, str]) -> Contributions:
        """Values summed per raw column (exact: SHAP values add); the order of first appearance."""
        cols = list(dict.fromkeys(sources.get(f, f) for f in self.feature_names))
        idx = {c: i for i, c in enumerate(cols)}
        out = np.zeros((self.values.shape[0], len(cols)), dtype="float64")
        for j, f in enumerate(self.feature_names):
            out[:, idx[sources.get(f, f)]] += self.values[:, j]
        return Contributions(out, self.base, cols, self.space)


# -- the boosters ------------------------------------------------------------------------------

def _is_xgboost(model: Any) -> bool:
    return type(model).__module__.startswith("xgboost")


def _xgb_matrix(model: Any, X: pd.DataFrame) -> Any:
    import xgboost as xgb

    return xgb.DMatrix(X, missing=np.nan if model.missing is None else model.missing, nthread=model.n_jobs,
                       enable_categorical=bool(model.enable_categorical), feature_types=model.feature_types)


def _xgb_iterations(model: Any) -> tuple[int, int]:
    """The trees ``predict`` uses: up to the best iteration when early stopping picked one."""
    try:
        return 0, int(model.best_iteration) + 1
    except AttributeError:
        return 0, 0


def booster_contributions(model: Any, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(values (rows, features), base (rows,)) of one fitted booster, on its margin (log-odds for classifiers)."""
    if len(X) == 0:
        return np.zeros((0, X.shape[1])), np.zeros(0)
    if _is_xgboost(model):
        raw = model.get_booster().predict(_xgb_matrix(model, X), pred_contribs=True, iteration_range=_xgb_iterations(model))
    else:
        raw = model.predict(X, pred_contrib=True)
    raw = np.asarray(raw, dtype="float64")
    if raw.ndim != 2 or raw.shape[1] != X.shape[1] + 1:
        raise ValueError(f"{type(model).__name__} returned contributions of shape {raw.shape} for {X.shape[1]} features "
                         "(multi-class models are not supported)")
    return raw[:, :-1], raw[:, -1]


def booster_margin(model: Any, X: pd.DataFrame) -> np.ndarray:
    """The booster's raw score (what its contributions add up to)."""
    if _is_xgboost(model):
        return np.asarray(model.predict(X, output_margin=True), dtype="float64")
    return np.asarray(model.predict(X, raw_score=True), dtype="float64")


def ensemble_contributions(model: Any, X: pd.DataFrame) -> Contributions:
    """The ensemble's values: the boosters' values weighted like their outputs (see the module docstring)."""
    parts = {"xgboost": booster_contributions(model.xgb_model, X), "lightgbm": booster_contributions(model.lgbm_model, X)}
    w = model.weights
    values = sum(w[k] * parts[k][0] for k in BOOSTERS)
    base = sum(w[k] * parts[k][1] for k in BOOSTERS)
    return Contributions(np.asarray(values, dtype="float64"), np.asarray(base, dtype="float64"), list(X.columns),
                         explanation_space(model.task, getattr(model, "target_transform", "none")))


# -- features and the raw columns they come from ----------------------------------------------

def feature_sources(builder: FeatureBuilder) -> dict[str, str]:
    """Model input feature -> the raw column it is computed from.

    ``<col>_code`` -> the categorical column; ``entity_code`` -> the entity column; ``cal_*``
    -> the timestamp column; ``target_lag_*``/``target_roll_mean_*`` -> the target's history
    (past actuals of the same entity, or of all rows without one, never closer than
    ``horizon_days``); numeric -> itself.
    """
    out: dict[str, str] = {}
    cats = {f"{c}_code": c for c in builder.categorical}
    for f in builder.feature_names:
        if f in cats:
            out[f] = cats[f]
        elif f == "entity_code":
            out[f] = builder.entity
        elif f.startswith("cal_"):
            out[f] = builder.timestamp
        elif f.startswith(("target_lag_", "target_roll_mean_")):
            out[f] = f"{builder.target} ({TARGET_HISTORY})"
        else:
            out[f] = f
    return out


def importance_table(contrib: Contributions, sources: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per feature: mean |SHAP|, share of the total, rank (1 = most important), mean SHAP, source column."""
    s = contrib.mean_abs()
    total = float(s.sum())
    mean = pd.Series(contrib.values.mean(axis=0) if len(contrib.values) else 0.0, index=contrib.feature_names)
    df = pd.DataFrame({"feature": s.index, "mean_abs_shap": s.to_numpy(),
                       "share": s.to_numpy() / total if total > 0 else 0.0,
                       "rank": np.arange(1, len(s) + 1), "mean_shap": mean.reindex(s.index).to_numpy()})
    if sources is not None:
        df.insert(1, "column", [sources.get(f, f) for f in s.index])
    return df


def top_k(contrib: Contributions, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row the k largest |values|: (feature indices (rows, k), their values, the rest summed).

    ``base + values.sum(1) + rest == output`` for each row, so a stored row still adds up.
    """
    v = contrib.values
    k = min(k, v.shape[1])
    if v.shape[0] == 0 or k == 0:
        return np.zeros((v.shape[0], k), dtype=np.int64), np.zeros((v.shape[0], k)), np.zeros(v.shape[0])
    a = np.abs(v)
    part = np.argpartition(-a, k - 1, axis=1)[:, :k] if k < v.shape[1] else np.tile(np.arange(v.shape[1]), (v.shape[0], 1))
    order = np.argsort(-np.take_along_axis(a, part, axis=1), axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(v, idx, axis=1)
    return idx, vals, v.sum(axis=1) - vals.sum(axis=1)


# -- rankings ----------------------------------------------------------------------------------

def compare_rankings(current: pd.Series, reference: pd.Series, top: int = 10) -> dict[str, Any]:
    """How two importance vectors (mean |SHAP| per feature) differ in order.

    Spearman's rank correlation over the features both know (1 = same order), the overlap of the
    two top-``top`` sets, and per feature both ranks and the move (positive = more important now).
    """
    from scipy.stats import spearmanr

    feats = [f for f in reference.index if f in current.index]
    feats += [f for f in current.index if f not in reference.index]
    cur = current.reindex(feats).fillna(0.0)
    ref = reference.reindex(feats).fillna(0.0)
    r_cur = cur.rank(ascending=False, method="min").astype(int)
    r_ref = ref.rank(ascending=False, method="min").astype(int)
    rho = float("nan")
    if len(feats) >= 2 and cur.nunique() > 1 and ref.nunique() > 1:
        rho = float(spearmanr(cur.to_numpy(), ref.to_numpy()).statistic)
    t = min(top, len(feats))
    top_cur = set(cur.sort_values(ascending=False, kind="stable").index[:t])
    top_ref = set(ref.sort_values(ascending=False, kind="stable").index[:t])
    rows = [{"feature": f, "current": float(cur[f]), "reference": float(ref[f]), "current_rank": int(r_cur[f]),
             "reference_rank": int(r_ref[f]), "rank_change": int(r_ref[f] - r_cur[f])} for f in feats]
    rows.sort(key=lambda r: (r["current_rank"], r["feature"]))
    return {"rank_correlation": None if math.isnan(rho) else rho, "top": t,
            "top_overlap": len(top_cur & top_ref) / t if t else None,
            "entered_top": sorted(top_cur - top_ref, key=lambda f: r_cur[f]),
            "left_top": sorted(top_ref - top_cur, key=lambda f: r_ref[f]), "features": rows}


# -- scoring frames -------------------------------------------------------------------------------

def scoring_frame(model: Any, raw: pd.DataFrame, timestamp: str, mask: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows under ``mask`` and the days before them that the model's lag features reach (as scoring reads them)."""
    first = raw.loc[mask, timestamp].min()
    ctx_days = getattr(getattr(model, "builder", None), "history_days", 0)
    keep = (raw[timestamp] >= first - pd.Timedelta(days=ctx_days)).to_numpy()
    return raw.loc[keep], np.asarray(mask, dtype=bool)[keep]


def model_inputs(model: Any, frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """The model's input features for the rows under ``rows``, built the way the pyfunc builds them."""
    from modelops.data.features import take_rows

    check_columns(model, frame, "the rows to explain", rows)
    X = model.builder.transform(frame, use_history=True)
    return take_rows(X, np.asarray(rows, dtype=bool))


def check_columns(model: Any, frame: pd.DataFrame, where: str, rows: np.ndarray | None = None) -> None:
    """Every raw column the model reads is there: a clear error instead of a KeyError deep in the features.

    With ``rows``, a column without a single value in those rows counts as missing too: reading a
    day's partitions together with earlier ones fills a column the day lacks with nulls, and SHAP
    values of a model input that is absent on every row would only explain the absence.
    """
    b = model.builder
    need = [c for c in (b.timestamp, getattr(b, "entity", None)) if c] + [*b.numeric, *b.categorical]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise ExplainInputError(f"cannot explain {where}: column(s) {missing} that the model reads are missing "
                                f"(columns present: {sorted(map(str, frame.columns))[:30]})")
    if rows is not None:
        sel = np.asarray(rows, dtype=bool)
        empty = [c for c in need if sel.any() and not frame.loc[sel, c].notna().any()]
        if empty:
            raise ExplainInputError(f"cannot explain {where}: column(s) {empty} that the model reads are missing "
                                    f"(no value in any of the {int(sel.sum())} rows to explain)")


def sample_rows(mask: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """``mask`` thinned to at most ``max_rows`` rows, at random but reproducibly (seeded)."""
    mask = np.asarray(mask, dtype=bool)
    idx = np.flatnonzero(mask)
    if len(idx) <= max_rows:
        return mask
    keep = np.sort(np.random.default_rng(seed).choice(idx, size=max_rows, replace=False))
    out = np.zeros_like(mask)
    out[keep] = True
    return out


# -- permutation importance of the whole ensemble -----------------------------------------------

def permutation_importance(score: Callable[[pd.DataFrame], np.ndarray], frame: pd.DataFrame, rows: np.ndarray,
                           y: np.ndarray, columns: Sequence[str], metric: Callable[[np.ndarray, np.ndarray], float],
                           greater_is_better: bool, repeats: int = 3, seed: int = 0,
                           target_column: str | None = None) -> pd.DataFrame:
    """How much worse the gate metric gets when one raw input column is shuffled among the explained rows.

    Model-agnostic: ``score(frame)`` is the whole pyfunc (features built inside, both boosters,
    the weights), so a column's importance includes everything the feature step derives from it.
    ``target_column`` (optional) shuffles the target's *history*: its values on every row of the
    frame (context days included), which is what the lag and rolling features read; the metric
    itself is always computed against ``y``. Importance = mean loss of metric over ``repeats``
    shuffles (positive: the model needs the column).
    """
    rows = np.asarray(rows, dtype=bool)
    base_value = float(metric(y, score(frame)))
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(rows)
    out = []
    targets = [*columns, *([target_column] if target_column else [])]
    for col in targets:
        history = col == target_column
        drops = []
        for _ in range(repeats):
            shuffled = frame.copy(deep=False)
            values = frame[col].to_numpy(copy=True)
            if history:
                values = values[rng.permutation(len(values))]
            else:
                values[idx] = values[idx][rng.permutation(len(idx))]
            shuffled[col] = values
            v = float(metric(y, score(shuffled)))
            drops.append(base_value - v if greater_is_better else v - base_value)
        out.append({"column": f"{col} ({TARGET_HISTORY})" if history else col, "importance": float(np.mean(drops)),
                    "std": float(np.std(drops)), "baseline": base_value, "repeats": repeats})
    df = pd.DataFrame(out, columns=["column", "importance", "std", "baseline", "repeats"])
    df = df.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
    df["rank"] = np.arange(1, len(df) + 1)
    return df
