"""Batch scoring through the production pyfunc: raw rows in (features built inside), predictions out.

A store-sales ensemble (``FAST_HP``, ``STORES`` stores x ``TRAIN_DAYS`` days) is logged with
``mlflow.pyfunc.log_model`` exactly as ``build_ensemble`` logs it (code paths, signature),
registered, given the ``production`` alias, and loaded back as ``models:/NAME@production``
with ``mlflow.pyfunc.load_model``, like a consumer. Then ``model.predict(batch)`` on batches of
the days after training (no target column: lag features come from the history kept in the
model). rows/s = rows / wall seconds of ``predict`` (median of 3 below 1M rows); the time of
each stage (features, XGBoost, LightGBM) is taken separately on the unwrapped model.

With explanations (``explain.per_prediction``): the same rows through
``modelops.monitoring.explanations.score_and_explain`` (one feature build, both boosters'
predictions, exact TreeSHAP of both, the top-k per row), once per size; its ratio to ``predict``
is the cost of explaining every row. Each booster's TreeSHAP is also timed alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import ROOT, TMP, emit, peak_mb, reset_peak, rss_mb, run_child  # noqa: E402
from retrain_bench import FAST_HP  # noqa: E402

STORES = 5000
TRAIN_DAYS = 40
START = date(2025, 1, 1)
TRAIN_END = START + timedelta(days=TRAIN_DAYS)


def env() -> dict[str, str]:
    d = TMP / "scoring"
    return {"MODELOPS_HOME": str(d / "home"), "MLFLOW_TRACKING_URI": f"sqlite:///{d / 'home' / 'mlflow.db'}",
            "GIT_PYTHON_REFRESH": "quiet", "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT / "plugins")])}


def _config():
    from modelops.config import load_config

    import yaml

    d = TMP / "scoring"
    d.mkdir(parents=True, exist_ok=True)
    (d / "home").mkdir(exist_ok=True)
    raw = yaml.safe_load((ROOT / "include" / "config" / "store_sales.yaml").read_text())
    (d / "hp.json").write_text(json.dumps(FAST_HP))
    raw["model_name"] = "bench_scoring"
    raw["training"] = {**raw.get("training", {}), "hyperparameters_file": str(d / "hp.json")}
    raw["data"]["path"] = str(d / "data")
    (d / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_config(d / "config.yaml")


def train_and_register() -> dict[str, Any]:
    import mlflow

    from modelops.governance import registry
    from modelops.training.ensemble import EnsembleModel, code_path
    from modelops.data.features import FeatureBuilder
    from modelops.lifecycle import _pip_requirements, _signature
    from modelops.data.sample_data import generate_store_sales
    from modelops.training.boosters import time_split, train_lightgbm, train_xgboost, transform_target

    cfg = _config()
    t0 = time.perf_counter()
    raw = generate_store_sales(START, TRAIN_END, n_stores=STORES, seed=9)
    ts, ent, tgt = cfg.data.timestamp_column, cfg.data.entity_column, cfg.data.target_column
    raw = raw.sort_values([ts, ent], kind="stable").reset_index(drop=True)
    tr, va, _, _ = time_split(raw, ts, 0.8, 0.1)
    builder = FeatureBuilder.from_config(cfg).fit(raw)
    X = builder.transform(raw, use_history=False)
    y = transform_target(raw[tgt].to_numpy("float64"), cfg.training.target_transform)
    m_x, _ = train_xgboost(X[tr], y[tr], X[va], y[va], FAST_HP["xgboost"], cfg.task, 20, 1)
    m_l, _ = train_lightgbm(X[tr], y[tr], X[va], y[va], FAST_HP["lightgbm"], cfg.task, 20, 1, builder.categorical_feature_names)
    model = EnsembleModel(builder, m_x, m_l, {"xgboost": 0.5, "lightgbm": 0.5}, cfg.task, cfg.training.target_transform)
    registry.ensure_experiment("bench_scoring")
    with registry.fluent().start_run(experiment_id=registry.ensure_experiment("bench_scoring")):
        info = mlflow.pyfunc.log_model(name="model", python_model=model, code_paths=[code_path()], signature=_signature(cfg, raw),
                                       pip_requirements=_pip_requirements())
    registry.ensure_registered_model(cfg.model_name)
    mv = registry.client().create_model_version(cfg.model_name, info.model_uri, run_id=info.run_id, model_id=getattr(info, "model_id", None))
    registry.client().set_registered_model_alias(cfg.model_name, "production", mv.version)
    return {"train_rows": int(len(raw)), "train_s": time.perf_counter() - t0, "version": mv.version}


def score(sizes: list[int], explain_sizes: tuple[int, ...] = ()) -> dict[str, Any]:
    import numpy as np

    from modelops.governance import registry
    from modelops.data.sample_data import generate_store_sales

    cfg = _config()
    t0 = time.perf_counter()
    model = registry.fluent().pyfunc.load_model(f"models:/{cfg.model_name}@production")
    load_s = time.perf_counter() - t0
    impl = model.unwrap_python_model()
    out: dict[str, Any] = {"load_s": load_s, "sizes": {}}
    for n in sizes:
        days = max(1, -(-n // STORES))
        batch = generate_store_sales(TRAIN_END, TRAIN_END + timedelta(days=days), n_stores=STORES, seed=9).head(n)
        batch = batch.drop(columns=[cfg.data.target_column]).reset_index(drop=True)
        repeat = 3 if n < 1_000_000 else 2
        model.predict(batch.head(1000))  # warm caches once
        reset_peak()
        base = rss_mb()
        times = []
        for _ in range(repeat):
            t1 = time.perf_counter()
            pred = model.predict(batch)
            times.append(time.perf_counter() - t1)
        peak = peak_mb()
        # stages, on the unwrapped model (same code the pyfunc runs)
        t1 = time.perf_counter()
        X = impl.builder.transform(batch)
        t_feat = time.perf_counter() - t1
        from modelops.training.ensemble import predict_raw

        t1 = time.perf_counter()
        predict_raw(impl.xgb_model, X, impl.task)
        t_xgb = time.perf_counter() - t1
        t1 = time.perf_counter()
        predict_raw(impl.lgbm_model, X, impl.task)
        t_lgb = time.perf_counter() - t1
        sec = statistics.median(times)
        out["sizes"][str(n)] = {"rows": int(len(batch)), "seconds": sec, "rows_per_s": len(batch) / sec,
                                "stages_s": {"features": t_feat, "xgboost": t_xgb, "lightgbm": t_lgb},
                                "finite": bool(np.all(np.isfinite(np.asarray(pred)))), "peak_mb": peak, "base_mb": base}
        print(f"[scoring] {n}: {len(batch) / sec:,.0f} rows/s", file=sys.stderr, flush=True)
        if n in explain_sizes:
            out["sizes"][str(n)]["explain"] = _explain(cfg, impl, batch, X, pred, sec)
            print(f"[scoring] {n} explained: {out['sizes'][str(n)]['explain']['ratio']:.1f}x predict", file=sys.stderr, flush=True)
    return out


def _explain(cfg: Any, impl: Any, batch: Any, X: Any, pred: Any, predict_s: float, k: int = 5) -> dict[str, Any]:
    """Scoring with the top-k contributions per row (what batch_predict does when explain.per_prediction is on)."""
    import numpy as np

    from modelops.monitoring.explanations import score_and_explain
    from modelops.training.explain import booster_contributions

    reset_peak()
    t0 = time.perf_counter()
    pred_x, shap = score_and_explain(impl, batch, cfg, np.ones(len(batch), dtype=bool), k)
    seconds = time.perf_counter() - t0
    peak = peak_mb()
    t0 = time.perf_counter()
    booster_contributions(impl.xgb_model, X)
    t_xgb = time.perf_counter() - t0
    t0 = time.perf_counter()
    booster_contributions(impl.lgbm_model, X)
    t_lgb = time.perf_counter() - t0
    return {"seconds": seconds, "ratio": seconds / predict_s, "rows_per_s": len(batch) / seconds, "top_k": k,
            "treeshap_s": {"xgboost": t_xgb, "lightgbm": t_lgb}, "peak_mb": peak,
            "same_predictions": bool(np.allclose(np.asarray(pred_x), np.asarray(pred), rtol=1e-9, atol=0)),
            "columns": list(shap.columns)}


def run(sizes: list[int], logs: Path, explain: bool = True) -> dict[str, Any]:
    me = str(Path(__file__).resolve())
    print("[scoring] training and registering the model", flush=True)
    reg = run_child([sys.executable, me, "child", "register"], env=env(), log=logs / "scoring-register.log")
    if "error" in reg:
        return {"error": reg["error"]}
    print("[scoring] scoring", flush=True)
    res = run_child([sys.executable, me, "child", "score", "--rows", *map(str, sizes),
                     *(["--explain-rows", *map(str, sizes)] if explain else [])], env=env(), log=logs / "scoring-score.log")
    return {"model": reg, **res}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("child")
    c.add_argument("what", choices=["register", "score"])
    c.add_argument("--rows", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    c.add_argument("--explain-rows", type=int, nargs="*", default=[], help="sizes also scored with their explanations")
    r = sub.add_parser("run")
    r.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    r.add_argument("--no-explain", action="store_true", help="skip the (slow) scoring with explanations")
    a = ap.parse_args()
    if a.cmd == "child":
        emit(train_and_register() if a.what == "register" else score(a.rows, tuple(a.explain_rows)))
    else:
        print(json.dumps(run(a.rows, TMP / "logs", explain=not a.no_explain), indent=1, default=str))
