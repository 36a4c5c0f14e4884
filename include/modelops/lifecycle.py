"""Each lifecycle step as one function: what an Airflow task calls.

Steps exchange small dicts (paths, ids, metrics) and put frames in the run-scoped
directory, so every step can be retried alone and re-reads its inputs from storage.
"""

from __future__ import annotations

import logging
import pickle
from datetime import date, datetime, timedelta
from typing import Any

from modelops import tracking
from modelops.governance import registry
from modelops.data import storage
from modelops.config import ConfigError, ModelopsConfig
from modelops.tracking import RunContext

log = logging.getLogger(__name__)

PARENT = "retrain"


# -- helpers --------------------------------------------------------------------------------

def _day(value: str | date | datetime | None) -> date | None:
    return None if value in (None, "") else storage.as_day(value)  # type: ignore[arg-type]


def training_window(cfg: ModelopsConfig, ctx: RunContext, start: str | None = None, end: str | None = None) -> tuple[date, date]:
    """[start, end) from params, else the data interval's end and ``training.window_days`` back."""
    end_d = _day(end) or _day(ctx.data_interval_end) or _day(ctx.logical_date)
    if end_d is None:
        raise ConfigError("no training window end: the run has no data interval and no training_end param")
    start_d = _day(start) or end_d - timedelta(days=cfg.training.window_days)
    if start_d >= end_d:
        raise ConfigError(f"training window is empty: start {start_d} is not before end {end_d}")
    return start_d, end_d


def run_dir(cfg: ModelopsConfig, ctx: RunContext) -> str:
    """``<work root>/<model>/<dag>/<logical date>``: two problems sharing a work root never collide."""
    return storage.join(storage.work_root(), storage.safe_key(cfg.model_name), storage.safe_key(ctx.dag_id),
                        storage.safe_key(ctx.run_key.split("/", 1)[1]))


def parent_run(cfg: ModelopsConfig, ctx: RunContext, kind: str = PARENT) -> str:
    """The DAG run's parent MLflow run (``retrain`` by default; the tuning DAG has its own kind)."""
    name = f"{kind}-{(ctx.logical_date or ctx.data_interval_end or ctx.run_id)[:10]}"
    return tracking.get_or_create_run(cfg.mlflow.experiment, ctx, kind, name,
                                      {"modelops.config_hash": cfg.config_hash, "modelops.model_name": cfg.model_name})


# -- 1. validate ----------------------------------------------------------------------------

def validate_data(cfg: ModelopsConfig, ctx: RunContext, start: date, end: date, snapshot_name: str = "raw.parquet",
                  mlflow_run_id: str | None = None) -> dict[str, Any]:
    """GX suite from the config; on failure the full result is kept and the task fails with a summary."""
    from modelops.data.validation import validate_frame

    df = storage.read_window(cfg, start, end)
    rdir = run_dir(cfg, ctx)
    path = storage.join(rdir, snapshot_name)
    # The snapshot is encoded and hashed on a second thread while GX checks the same frame (Arrow's
    # writer runs with the GIL released); it only takes its place once every rule has passed.
    staging = _in_background(lambda: (storage.stage_frame(df, path), storage.fingerprint(df)) if df is not None and len(df) else None)
    try:
        result = validate_frame(df, cfg, datetime.combine(start, datetime.min.time()), datetime.combine(end, datetime.min.time()))
    except BaseException:
        _discard(staging)
        raise
    import json

    storage.write_text(storage.join(rdir, "validation_result.json"), json.dumps(result.raw, indent=1, default=str))
    if mlflow_run_id:
        tracking.log_json(mlflow_run_id, result.raw, "validation/validation_result.json")
    if not result.success:
        _discard(staging)
        result.raise_for_failures()
    staged, fingerprint = staging.result()  # a window that passed has rows, so it was staged
    storage.commit_staged(staged, path)
    out = {"rows": int(len(df)), "fingerprint": fingerprint, "path": path,
           "start": start.isoformat(), "end": end.isoformat(), "expectations": len(result.raw.get("results", [])), "notes": result.notes}
    log.info("validated %d rows of %s in [%s, %s): %d expectations passed", len(df), cfg.model_name, start, end, out["expectations"])
    return out


def _discard(staging: Any) -> None:
    """Wait for a staged snapshot and remove it (the data it holds was refused)."""
    try:
        staged = staging.result()
        if staged is not None:
            storage.discard_staged(staged[0])
    except Exception:  # noqa: BLE001 - the refusal is the error to report, not the cleanup
        log.warning("could not remove a refused snapshot", exc_info=True)


# -- 2. features ----------------------------------------------------------------------------

def build_features(cfg: ModelopsConfig, ctx: RunContext, raw_path: str) -> dict[str, Any]:
    """Sorted snapshot -> time split -> fitted ``FeatureBuilder`` -> one float feature file with split codes and target."""
    from modelops._memory import lean_memory

    with lean_memory():  # this step's frames come and go in phases: see modelops._memory
        return _build_features(cfg, ctx, raw_path)


def _build_features(cfg: ModelopsConfig, ctx: RunContext, raw_path: str) -> dict[str, Any]:
    import numpy as np

    from modelops.data.features import FeatureBuilder
    from modelops.training.boosters import sort_by_time, time_split

    snapshot = storage.read_frame(raw_path)
    ts, ent = cfg.data.timestamp_column, cfg.data.entity_column
    rdir = run_dir(cfg, ctx)
    raw = sort_by_time(snapshot, ts, ent)
    sorted_path = raw_path  # the validated snapshot is usually in order already: no second copy then
    if raw is not snapshot:
        sorted_path = storage.write_frame(raw, storage.join(rdir, "raw_sorted.parquet"))
    del snapshot
    tr, va, te, bounds = time_split(raw, ts, cfg.training.split.train, cfg.training.split.validation)
    builder = FeatureBuilder.from_config(cfg).fit(raw)
    X = builder.transform(raw, use_history=False)
    # Splits as int8 codes (0 train, 1 validation, 2 test): in time order they are three row ranges.
    X["_split"] = (va.astype(np.int8) + 2 * te.astype(np.int8))
    X["_target"] = raw[cfg.data.target_column].astype("float64").to_numpy()
    del raw  # not needed for the write: its memory goes back before the parquet encoder's buffers are taken
    storage.release_memory()
    storage.write_frame(X, storage.join(rdir, "features.parquet"))
    _write_pickle(storage.join(rdir, "feature_builder.pkl"), builder)
    log.info("built %d features for %d rows; split %s", len(builder.feature_names), len(X), bounds.to_dict())
    return {"features_path": storage.join(rdir, "features.parquet"), "raw_sorted_path": sorted_path,
            "builder_path": storage.join(rdir, "feature_builder.pkl"), "split": bounds.to_dict(),
            "n_features": len(builder.feature_names)}


def _active_hyperparameters_path(cfg: ModelopsConfig) -> str:
    from modelops.training.hyperparameters import load_active

    return load_active(cfg).path


def _write_pickle(path: str, obj: Any) -> None:
    storage.write_bytes(path, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def _read_pickle(path: str) -> Any:
    import fsspec

    with fsspec.open(path, "rb") as fh:
        return pickle.load(fh)  # noqa: S301 - our own run-scoped file


SPLITS = ("train", "validation", "test")


def _load_split(features_path: str, target_transform: str, splits: tuple[str, ...] = SPLITS):
    """name -> (X, y on the training scale, y in target units) for ``splits``; row ranges of one frame, not copies.

    Training and tuning ask for train and validation only: in time order those are the file's
    leading rows, so the test rows (15% by default) are never read into their process.
    """
    import numpy as np

    from modelops.training.boosters import transform_target

    wanted = [SPLITS.index(name) for name in splits]
    X = _read_feature_block(features_path, max(wanted))
    codes = X.pop("_split").to_numpy()
    if codes.dtype.kind in "OUT" or not np.issubdtype(codes.dtype, np.integer):  # files written before the int8 codes
        codes = np.select([codes == "validation", codes == "test"], [1, 2], 0)
    target = X.pop("_target").to_numpy()
    contiguous = bool(np.all(np.diff(codes) >= 0))
    parts = {}
    for i in wanted:
        if contiguous:
            a, b = np.searchsorted(codes, i, "left"), np.searchsorted(codes, i, "right")
            Xs, y = X.iloc[a:b], target[a:b]
        else:
            m = codes == i
            Xs, y = X.loc[m], target[m]
        parts[SPLITS[i]] = (Xs, transform_target(y, target_transform), y)
    return parts


def _read_feature_block(features_path: str, last_code: int = 2) -> Any:
    """The feature frame as ``transform`` made it: one (features x rows) block, filled a column at a time.

    Reading the whole file and converting it held Arrow's copy, pandas' copy and a consolidation
    copy at once (the training task's peak); this holds the block and one column. When the split
    codes are in order, rows after the last one with a code <= ``last_code`` are not kept.
    """
    import fsspec
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    with storage.io_errors("read", features_path), fsspec.open(features_path, "rb") as fh:
        pf = pq.ParquetFile(fh)
        names = [n for n in pf.schema_arrow.names if n not in ("_split", "_target")]
        types = {str(pf.schema_arrow.field(n).type) for n in names}
        if len(types) != 1 or types.pop() not in ("float", "double"):
            return storage.read_frame(features_path)  # not a file build_features wrote
        extra = pf.read(columns=["_split", "_target"]).to_pandas()
        codes = extra["_split"].to_numpy()
        n = len(codes)
        if codes.dtype.kind in "iu" and bool(np.all(np.diff(codes) >= 0)):
            n = int(np.searchsorted(codes, last_code, "right"))
        dtype = np.float32 if str(pf.schema_arrow.field(names[0]).type) == "float" else np.float64
        block = np.empty((len(names), n), dtype=dtype)
        for i, name in enumerate(names):
            block[i] = pf.read(columns=[name]).column(0).slice(0, n).to_numpy()
    storage.release_memory()  # the columns' Arrow buffers, cached by the pool otherwise
    X = pd.DataFrame(block.T, columns=names, copy=False)
    X["_split"] = codes[:n]
    X["_target"] = extra["_target"].to_numpy()[:n]
    return X


def _write_array(path: str, values: Any) -> None:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.asarray(values), allow_pickle=False)
    storage.write_bytes(path, buf.getvalue())


def _read_array(path: str) -> Any:
    import io

    import fsspec
    import numpy as np

    with fsspec.open(path, "rb") as fh:
        return np.load(io.BytesIO(fh.read()), allow_pickle=False)


# -- 3. train -------------------------------------------------------------------------------

def inverse_transform(target_transform: str) -> Any:
    """Back from the training scale to the target's own units (metrics are computed there)."""
    import numpy as np

    return np.expm1 if target_transform == "log1p" else (lambda r: r)


def fit_booster(cfg: ModelopsConfig, which: str, parts: dict[str, Any], params: dict[str, Any], categorical: list[str],
                on_iteration: Any = None) -> tuple[Any, dict[str, Any]]:
    """One booster on the train split with early stopping on validation: training and tuning both call this."""
    from modelops.training.boosters import train_lightgbm, train_xgboost

    (X_tr, y_tr, _), (X_va, y_va, _) = parts["train"], parts["validation"]
    if which == "xgboost":
        return train_xgboost(X_tr, y_tr, X_va, y_va, params, cfg.task, cfg.training.early_stopping_rounds, cfg.training.seed,
                             on_iteration=on_iteration)
    if which == "lightgbm":
        return train_lightgbm(X_tr, y_tr, X_va, y_va, params, cfg.task, cfg.training.early_stopping_rounds, cfg.training.seed,
                              categorical, on_iteration=on_iteration)
    raise ValueError(f"unknown model '{which}' (expected xgboost or lightgbm)")


def _in_background(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` on its own thread; ``.result()`` waits and re-raises its error here."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="modelops")
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)


def _open_training_run(cfg: ModelopsConfig, ctx: RunContext, which: str, hp_tags: dict[str, str]) -> str:
    """The booster's child run with the provenance of its hyperparameters."""
    parent = parent_run(cfg, ctx)
    child = tracking.get_or_create_run(cfg.mlflow.experiment, ctx, f"train_{which}", which, parent_run_id=parent)
    c = registry.client()
    for k, v in hp_tags.items():  # where these parameters came from (study, trial, MLflow run)
        c.set_tag(child, k, v)
    return child


def train_model(cfg: ModelopsConfig, ctx: RunContext, which: str, features: dict[str, Any],
                hp_overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """One booster with early stopping on validation, logged as a child run of the retrain run.

    Tracking waits for the fit: a failed fit leaves no run behind, and the MLflow client and
    plotting code (~40 MB in a fresh task process) do not stack on the fit's peak. Importing
    matplotlib alone during the fit would hide ~0.4 s but took XGBoost's peak from 2.76x to 2.93x
    of the 3x target (measured), so it waits too. Validation is predicted in C with the GIL
    released, so the run, its parameters and the plot are made on this thread meanwhile.
    """
    from modelops import metrics as M
    from modelops import plots
    from modelops.training.ensemble import predict_raw
    from modelops.training.hyperparameters import load_for_training
    from modelops.training.boosters import feature_importance

    hp, hp_tags = load_for_training(cfg, which, hp_overrides)
    tt = cfg.training.target_transform if cfg.task == "regression" else "none"
    parts = _load_split(features["features_path"], tt, ("train", "validation"))
    X_va, y_va = parts["validation"][0], parts["validation"][2]
    builder = _read_pickle(features["builder_path"])
    model, info = fit_booster(cfg, which, parts, hp, builder.categorical_feature_names)
    del parts
    imp = feature_importance(model, list(builder.feature_names))
    # Validation predictions are kept for the ensemble weights; test metrics come from build_ensemble,
    # which scores the test window once for both boosters and the ensemble.
    predicting = _in_background(predict_raw, model, X_va, cfg.task)
    child = _open_training_run(cfg, ctx, which, hp_tags)
    tracking.log_params(child, {**info["params"], "early_stopping_rounds": cfg.training.early_stopping_rounds,
                                "best_iteration": info["best_iteration"], "target_transform": tt,
                                "hyperparameters_source": hp_tags["modelops.hyperparameters.file"],
                                "hyperparameter_overrides": bool(hp_overrides and hp_overrides.get(which))})
    c = registry.client()
    curve = info.get("validation_curve") or []
    if curve:
        from mlflow.entities import Metric

        batch = [Metric("validation_curve", float(v), 0, i) for i, v in enumerate(curve)]
        for i in range(0, len(batch), 900):
            c.log_batch(child, metrics=batch[i:i + 900])
    plots.log_feature_importance(child, imp, f"{which} feature importance")
    pred_va = predicting.result()
    del X_va
    val_metrics = M.compute(cfg.task, y_va, inverse_transform(tt)(pred_va), cfg.evaluation.decision_threshold)
    # The fit alone, apart from the task around it: what to compare between hyperparameters or
    # machines, and what the retrain bench subtracts to see what the task adds.
    tracking.log_metrics(child, {**{f"validation_{k}": v for k, v in val_metrics.items()}, "fit_seconds": info["fit_seconds"]})
    tracking.finish_run(child)
    path = storage.join(run_dir(cfg, ctx), f"model_{which}.pkl")
    pred_path = storage.join(run_dir(cfg, ctx), f"validation_predictions_{which}.npy")
    _write_array(pred_path, pred_va)
    _write_pickle(path, model)
    log.info("%s: best iteration %s, validation %s", which, info["best_iteration"], {k: round(v, 5) for k, v in val_metrics.items()})
    return {"model_path": path, "mlflow_run_id": child, "best_iteration": info["best_iteration"],
            "validation_predictions_path": pred_path, "validation_metrics": val_metrics,
            "fit_seconds": round(info["fit_seconds"], 3)}


# -- 4. ensemble ----------------------------------------------------------------------------

def _scoring_context(model: Any, raw: Any, cfg: ModelopsConfig, mask: Any) -> tuple[Any, Any]:
    """Rows to feed the model for the rows under ``mask``: them and the days before them its lags reach."""
    import pandas as pd

    ts = cfg.data.timestamp_column
    first = raw.loc[mask, ts].min()
    ctx_days = getattr(getattr(model, "builder", None), "history_days", 0)
    keep = (raw[ts] >= first - pd.Timedelta(days=ctx_days)).to_numpy()
    return raw.loc[keep], mask[keep]


def score_window(model: Any, raw: Any, cfg: ModelopsConfig, mask: Any) -> Any:
    """Predict rows under ``mask`` with the rows before them as context (their actuals feed the lags)."""
    import numpy as np

    if not mask.any():
        return np.array([])
    sub, sel = _scoring_context(model, raw, cfg, mask)
    if _predicts_rows(model):
        return model.predict_frame(sub, rows=sel)
    return model.predict_frame(sub)[sel]  # a production model logged by an older release


def score_window_components(model: Any, raw: Any, cfg: ModelopsConfig, mask: Any) -> dict[str, Any]:
    """Like :func:`score_window`, each booster's raw output apart (one feature build for all three scores)."""
    import numpy as np

    if not mask.any():
        return {"xgboost": np.array([]), "lightgbm": np.array([])}
    sub, sel = _scoring_context(model, raw, cfg, mask)
    if _predicts_rows(model):
        return model.component_predictions(sub, rows=sel)
    return {k: v[sel] for k, v in model.component_predictions(sub).items()}


def _predicts_rows(model: Any) -> bool:
    """Whether the model (possibly a loaded production version with its own shipped code) takes ``rows``."""
    import inspect

    try:
        return "rows" in inspect.signature(model.predict_frame).parameters
    except (AttributeError, TypeError, ValueError):
        return False


def build_ensemble(cfg: ModelopsConfig, ctx: RunContext, features: dict[str, Any], xgb: dict[str, Any], lgbm: dict[str, Any],
                   validation: dict[str, Any]) -> dict[str, Any]:
    """Weights (config or fitted on validation), one pyfunc with signature + example, lineage on the parent run."""
    from modelops import metrics as M
    from modelops import plots
    from modelops.training.ensemble import EnsembleModel
    from modelops.data.features import take_rows
    from modelops.training.boosters import fit_weights

    parent = parent_run(cfg, ctx)
    c = registry.client()
    existing = c.get_run(parent).data.tags.get("modelops.model_uri")
    if existing:
        log.info("ensemble already logged in run %s as %s; reusing it", parent, existing)
        return {"model_uri": existing, "mlflow_run_id": parent,
                "test_metrics": {k[len("test_"):]: v for k, v in c.get_run(parent).data.metrics.items() if k.startswith("test_")},
                "weights": _json_tag(c.get_run(parent).data.tags.get("modelops.weights"))}

    builder = _read_pickle(features["builder_path"])
    m_x, m_l = _read_pickle(xgb["model_path"]), _read_pickle(lgbm["model_path"])
    tt = cfg.training.target_transform if cfg.task == "regression" else "none"
    model = EnsembleModel(builder, m_x, m_l, dict(cfg.training.ensemble.weights), cfg.task, tt)
    raw = storage.read_frame(features["raw_sorted_path"])
    split = features["split"]
    ts = cfg.data.timestamp_column
    test_mask = (raw[ts] >= split["test_start"]).to_numpy()
    train_mask = (raw[ts] < split["validation_start"]).to_numpy()
    val_mask = ~train_mask & ~test_mask
    # The drift reference (the training rows' profile, kept with the model's run) is sorted and
    # logged on a second thread while the test window is scored below: both run in C with the GIL
    # released, and the booster scoring uses only the training threads.
    profiling = _in_background(_log_reference_profile, parent, take_rows(raw, train_mask), cfg)
    if cfg.training.ensemble.fit_on_validation:
        # the boosters' validation outputs as their training tasks computed them
        y_va = raw.loc[val_mask, cfg.data.target_column].to_numpy(dtype="float64")
        weights = fit_weights(_read_array(xgb["validation_predictions_path"]), _read_array(lgbm["validation_predictions_path"]),
                              y_va, cfg.task, cfg.evaluation.metric, cfg.greater_is_better, model.inverse)
        model = EnsembleModel(builder, m_x, m_l, weights, cfg.task, tt)
    weights = model.weights
    # The model, its inputs and its lineage depend on nothing the test scores say: they are logged
    # on a third thread while the test window is scored (Python work while the boosters predict in
    # C with the GIL released). The run is marked done (``modelops.model_uri``) only after both.
    logging_model = _in_background(_log_ensemble, cfg, ctx, parent, model, raw, (train_mask, val_mask, test_mask), validation, split)
    try:
        y_te = raw.loc[test_mask, cfg.data.target_column].to_numpy(dtype="float64")
        components = score_window_components(model, raw, cfg, test_mask)
        pred = model.combine(components)
        thr = cfg.evaluation.decision_threshold
        test_metrics = M.compute(cfg.task, y_te, pred, thr)
        booster_test = {name: M.compute(cfg.task, y_te, model.inverse(components[name]), thr) for name in ("xgboost", "lightgbm")}
        tracking.log_metrics(parent, {f"test_{k}": v for k, v in test_metrics.items()})
        for name, res in (("xgboost", xgb), ("lightgbm", lgbm)):
            tracking.log_metrics(parent, {f"{name}_test_{k}": v for k, v in booster_test[name].items()})
            tracking.log_metrics(res["mlflow_run_id"], {f"test_{k}": v for k, v in booster_test[name].items()})
        if cfg.task == "regression":
            plots.log_residuals(parent, y_te, pred, f"{cfg.model_name} test residuals", seed=cfg.training.seed)
        else:
            plots.log_confusion_matrix(parent, y_te, pred, cfg.evaluation.decision_threshold, f"{cfg.model_name} test confusion matrix")
        profiling.result()
    except BaseException:
        _drop_logged_model(logging_model)
        raise
    info = logging_model.result()
    c.set_tag(parent, "modelops.model_uri", info.model_uri)
    log.info("ensemble weights %s, test %s -> %s", weights, {k: round(v, 5) for k, v in test_metrics.items()}, info.model_uri)
    return {"model_uri": info.model_uri, "mlflow_run_id": parent, "test_metrics": test_metrics, "weights": weights}


def _log_ensemble(cfg: ModelopsConfig, ctx: RunContext, parent: str, model: Any, raw: Any, masks: tuple[Any, Any, Any],
                  validation: dict[str, Any], split: dict[str, Any]) -> Any:
    """Parameters, lineage, the three split datasets and the pyfunc itself on the parent run; returns the ``ModelInfo``."""
    import mlflow

    from modelops.training.ensemble import code_path

    c = registry.client()
    builder, weights = model.builder, model.weights
    sign = _signature(cfg, raw)
    example = raw.head(5).drop(columns=[cfg.data.target_column])  # not a copy of every row first
    tracking.log_params(parent, {"ensemble_weights": weights, "fit_weights_on_validation": cfg.training.ensemble.fit_on_validation,
                                 "training_window": f"[{validation['start']}, {validation['end']})", **{f"split_{k}": v for k, v in split.items()},
                                 "features": builder.feature_names, "task": cfg.task, "metric": cfg.evaluation.metric,
                                 "threshold": cfg.evaluation.threshold})
    tracking.log_metrics(parent, {"rows_total": len(raw), "rows_train": split["train_rows"], "rows_validation": split["validation_rows"],
                                  "rows_test": split["test_rows"]})
    lineage = {**ctx.lineage_tags(), "modelops.config_hash": cfg.config_hash, "modelops.data_fingerprint": validation["fingerprint"],
               "modelops.rows": str(validation["rows"]), "modelops.weights": _json(weights),
               "modelops.hyperparameters_file": _active_hyperparameters_path(cfg)}
    for k, v in lineage.items():
        c.set_tag(parent, k, v)
    tracking.log_json(parent, {"config_source": cfg.source_path, "config": cfg.model_dump(mode="json")}, "config/config.json")
    with registry.fluent(c.get_run(parent).info.experiment_id).start_run(run_id=parent):
        schema = _frame_schema(raw)
        for name, mask in zip(("train", "validation", "test"), masks):
            ds = _dataset(raw, mask, schema, source=cfg.data.path, targets=cfg.data.target_column, name=f"{cfg.model_name}-{name}",
                          digest=_json_digest([validation["fingerprint"], name, split]))
            mlflow.log_input(ds, context=name, tags={"rows": str(int(mask.sum())), "fingerprint": validation["fingerprint"]})
        return mlflow.pyfunc.log_model(
            name="model", python_model=model, code_paths=[code_path()], signature=sign, input_example=example,
            pip_requirements=_pip_requirements(), metadata={"task": cfg.task, "weights": weights, "metric": cfg.evaluation.metric},
        )


def _drop_logged_model(logging_model: Any) -> None:
    """Scoring failed while the model was logged: delete that logged model, so a failed attempt
    leaves no model behind for anyone to register (the retry logs its own)."""
    try:
        info = logging_model.result()
        registry.client().delete_logged_model(info.model_id)
    except Exception:  # noqa: BLE001 - the scoring error is the one to report
        log.warning("could not delete the model logged by a failed ensemble step", exc_info=True)


def _frame_schema(df: Any) -> Any:
    """MLflow schema from the dtypes alone.

    ``PandasDataset.schema`` infers it by visiting every value in Python: 10 s of the
    ensemble step at 1M rows, for what the dtypes already say.
    """
    import pandas as pd
    from mlflow.types.schema import ColSpec, Schema

    def kind(s: pd.Series) -> str:
        if pd.api.types.is_bool_dtype(s):
            return "boolean"
        if pd.api.types.is_datetime64_any_dtype(s):
            return "datetime"
        if pd.api.types.is_integer_dtype(s):
            return "long"
        if pd.api.types.is_float_dtype(s):
            return "double"
        return "string"

    return Schema([ColSpec(kind(df[c]), str(c), required=not bool(df[c].isna().any())) for c in df.columns])


def _dataset(raw: Any, mask: Any, schema: Any, **kwargs: Any) -> Any:
    """A ``PandasDataset`` of the rows under ``mask`` with a known schema and digest (nothing re-scanned)."""
    from mlflow.data.pandas_dataset import from_pandas

    from modelops.data.features import take_rows

    ds = from_pandas(take_rows(raw, mask), **kwargs)
    ds.__dict__["schema"] = schema  # fills the cached_property, so to_dict() does not infer it again
    return ds


def _json_digest(obj: Any) -> str:
    import hashlib

    return hashlib.sha256(_json(obj).encode()).hexdigest()[:16]


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj, sort_keys=True, default=str)


def _json_tag(value: str | None) -> Any:
    import json

    return json.loads(value) if value else None


def _signature(cfg: ModelopsConfig, raw: Any):
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    d = cfg.data
    cols = [ColSpec("datetime", d.timestamp_column)]
    import pandas as pd

    if d.entity_column:
        cols.append(ColSpec("long" if pd.api.types.is_integer_dtype(raw[d.entity_column]) else "string", d.entity_column))
    # Numeric columns keep the type the data has: MLflow refuses int64 -> float64 as "unsafe".
    cols += [ColSpec("long" if pd.api.types.is_integer_dtype(raw[c]) else "double", c) for c in cfg.features.numeric]
    cols += [ColSpec("string", c) for c in cfg.features.categorical]
    # The target is optional: when a caller passes recent actuals they feed the lag features.
    cols.append(ColSpec("double", d.target_column, required=False))
    return ModelSignature(inputs=Schema(cols), outputs=Schema([ColSpec("double")]))


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    pkgs = ["mlflow", "xgboost", "lightgbm", "pandas", "numpy", "scikit-learn", "scipy", "pyarrow", "fsspec", "pyyaml", "pydantic", "cloudpickle"]
    out = []
    for p in pkgs:
        try:
            out.append(f"{p}=={version(p)}")
        except Exception:  # noqa: BLE001
            out.append(p)
    return out


def _log_reference_profile(run_id: str, train_rows: Any, cfg: ModelopsConfig) -> None:
    from modelops.monitoring.drift import ReferenceProfile

    profile = ReferenceProfile.from_frame(train_rows, list(cfg.features.numeric), list(cfg.features.categorical), cfg.drift.psi_bins)
    _log_profile(run_id, profile)


def _log_profile(run_id: str, profile: Any) -> None:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "profile.bin"
        p.write_bytes(profile.to_bytes())
        registry.client().log_artifact(run_id, str(p), "drift_reference")


def load_reference_profile(run_id: str):
    import tempfile
    from pathlib import Path

    from modelops.monitoring.drift import ReferenceProfile

    with tempfile.TemporaryDirectory() as tmp:
        local = registry.client().download_artifacts(run_id, "drift_reference/profile.bin", tmp)
        return ReferenceProfile.from_bytes(Path(local).read_bytes())


# -- 5. evaluate ----------------------------------------------------------------------------

def load_pyfunc_impl(model_uri: str) -> Any:
    """The EnsembleModel behind a pyfunc URI (lets us pass actuals along for the lags)."""
    from modelops.security import check_model_uri

    check_model_uri(model_uri)
    return registry.fluent().pyfunc.load_model(model_uri).unwrap_python_model()


def evaluate(cfg: ModelopsConfig, ctx: RunContext, features: dict[str, Any], ensemble: dict[str, Any]) -> dict[str, Any]:
    """Candidate and current production on the same test window, same inputs."""
    from modelops import metrics as M

    cand = ensemble["test_metrics"]
    prod_version = registry.alias_version(cfg.model_name, registry.PRODUCTION)
    prod_metrics = None
    if prod_version is not None:  # the snapshot is read only when there is a production model to score on it
        raw = storage.read_frame(features["raw_sorted_path"])
        test_mask = (raw[cfg.data.timestamp_column] >= features["split"]["test_start"]).to_numpy()
        y = raw.loc[test_mask, cfg.data.target_column].to_numpy(dtype="float64")
        impl = load_pyfunc_impl(f"models:/{cfg.model_name}@{registry.PRODUCTION}")
        prod_metrics = M.compute(cfg.task, y, score_window(impl, raw, cfg, test_mask), cfg.evaluation.decision_threshold)
        tracking.log_metrics(ensemble["mlflow_run_id"], {f"production_test_{k}": v for k, v in prod_metrics.items()})
        registry.client().set_tag(ensemble["mlflow_run_id"], "modelops.compared_with_production_version", prod_version)
    metric = cfg.evaluation.metric
    log.info("test %s: candidate %.5f, production %s", metric, cand[metric],
             "none" if prod_metrics is None else f"v{prod_version} {prod_metrics[metric]:.5f}")
    from modelops.monitoring.explanations import explain_version  # TreeSHAP + permutation importance, vs production

    return {"candidate": cand, "production_version": prod_version, "production": prod_metrics,
            "test_window": [features["split"]["test_start"], features["split"]["test_end"]],
            "explanation": explain_version(cfg, ctx, features, ensemble, prod_version)}


# -- 6. register + gate -----------------------------------------------------------------------

def register_candidate(cfg: ModelopsConfig, ctx: RunContext, ensemble: dict[str, Any], evaluation: dict[str, Any],
                       validation: dict[str, Any]) -> dict[str, Any]:
    metric = cfg.evaluation.metric
    tags = {**{k: v for k, v in ctx.lineage_tags().items() if k != registry.RUN_KEY},
            "modelops.config_hash": cfg.config_hash, "modelops.data_fingerprint": validation["fingerprint"],
            "modelops.rows": str(validation["rows"]), "modelops.training_window": f"[{validation['start']}, {validation['end']})",
            "modelops.test_window": f"[{evaluation['test_window'][0]}, {evaluation['test_window'][1]})",
            f"metric.{metric}": f"{evaluation['candidate'][metric]:.6g}", "metric.name": metric}
    mv, created = registry.register_candidate(cfg.model_name, ensemble["model_uri"], ensemble["mlflow_run_id"], ctx.run_key, tags,
                                              cfg.description)
    log.info("%s %s v%s (run key %s)", "registered" if created else "reusing", cfg.model_name, mv.version, ctx.run_key)
    return {"version": str(mv.version), "created": created, "lifecycle": mv.tags.get(registry.LIFECYCLE, "candidate")}


def gate(cfg: ModelopsConfig, ctx: RunContext, version: str, evaluation: dict[str, Any]) -> dict[str, Any]:
    """Decide once per version; a re-run reads the recorded decision instead of deciding again."""
    mv = registry.get_version(cfg.model_name, version)
    if mv.tags.get("gate.decision"):
        decision = _json_tag(mv.tags["gate.decision"])
        log.info("v%s was already gated: %s", version, decision)
        return {**decision, "version": version, "lifecycle": mv.tags.get(registry.LIFECYCLE), "reused": True}
    metric = cfg.evaluation.metric
    prod_v = evaluation.get("production_version")
    if prod_v == version:  # production is this very version (re-run after promotion)
        prod_v = None
    prod_val = (evaluation.get("production") or {}).get(metric) if prod_v else None
    decision = registry.decide_gate(metric, evaluation["candidate"][metric], cfg.evaluation.threshold, cfg.greater_is_better,
                                    prod_v, prod_val, cfg.evaluation.min_improvement)
    registry.apply_gate(cfg.model_name, version, decision)
    log.info("gate for v%s: %s", version, "PASSED -> staging" if decision.passed else f"REJECTED: {'; '.join(decision.reasons)}")
    return {**decision.to_dict(), "version": version, "lifecycle": registry.STAGING if decision.passed else "rejected", "reused": False}


# -- 7. promote + smoke test ------------------------------------------------------------------

def promote(cfg: ModelopsConfig, version: str, by: str) -> dict[str, Any]:
    previous = registry.promote(cfg.model_name, version, by=by)
    production = registry.alias_version(cfg.model_name, registry.PRODUCTION)
    if production == str(version):
        log.info("production %s -> v%s (previous %s archived)", cfg.model_name, version, previous)
    else:
        log.warning("%s v%s not promoted: production stays at v%s (%s)", cfg.model_name, version, production,
                    registry.get_version(cfg.model_name, version).tags.get("archived.reason", ""))
    return {"version": version, "previous": previous, "production": production}


def smoke_test(cfg: ModelopsConfig, ctx: RunContext, sample_path: str, n: int = 50) -> dict[str, Any]:
    """Load ``models:/NAME@production`` the way a consumer does and predict on a sample."""
    import numpy as np

    uri = f"models:/{cfg.model_name}@{registry.PRODUCTION}"
    model = registry.fluent().pyfunc.load_model(uri)
    sample = storage.read_frame(sample_path).tail(n).drop(columns=[cfg.data.target_column])
    pred = np.asarray(model.predict(sample))
    ok = len(pred) == len(sample) and bool(np.all(np.isfinite(pred)))
    version = registry.alias_version(cfg.model_name, registry.PRODUCTION)
    registry.set_tags(cfg.model_name, version, {"smoke_test.passed": str(ok).lower(), "smoke_test.at": registry.now_iso(),
                                                "smoke_test.rows": str(len(sample))})
    if not ok:
        raise RuntimeError(f"smoke test of {uri} (v{version}) failed: {len(pred)} predictions for {len(sample)} rows, "
                           f"{int(np.sum(~np.isfinite(pred)))} not finite")
    log.info("smoke test of %s (v%s): %d predictions, mean %.4g", uri, version, len(pred), float(np.mean(pred)))
    return {"version": version, "rows": len(pred), "mean_prediction": float(np.mean(pred))}


# -- drift ------------------------------------------------------------------------------------

def detect_drift(cfg: ModelopsConfig, ctx: RunContext, current_path: str, start: date, end: date) -> dict[str, Any]:
    """KS + PSI per feature vs the production model's training snapshot (or a window); stored in DB and MLflow."""
    import tempfile
    from pathlib import Path

    from modelops.monitoring import drift_store
    from modelops.monitoring.drift import ReferenceProfile
    from modelops.monitoring.drift import detect_drift as _detect
    from modelops.monitoring.drift_report import render_drift_report

    current = storage.read_frame(current_path)
    numeric = [f for f in cfg.features.numeric if f in cfg.drift_features]
    categorical = [f for f in cfg.features.categorical if f in cfg.drift_features]
    prod_version = registry.alias_version(cfg.model_name, registry.PRODUCTION)
    reference_desc: str
    if cfg.drift.reference == "production_training" and prod_version is not None:
        mv = registry.get_version(cfg.model_name, prod_version)
        reference = load_reference_profile(mv.run_id)
        reference_desc = f"training snapshot of production v{prod_version}"
    else:
        ref_start = start - timedelta(days=cfg.drift.reference_window_days)
        ref_df = storage.read_window(cfg, ref_start, start)
        if ref_df.empty:
            raise storage.DataError(f"no reference data (no production model): {storage.describe_window(cfg, ref_start, start)}")
        reference = ReferenceProfile.from_frame(ref_df, numeric, categorical, cfg.drift.psi_bins)
        reference_desc = f"window [{ref_start}, {start})"
    report = _detect(reference, current, cfg.drift, numeric, categorical)
    from modelops.monitoring import explanations  # attribution drift: computed before anything is stored

    attribution = explanations.attribution_drift(cfg, prod_version, start, end)

    run_id = tracking.get_or_create_run(cfg.mlflow.experiment, ctx, "drift", f"drift-{start.isoformat()}",
                                        {"modelops.model_name": cfg.model_name, "modelops.drift_day": start.isoformat(),
                                         "modelops.reference": reference_desc, "modelops.production_version": prod_version or ""})
    frame = report.to_frame()
    tracking.log_metrics(run_id, {"drift_ratio": report.drift_ratio, "n_current": len(current),
                                  "n_drifted_features": len(report.drifted_features)})
    for _, r in frame.iterrows():
        tracking.log_metrics(run_id, {f"psi.{r['feature']}": r.get("psi"), f"ks_statistic.{r['feature']}": r.get("ks_statistic")})
    tracking.log_params(run_id, {"rule": cfg.drift.rule, "ks_pvalue": cfg.drift.ks_pvalue, "ks_statistic_min": cfg.drift.ks_statistic_min,
                                 "psi_threshold": cfg.drift.psi_threshold, "drift_ratio_threshold": cfg.drift.drift_ratio_threshold,
                                 "reference": reference_desc})
    registry.client().set_tag(run_id, "modelops.dataset_drift", str(report.dataset_drift).lower())
    with tempfile.TemporaryDirectory() as tmp:
        html = render_drift_report(report, Path(tmp), f"{cfg.model_name} drift {start.isoformat()} vs {reference_desc}", reference, current)
        registry.client().log_artifacts(run_id, str(Path(html).parent), "drift_report")
    tracking.finish_run(run_id)

    engine = drift_store.get_engine()
    drift_store.create_schema(engine)
    drift_store.save_report(engine, report, cfg.model_name, start, model_version=prod_version, dag_id=ctx.dag_id,
                            run_id=ctx.run_id, mlflow_run_id=run_id)
    attribution = explanations.record_attribution(cfg, ctx, attribution, start, run_id)  # beside the feature drift
    if not report.dataset_drift:
        from modelops.monitoring import alerts

        alerts.resolve(engine, cfg.model_name, [alerts.DRIFT_DETECTED], f"no dataset drift on {start.isoformat()}")
    log.info("drift %s on %s: ratio %.2f (threshold %.2f), drifted: %s", "DETECTED" if report.dataset_drift else "not detected",
             start, report.drift_ratio, cfg.drift.drift_ratio_threshold, report.drifted_features or "none")
    return {"day": start.isoformat(), "drift_ratio": report.drift_ratio, "dataset_drift": report.dataset_drift,
            "drifted_features": list(report.drifted_features), "mlflow_run_id": run_id, "reference": reference_desc,
            "production_version": prod_version, "attribution": attribution}
