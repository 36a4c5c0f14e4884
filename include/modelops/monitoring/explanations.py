"""Explanations as lifecycle steps: per version (evaluate), per prediction (batch scoring), per day (drift).

The maths is in ``modelops.training.explain``; this module reads the rows, loads the models, and
stores what comes out: MLflow artifacts of the version's run (``explain/``), the drift run
(``drift_report/attribution/``), and the package tables (``explanation_store``). Every step
computes everything first and stores afterwards, so bad input (no rows, a missing column) fails
with a message and leaves nothing half-written.
"""

from __future__ import annotations

import logging
import re
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from modelops import tracking
from modelops.config import ModelopsConfig
from modelops.data import storage
from modelops.governance import registry
from modelops.training import explain as X

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from modelops.tracking import RunContext

log = logging.getLogger(__name__)

ARTIFACTS = "explain"
REFERENCE = f"{ARTIFACTS}/shap_reference.json"
SUMMARY = f"{ARTIFACTS}/explanation.json"
SPACE_NOTE = {
    "target units": "Base value plus the values of a row give its prediction.",
    "log1p(target)": "Base value plus the values give log1p(prediction): a value v multiplies 1 + prediction by exp(v).",
}
CLASSIFICATION_NOTE = ("The ensemble averages probabilities; these values add up to the weighted mean of the boosters' "
                       "log-odds, not to logit(probability): read them as each feature's push and its direction.")


def _note(space: str) -> str:
    return SPACE_NOTE.get(space, CLASSIFICATION_NOTE)


def load_impl(uri: str) -> Any:
    """The EnsembleModel behind a registry URI (the same guard as every other model load)."""
    from modelops.security import check_model_uri

    check_model_uri(uri)
    return registry.fluent().pyfunc.load_model(uri).unwrap_python_model()


def _metric_name(name: str) -> str:
    """MLflow metric keys: letters, digits and ``_-. /`` only."""
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", name)


def _contributions(impl: Any, raw: pd.DataFrame, ts: str, rows: np.ndarray) -> tuple[Any, Any, Any]:
    """(contributions, the model's inputs, the scoring frame and its row mask) for ``rows`` of ``raw``."""
    sub, sel = X.scoring_frame(impl, raw, ts, rows)
    inputs = X.model_inputs(impl, sub, sel)
    return X.ensemble_contributions(impl, inputs), inputs, (sub, sel)


def additivity_error(impl: Any, inputs: pd.DataFrame, contrib: X.Contributions) -> float:
    """Largest |combined values + base - the ensemble's output in the explanation space| (0 up to float error).

    Regression: the weighted sum of the boosters' raw outputs; classification: of their log-odds.
    """
    import numpy as np

    if not len(inputs):
        return 0.0
    boosters = {"xgboost": impl.xgb_model, "lightgbm": impl.lgbm_model}
    out = sum(impl.weights[k] * X.booster_margin(boosters[k], inputs) for k in X.BOOSTERS)
    return float(np.max(np.abs(contrib.output - out)))


# -- per version, at evaluate time ------------------------------------------------------------------

def explain_version(cfg: ModelopsConfig, ctx: RunContext, features: dict[str, Any], ensemble: dict[str, Any],
                    production_version: str | None) -> dict[str, Any] | None:
    """TreeSHAP and permutation importance of the candidate on its test window, vs production on the same rows.

    Logged to the candidate's MLflow run under ``explain/`` (tables, plot, HTML page, the reference
    the drift DAG compares days with); returns the short summary the approval form shows.
    """
    import numpy as np

    from modelops import metrics as M

    ex = cfg.explain
    if not ex.enabled:
        return None
    raw = storage.read_frame(features["raw_sorted_path"])
    ts, target = cfg.data.timestamp_column, cfg.data.target_column
    split = features["split"]
    test_mask = (raw[ts] >= split["test_start"]).to_numpy() if len(raw) else np.zeros(0, dtype=bool)
    if not test_mask.any():
        raise X.ExplainInputError(
            f"explain: the test window [{split['test_start']}, {split['test_end']}) has no rows in {features['raw_sorted_path']}, "
            "so there is nothing to explain the candidate on; widen the training window or set explain.enabled: false")
    rows = X.sample_rows(test_mask, ex.max_rows, cfg.training.seed)
    cand = load_impl(ensemble["model_uri"])
    contrib, inputs, (sub, sel) = _contributions(cand, raw, ts, rows)
    err = additivity_error(cand, inputs, contrib)
    sources = X.feature_sources(cand.builder)
    table = X.importance_table(contrib, sources)
    by_column = X.importance_table(contrib.by_source(sources))

    metric, thr = cfg.evaluation.metric, cfg.evaluation.decision_threshold
    y = sub.loc[sel, target].to_numpy(dtype="float64")
    columns = [*cfg.features.numeric, *cfg.features.categorical, *([cfg.data.entity_column] if cand.builder.entity_as_feature else [])]
    perm = X.permutation_importance(lambda f: cand.predict_frame(f, rows=sel), sub, sel, y, columns,
                                    lambda yt, yp: M.compute(cfg.task, yt, yp, thr)[metric], cfg.greater_is_better,
                                    ex.permutation_repeats, cfg.training.seed,
                                    target_column=target if cand.builder.uses_target_history else None)
    prod = None
    if production_version:
        impl = load_impl(f"models:/{cfg.model_name}/{production_version}")
        pc, _, _ = _contributions(impl, raw, ts, rows)
        prod = {"version": str(production_version), "importance": X.importance_table(pc, X.feature_sources(impl.builder))}
    summary = _version_summary(cfg, contrib, table, by_column, perm, prod, int(rows.sum()), split, err)
    _log_version(cfg, ensemble["mlflow_run_id"], summary, table, by_column, perm, prod, sources)
    log.info("explained %s on %d test-window rows (%s): top %s; additivity error %.2g%s", cfg.model_name, summary["rows"],
             summary["space"], [r["feature"] for r in summary["importance"][:5]], err,
             f"; vs production v{production_version} rank correlation {summary['vs_production']['rank_correlation']}" if prod else "")
    return _short(summary, ex.top_features)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in df.to_dict("records")]


def _version_summary(cfg: ModelopsConfig, contrib: X.Contributions, table: pd.DataFrame, by_column: pd.DataFrame,
                     perm: pd.DataFrame, prod: dict[str, Any] | None, n: int, split: dict[str, Any], err: float) -> dict[str, Any]:
    import pandas as pd

    summary: dict[str, Any] = {
        "space": contrib.space, "rows": n, "test_window": [split["test_start"], split["test_end"]], "metric": cfg.evaluation.metric,
        "additivity_error": err, "importance": _records(table), "by_column": _records(by_column), "permutation": _records(perm),
        "permutation_repeats": cfg.explain.permutation_repeats, "production": None, "vs_production": None,
    }
    if prod is not None:
        cur = pd.Series(table["mean_abs_shap"].to_numpy(), index=table["feature"])
        ref = pd.Series(prod["importance"]["mean_abs_shap"].to_numpy(), index=prod["importance"]["feature"])
        summary["production"] = {"version": prod["version"], "importance": _records(prod["importance"])}
        summary["vs_production"] = {"version": prod["version"], **X.compare_rankings(cur, ref, cfg.explain.top_features)}
    return summary


def _short(summary: dict[str, Any], top: int) -> dict[str, Any]:
    """What goes to XCom and the approval form: the top of each list, nothing row-sized."""
    out = {k: summary[k] for k in ("space", "rows", "test_window", "metric", "additivity_error", "permutation_repeats")}
    out["importance"] = summary["importance"][:top]
    out["permutation"] = summary["permutation"][:top]
    vs = summary.get("vs_production")
    out["vs_production"] = None
    if vs:
        keep = {r["feature"] for r in summary["importance"][:top]} | set(vs["left_top"])
        out["vs_production"] = {**{k: v for k, v in vs.items() if k != "features"},
                                "features": [r for r in vs["features"] if r["feature"] in keep]}
    out["artifacts"] = ARTIFACTS
    return out


def _log_version(cfg: ModelopsConfig, run_id: str, summary: dict[str, Any], table: pd.DataFrame, by_column: pd.DataFrame,
                 perm: pd.DataFrame, prod: dict[str, Any] | None, sources: dict[str, str]) -> None:
    import tempfile
    from pathlib import Path

    from modelops.monitoring import explain_report as R

    c = registry.client()
    reference = {"space": summary["space"], "rows": summary["rows"], "test_window": summary["test_window"],
                 "features": {r["feature"]: r["mean_abs_shap"] for r in summary["importance"]},
                 "columns": {r["feature"]: r["mean_abs_shap"] for r in summary["by_column"]}, "feature_sources": sources}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        table.to_csv(d / "shap_importance.csv", index=False)
        by_column.to_csv(d / "shap_importance_by_column.csv", index=False)
        perm.to_csv(d / "permutation_importance.csv", index=False)
        if prod is not None:
            prod["importance"].to_csv(d / f"shap_importance_production_v{prod['version']}.csv", index=False)
        (d / "importance.png").write_bytes(R.plot_importance(summary, cfg.explain.top_features))
        (d / "explanation.html").write_text(R.version_page(f"{cfg.model_name}: why the candidate predicts what it does",
                                                           summary, "importance.png", cfg.explain.top_features * 2,
                                                           _note(summary["space"])), encoding="utf-8")
        c.log_artifacts(run_id, str(d), ARTIFACTS)
    tracking.log_json(run_id, summary, SUMMARY)
    tracking.log_json(run_id, reference, REFERENCE)  # last: what the drift DAG looks for
    metrics = {f"shap_mean_abs.{_metric_name(r['feature'])}": r["mean_abs_shap"] for r in summary["importance"]}
    metrics.update({f"permutation_importance.{_metric_name(r['column'])}": r["importance"] for r in summary["permutation"]})
    vs = summary.get("vs_production")
    if vs and vs.get("rank_correlation") is not None:
        metrics["shap_rank_correlation_vs_production"] = vs["rank_correlation"]
    tracking.log_metrics(run_id, metrics)


def load_summary(run_id: str, path: str = SUMMARY) -> dict[str, Any] | None:
    """A version run's explanation artifact (None when it has none: an older release, or explain disabled)."""
    import json
    import tempfile
    from pathlib import Path

    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = registry.client().download_artifacts(run_id, path, tmp)
            return json.loads(Path(local).read_text(encoding="utf-8"))
    except Exception as exc:  # noqa: BLE001 - MLflow raises different types per store for a missing artifact
        log.info("run %s has no %s (%s)", run_id, path, type(exc).__name__)
        return None


# -- per prediction ----------------------------------------------------------------------------------

def score_and_explain(impl: Any, raw: pd.DataFrame, cfg: ModelopsConfig, mask: np.ndarray, k: int,
                      max_rows: int | None = None) -> tuple[Any, pd.DataFrame]:
    """Predictions for the rows under ``mask`` and their top-k contributions, from one feature build.

    The predictions are the ones ``score_window`` makes (same inputs, same boosters, same weights);
    the frame has ``shap_space, shap_base, shap_other, shap_<i>_feature, shap_<i>_value`` (i = 1..k),
    with ``shap_base + sum(shap_<i>_value) + shap_other`` = the row's output in ``shap_space``.
    With ``max_rows``, a seeded sample of that many rows is explained; the others' columns are empty.
    """
    import numpy as np
    import pandas as pd

    from modelops.training.ensemble import predict_raw

    sub, sel = X.scoring_frame(impl, raw, cfg.data.timestamp_column, mask)
    inputs = X.model_inputs(impl, sub, sel)
    pred = impl.combine({"xgboost": predict_raw(impl.xgb_model, inputs, impl.task),
                         "lightgbm": predict_raw(impl.lgbm_model, inputs, impl.task)})
    n = len(inputs)
    keep = X.sample_rows(np.ones(n, dtype=bool), max_rows or n, cfg.training.seed)
    contrib = X.ensemble_contributions(impl, inputs if keep.all() else inputs.iloc[np.flatnonzero(keep)])
    idx, vals, rest = X.top_k(contrib, k)
    names = np.asarray(contrib.feature_names, dtype=object)

    def spread(values: Any, fill: Any) -> Any:  # the explained rows' values at their places, ``fill`` elsewhere
        if keep.all():
            return values
        out = np.full(n, fill, dtype=object if fill is None else "float64")
        out[keep] = values
        return out

    cols: dict[str, Any] = {"shap_space": spread(np.full(len(contrib.base), contrib.space, dtype=object), None),
                            "shap_base": spread(contrib.base, np.nan), "shap_other": spread(rest, np.nan)}
    for i in range(idx.shape[1]):
        cols[f"shap_{i + 1}_feature"] = spread(names[idx[:, i]], None)
        cols[f"shap_{i + 1}_value"] = spread(vals[:, i], np.nan)
    return pred, pd.DataFrame(cols)


# -- attribution drift, per day ------------------------------------------------------------------------

def attribution_drift(cfg: ModelopsConfig, production_version: str | None, start: date, end: date) -> dict[str, Any]:
    """Mean |SHAP| of production on the day's rows vs on its test window: computed, not stored.

    ``{"available": False, "reason": ...}`` when there is nothing to compare with (no production
    version, or one registered without explanations); ``ExplainInputError`` when the day's data
    cannot be explained (no rows, a column the model reads is missing).
    """
    import numpy as np
    import pandas as pd

    ad = cfg.explain.attribution_drift
    if not ad.enabled:
        return {"available": False, "reason": "explain.attribution_drift.enabled is false"}
    if production_version is None:
        return {"available": False, "reason": "no production version to explain"}
    mv = registry.get_version(cfg.model_name, production_version)
    reference = load_summary(mv.run_id, REFERENCE)
    if not reference or not reference.get("features"):
        return {"available": False, "reason": f"production v{production_version} has no {REFERENCE} (registered before "
                                              "explanations, or with explain.enabled: false)"}
    from modelops.data.shapes import time_order

    impl = load_impl(f"models:/{cfg.model_name}/{production_version}")
    ts = cfg.data.timestamp_column
    raw = storage.read_window(cfg, start - timedelta(days=impl.builder.history_days), end)
    where = f"{start} with production v{production_version} (data {cfg.data.path})"
    if raw.empty:
        raise X.ExplainInputError(f"attribution drift: no rows in [{start}, {end}) under {cfg.data.path}")
    X.check_columns(impl, raw, where)
    raw = raw.sort_values(time_order(cfg), kind="stable").reset_index(drop=True)
    day = raw[ts].dt.normalize()
    mask = ((day >= np.datetime64(start)) & (day < np.datetime64(end))).to_numpy()
    if not mask.any():
        raise X.ExplainInputError(f"attribution drift: no rows with {ts} in [{start}, {end}) under {cfg.data.path}")
    X.check_columns(impl, raw, where, mask)
    rows = X.sample_rows(mask, ad.max_rows, cfg.training.seed)
    contrib, _, _ = _contributions(impl, raw, ts, rows)
    cmp = X.compare_rankings(contrib.mean_abs(), pd.Series(reference["features"], dtype="float64"), cfg.explain.top_features)
    rho = cmp["rank_correlation"]
    return {"available": True, "model_version": str(production_version), "rows": int(rows.sum()), "space": contrib.space,
            "min_rank_correlation": ad.min_rank_correlation, "attribution_drift": rho is not None and rho < ad.min_rank_correlation,
            "reference_rows": reference.get("rows"), "reference_window": reference.get("test_window"), **cmp}


def record_attribution(cfg: ModelopsConfig, ctx: RunContext, result: dict[str, Any], day: date, run_id: str) -> dict[str, Any]:
    """Store the day's attribution drift (drift run + table) and return its short form for the drift result."""
    import tempfile
    from pathlib import Path

    from modelops import db
    from modelops.monitoring import explain_report as R
    from modelops.monitoring import explanation_store as S

    c = registry.client()
    engine = db.get_engine()
    db.migrate(engine)
    if not result.get("available"):
        c.set_tag(run_id, "modelops.attribution_drift", f"not available: {result.get('reason')}"[:500])
        S.save_attribution(engine, cfg.model_name, day, {"features": [], "attribution_drift": False, "rows": 0}, None)
        log.info("attribution drift on %s not computed: %s", day, result.get("reason"))
        return {"available": False, "reason": result.get("reason")}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "attribution.png").write_bytes(R.plot_attribution(result["features"], result["rank_correlation"], 25))
        (d / "attribution_drift.html").write_text(
            R.attribution_page(f"{cfg.model_name} attribution drift {day.isoformat()}", result, "attribution.png", result["top"]),
            encoding="utf-8")
        c.log_artifacts(run_id, str(d), "drift_report/attribution")
    tracking.log_json(run_id, result, "drift_report/attribution/attribution_drift.json")
    metrics = {"attribution_rank_correlation": result["rank_correlation"], "attribution_top_overlap": result["top_overlap"],
               "attribution_drift": float(result["attribution_drift"])}
    metrics.update({f"mean_abs_shap.{_metric_name(r['feature'])}": r["current"] for r in result["features"]})
    tracking.log_metrics(run_id, metrics)
    c.set_tag(run_id, "modelops.attribution_drift", str(result["attribution_drift"]).lower())
    S.save_attribution(engine, cfg.model_name, day, result, result["model_version"], ctx.dag_id, ctx.run_id, run_id)
    moved = sorted(result["features"], key=lambda r: -abs(r["rank_change"]))[:5]
    log.log(logging.WARNING if result["attribution_drift"] else logging.INFO,
            "attribution drift %s on %s: rank correlation %s (threshold %g); largest moves %s",
            "DETECTED" if result["attribution_drift"] else "not detected", day, result["rank_correlation"],
            result["min_rank_correlation"], [(r["feature"], r["rank_change"]) for r in moved])
    return {"available": True, "attribution_drift": result["attribution_drift"], "rank_correlation": result["rank_correlation"],
            "top_overlap": result["top_overlap"], "rows": result["rows"], "model_version": result["model_version"],
            "largest_moves": [{"feature": r["feature"], "rank_change": r["rank_change"]} for r in moved],
            "entered_top": result["entered_top"], "left_top": result["left_top"]}


# -- the monitoring report -------------------------------------------------------------------------------

def report_data(engine: Any, cfg: ModelopsConfig, model_name: str, start: date, end: date) -> dict[str, Any]:
    """What the monitoring report shows about explanations: the attribution drift of [start, end), and the
    explanation of the production version (and of a staging version waiting for approval, vs production)."""
    from modelops.monitoring import explanation_store as S

    out: dict[str, Any] = {"attribution": S.load_attribution(engine, model_name, start, end), "versions": [], "error": None,
                           "threshold": cfg.explain.attribution_drift.min_rank_correlation, "top": cfg.explain.top_features}
    try:
        for alias in (registry.PRODUCTION, registry.STAGING):
            version = registry.alias_version(model_name, alias)
            if version is None or any(v["version"] == version for v in out["versions"]):
                continue
            out["versions"].append({"alias": alias, "version": version,
                                    "summary": load_summary(registry.get_version(model_name, version).run_id)})
    except Exception as exc:  # noqa: BLE001 - the report renders without the registry (it says why)
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out
