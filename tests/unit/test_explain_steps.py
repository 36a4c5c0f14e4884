"""The explanation steps on registered models, for the demo's daily panel and an event-shaped dataset:
the version's explanation (MLflow), batch rows explained next to their predictions, attribution drift
on a later day, and bad input (no test-window rows, a column absent at scoring time) that fails with
a clear message and stores nothing."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from modelops import db
from modelops.data import storage
from modelops.errors import UserInputError
from modelops.governance import registry
from modelops.monitoring import drift_store, explanation_store, explanations, predictions
from modelops.tracking import RunContext
from modelops.training import explain as X
from tests.conftest import FAST_HP, write_config
from tests.unit.test_explain import events_frame

SHAPES = {
    "store": {"overrides": {"validation.min_rows": 1}, "start": date(2024, 1, 1), "train_end": date(2024, 6, 1), "day": date(2024, 6, 10)},
    "events": {"overrides": {"data.timestamp_column": "ts", "data.entity_column": "account", "data.target_column": "value",
                             "features.numeric": ["amount", "items"], "features.categorical": ["channel"],
                             "features.target_lags": [7], "features.target_rolling_windows": [7],
                             "features.target_aggregation": "mean",  # many rows per account and day
                             "validation": {"min_rows": 1}, "drift.features": ["amount", "channel"], "training.target_transform": "none",
                             "evaluation.metric": "rmse", "evaluation.threshold": 1000.0},
               "start": date(2013, 3, 1), "train_end": date(2013, 5, 10), "day": date(2013, 5, 20)},
}


def _data(shape: str) -> pd.DataFrame:
    if shape == "store":
        from modelops.data.sample_data import generate_store_sales

        return generate_store_sales(date(2024, 1, 1), date(2024, 7, 1), n_stores=12, seed=5)
    return events_frame(n_days=90)


def _register(cfg, raw: pd.DataFrame, tmp) -> tuple[dict, dict, str]:
    """Train the two boosters on the window and register the ensemble as production, as the retrain DAG does."""
    import mlflow

    from modelops.data.features import FeatureBuilder
    from modelops.lifecycle import _signature
    from modelops.training.boosters import time_split, train_lightgbm, train_xgboost, transform_target
    from modelops.training.ensemble import EnsembleModel, code_path

    ts, ent, tgt = cfg.data.timestamp_column, cfg.data.entity_column, cfg.data.target_column
    raw = raw.sort_values([ts, ent], kind="stable").reset_index(drop=True)
    tr, va, _, bounds = time_split(raw, ts, 0.7, 0.15)
    builder = FeatureBuilder.from_config(cfg).fit(raw)
    Xf = builder.transform(raw, use_history=False)
    tt = cfg.training.target_transform
    y = transform_target(raw[tgt].to_numpy("float64"), tt)
    m_x, _ = train_xgboost(Xf[tr], y[tr], Xf[va], y[va], FAST_HP["xgboost"], cfg.task, 20, 1)
    m_l, _ = train_lightgbm(Xf[tr], y[tr], Xf[va], y[va], FAST_HP["lightgbm"], cfg.task, 20, 1, builder.categorical_feature_names)
    model = EnsembleModel(builder, m_x, m_l, dict(cfg.training.ensemble.weights), cfg.task, tt)
    raw_path = storage.write_frame(raw, str(tmp / "raw_sorted.parquet"))
    exp = registry.ensure_experiment(cfg.mlflow.experiment)
    with registry.fluent().start_run(experiment_id=exp) as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=model, code_paths=[code_path()], signature=_signature(cfg, raw),
                                       pip_requirements=["mlflow"])
    registry.ensure_registered_model(cfg.model_name)
    mv = registry.client().create_model_version(cfg.model_name, info.model_uri, run_id=run.info.run_id, model_id=info.model_id)
    registry.client().set_registered_model_alias(cfg.model_name, "production", mv.version)
    return {"raw_sorted_path": raw_path, "split": bounds.to_dict()}, {"model_uri": info.model_uri, "mlflow_run_id": run.info.run_id}, str(mv.version)


@pytest.fixture(scope="module", params=list(SHAPES))
def model(request, tmp_path_factory):
    from modelops.config import load_config
    from modelops.data.sample_data import write_dataset

    shape = request.param
    spec = SHAPES[shape]
    tmp = tmp_path_factory.mktemp(f"explain-{shape}")
    name = f"explain_{shape}_{uuid.uuid4().hex[:6]}"
    path = write_config(tmp, model_name=name, **{"mlflow.experiment": name, "data.path": str(tmp / "data"),
                                                 "explain.per_prediction.enabled": True, "explain.per_prediction.top_k": 4,
                                                 "explain.permutation_repeats": 2, **spec["overrides"]})
    cfg = load_config(path)
    df = _data(shape)
    write_dataset(df, cfg)
    window = df[df[cfg.data.timestamp_column] < pd.Timestamp(spec["train_end"])]
    features, ensemble, version = _register(cfg, window, tmp)
    ctx = RunContext("retrain_weekly", f"manual__{name}", spec["train_end"].isoformat(), None, spec["train_end"].isoformat())
    summary = explanations.explain_version(cfg, ctx, features, ensemble, None)
    return {"shape": shape, "cfg": cfg, "features": features, "ensemble": ensemble, "version": version, "summary": summary,
            "day": spec["day"], "tmp": tmp}


def test_the_version_explanation_is_logged_and_is_the_drift_reference(model):
    s, cfg = model["summary"], model["cfg"]
    assert s["rows"] > 0 and s["additivity_error"] < 1e-4 and s["vs_production"] is None
    assert s["space"] == ("log1p(target)" if cfg.training.target_transform == "log1p" else "target units")
    imp = [r["mean_abs_shap"] for r in s["importance"]]
    assert imp == sorted(imp, reverse=True) and all(v >= 0 for v in imp)
    full = explanations.load_summary(model["ensemble"]["mlflow_run_id"])  # XCom keeps the top; MLflow has every column
    assert {r["column"] for r in full["permutation"]} == {*cfg.features.numeric, *cfg.features.categorical, cfg.data.entity_column,
                                                          f"{cfg.data.target_column} ({X.TARGET_HISTORY})"}
    assert s["permutation"] == full["permutation"][:cfg.explain.top_features]
    ref = explanations.load_summary(model["ensemble"]["mlflow_run_id"], explanations.REFERENCE)
    builder = explanations.load_impl(model["ensemble"]["model_uri"]).builder  # fitted: cal_hour for intraday data
    assert set(ref["features"]) == set(builder.feature_names) == set(ref["feature_sources"])
    assert ref["feature_sources"]["target_lag_7"] == f"{cfg.data.target_column} ({X.TARGET_HISTORY})"
    assert sum(ref["columns"].values()) > 0


def test_batch_rows_are_explained_next_to_the_same_predictions(model):
    cfg, day = model["cfg"], model["day"]
    ctx = RunContext("batch_predict_daily", f"manual__{day}", day.isoformat(), day.isoformat(), (day + timedelta(days=1)).isoformat())
    off = cfg.model_copy(update={"explain": cfg.explain.model_copy(update={
        "per_prediction": cfg.explain.per_prediction.model_copy(update={"enabled": False})})})
    engine = db.get_engine()
    predictions.batch_predict(off, ctx, day, day + timedelta(days=1))
    plain = predictions.load_predictions(engine, cfg.model_name, day, day + timedelta(days=1))
    assert explanation_store.load_explanations(engine, cfg.model_name, day, day + timedelta(days=1)).empty
    out = predictions.batch_predict(cfg, ctx, day, day + timedelta(days=1))
    got = predictions.load_predictions(engine, cfg.model_name, day, day + timedelta(days=1))
    assert out["rows"] == len(got) == len(plain) > 0
    np.testing.assert_array_equal(got["prediction"].to_numpy(), plain["prediction"].to_numpy())  # explaining changes nothing
    ex = explanation_store.load_explanations(engine, cfg.model_name, day, day + timedelta(days=1))
    assert len(ex) == len(got) and ex["contributions"].map(len).eq(4).all()
    part = pd.read_parquet(predictions.predictions_path(cfg, day))
    out_space = np.log1p(part["prediction"]) if cfg.training.target_transform == "log1p" else part["prediction"]
    np.testing.assert_allclose(part["shap_base"] + part[[f"shap_{i}_value" for i in range(1, 5)]].sum(axis=1) + part["shap_other"],
                               out_space, rtol=1e-5, atol=1e-4)
    # a bound on the rows explained (a seeded sample): every row scored, only that many explained
    few = cfg.model_copy(update={"explain": cfg.explain.model_copy(update={
        "per_prediction": cfg.explain.per_prediction.model_copy(update={"max_rows": 3})})})
    predictions.batch_predict(few, ctx, day, day + timedelta(days=1))
    assert len(predictions.load_predictions(engine, cfg.model_name, day, day + timedelta(days=1))) == len(plain)
    sampled = explanation_store.load_explanations(engine, cfg.model_name, day, day + timedelta(days=1))
    part = pd.read_parquet(predictions.predictions_path(cfg, day))
    assert len(sampled) == 3 and part["shap_base"].notna().sum() == 3 and part["shap_1_feature"].isna().sum() == len(part) - 3
    kept = part[part["shap_base"].notna()]
    everyone = {(e, pd.Timestamp(t), c[0][0], round(c[0][1], 9)) for e, t, c in zip(ex["entity"], ex["ts"], ex["contributions"])}
    for r in kept.itertuples():  # the sampled rows carry exactly the values a full run gives them
        assert (r.entity, pd.Timestamp(r.ts), r.shap_1_feature, round(r.shap_1_value, 9)) in everyone
    # switched off again: the day's explanation rows go with the re-run, no stale rows stay behind
    predictions.batch_predict(off, ctx, day, day + timedelta(days=1))
    assert explanation_store.load_explanations(engine, cfg.model_name, day, day + timedelta(days=1)).empty


def test_attribution_drift_on_a_later_day(model):
    cfg, day = model["cfg"], model["day"]
    result = explanations.attribution_drift(cfg, model["version"], day, day + timedelta(days=1))
    assert result["available"] and result["model_version"] == model["version"] and result["rows"] > 0
    assert -1 <= result["rank_correlation"] <= 1
    assert result["attribution_drift"] == (result["rank_correlation"] < cfg.explain.attribution_drift.min_rank_correlation)
    ctx = RunContext("drift_daily", f"manual__{day}", day.isoformat(), day.isoformat(), (day + timedelta(days=1)).isoformat())
    run = registry.client().create_run(registry.ensure_experiment(cfg.mlflow.experiment)).info.run_id
    short = explanations.record_attribution(cfg, ctx, result, day, run)
    assert short["available"] and short["rank_correlation"] == result["rank_correlation"]
    rows = explanation_store.load_attribution(db.get_engine(), cfg.model_name, day, day + timedelta(days=1))
    assert len(rows) == len(result["features"]) and rows["current_rank"].min() == 1


# -- bad input -------------------------------------------------------------------------------------

def test_no_test_window_rows_fails_clearly_and_logs_nothing(model):
    cfg = model["cfg"]
    run = registry.client().create_run(registry.ensure_experiment(cfg.mlflow.experiment)).info.run_id
    features = {**model["features"], "split": {**model["features"]["split"], "test_start": "2031-01-01", "test_end": "2031-01-08"}}
    ctx = RunContext("retrain_weekly", "manual__empty", "2031-01-08", None, "2031-01-08")
    with pytest.raises(X.ExplainInputError, match=r"test window \[2031-01-01, 2031-01-08\) has no rows in .*raw_sorted.parquet"):
        explanations.explain_version(cfg, ctx, features, {**model["ensemble"], "mlflow_run_id": run}, None)
    assert registry.client().list_artifacts(run) == [] and registry.client().get_run(run).data.metrics == {}


def test_a_column_absent_at_scoring_time_fails_clearly_and_stores_nothing(model, tmp_path):
    cfg, day = model["cfg"], model["day"] + timedelta(days=2)
    col = cfg.features.numeric[0]
    part = storage.read_window(cfg, day, day + timedelta(days=1)).drop(columns=[col])
    storage.write_partition(part, cfg.data.path, cfg.data.partition_column, day)
    ctx = RunContext("batch_predict_daily", f"manual__{day}", day.isoformat(), day.isoformat(), (day + timedelta(days=1)).isoformat())
    engine = db.get_engine()
    # the scored rows' validation (the drift suite) refuses the day first, naming the column; the
    # explanation's own check says the same where no validation ran (the drift test below, test_explain)
    with pytest.raises(UserInputError, match=rf"{col}"):
        predictions.batch_predict(cfg, ctx, day, day + timedelta(days=1))
    assert predictions.load_predictions(engine, cfg.model_name, day, day + timedelta(days=1)).empty
    assert explanation_store.load_explanations(engine, cfg.model_name, day, day + timedelta(days=1)).empty
    assert not storage.exists(predictions.predictions_path(cfg, day))


def test_a_drift_day_without_a_model_column_fails_before_anything_is_stored(model):
    """The feature drift could be computed (the column is not monitored), but the day cannot be explained:
    neither the drift report nor the attribution rows nor an MLflow run are left behind."""
    from modelops import lifecycle

    cfg = model["cfg"]
    cfg = cfg.model_copy(update={"drift": cfg.drift.model_copy(update={"reference": "window", "reference_window_days": 30})})
    unmonitored = [c for c in cfg.feature_columns if c not in cfg.drift_features]
    assert unmonitored, "the test needs a model column that drift does not monitor"
    day = model["day"] + timedelta(days=3)
    part = storage.read_window(cfg, day, day + timedelta(days=1)).drop(columns=[unmonitored[0]])
    storage.write_partition(part, cfg.data.path, cfg.data.partition_column, day)
    current = storage.write_frame(part, str(model["tmp"] / "current.parquet"))
    ctx = RunContext("drift_daily", f"manual__{day}", day.isoformat(), day.isoformat(), (day + timedelta(days=1)).isoformat())
    runs_before = len(registry.client().search_runs([registry.ensure_experiment(cfg.mlflow.experiment)]))
    with pytest.raises(X.ExplainInputError, match=rf"\['{unmonitored[0]}'\] that the model reads are missing"):
        lifecycle.detect_drift(cfg, ctx, current, day, day + timedelta(days=1))
    engine = drift_store.get_engine()
    db.migrate(engine)
    assert drift_store.load_reports(engine, cfg.model_name, day, day).empty
    assert explanation_store.load_attribution(engine, cfg.model_name, day, day + timedelta(days=1)).empty
    assert len(registry.client().search_runs([registry.ensure_experiment(cfg.mlflow.experiment)])) == runs_before
