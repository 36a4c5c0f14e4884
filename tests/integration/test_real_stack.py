"""The whole lifecycle through a real MLflow server (PostgreSQL backend, S3 artifacts),
data and run files on S3, and the drift table on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from modelops import lifecycle
from modelops.governance import registry
from modelops.data import storage
from modelops.tracking import RunContext
from tests.conftest import write_config

pytestmark = pytest.mark.integration


def _retrain(cfg, day: str) -> str:
    ctx = RunContext("retrain_weekly", f"scheduled__{day}", f"{day}T00:00:00+00:00", None, f"{day}T00:00:00+00:00")
    start, end = lifecycle.training_window(cfg, ctx)
    val = lifecycle.validate_data(cfg, ctx, start, end, mlflow_run_id=lifecycle.parent_run(cfg, ctx))
    feats = lifecycle.build_features(cfg, ctx, val["path"])
    x = lifecycle.train_model(cfg, ctx, "xgboost", feats)
    lg = lifecycle.train_model(cfg, ctx, "lightgbm", feats)
    ens = lifecycle.build_ensemble(cfg, ctx, feats, x, lg, val)
    ev = lifecycle.evaluate(cfg, ctx, feats, ens)
    reg = lifecycle.register_candidate(cfg, ctx, ens, ev, val)
    gate = lifecycle.gate(cfg, ctx, reg["version"], ev)
    assert gate["passed"], gate
    registry.record_decision(cfg.model_name, reg["version"], True, "reviewer", registry.now_iso(), "ok")
    lifecycle.promote(cfg, reg["version"], by="reviewer")
    lifecycle.smoke_test(cfg, ctx, feats["raw_sorted_path"])
    return reg["version"]


def test_lifecycle_on_mlflow_server_postgres_and_s3(real_stack, tmp_path, fast_hp_file, monkeypatch):
    from modelops.monitoring import drift_store
    from modelops.config import load_config
    from modelops.data.sample_data import generate_store_sales, write_dataset

    name = f"stack_{uuid.uuid4().hex[:6]}"
    path = write_config(tmp_path, model_name=name, **{"mlflow.experiment": name, "training.window_days": 150,
                                                      "training.hyperparameters_file": str(fast_hp_file)})
    monkeypatch.setenv("MODELOPS_CONFIG", str(path))
    cfg = load_config(path)
    assert cfg.data.path.startswith("s3://modelops/")
    write_dataset(generate_store_sales(date(2024, 10, 1), date(2025, 12, 1), n_stores=30, seed=5, drift_start=date(2025, 7, 1)), cfg)

    v1 = _retrain(cfg, "2025-06-01")
    assert registry.alias_version(name, "production") == v1
    mv = registry.get_version(name, v1)
    assert mv.source.startswith("models:/") and registry.client().tracking_uri.startswith("http://")

    # artifacts went through the server into the S3 bucket; run files are on S3 too
    s3 = real_stack["s3"]
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="mlflow") for o in page.get("Contents", [])]
    assert any(k.endswith("MLmodel") for k in keys) and any("drift_reference/profile.bin" in k for k in keys)
    work = s3.list_objects_v2(Bucket="modelops", Prefix=f"{real_stack['run']}/work/{name}/")
    assert any(o["Key"].endswith("features.parquet") for o in work.get("Contents", []))

    # drift of a drifted day, stored on PostgreSQL
    ctx = RunContext("drift_daily", "scheduled__2025-11-20", "2025-11-20T00:00:00+00:00", "2025-11-19T00:00:00+00:00",
                     "2025-11-20T00:00:00+00:00")
    cur = lifecycle.validate_data(cfg, ctx, date(2025, 11, 19), date(2025, 11, 20), "current.parquet")
    result = lifecycle.detect_drift(cfg, ctx, cur["path"], date(2025, 11, 19), date(2025, 11, 20))
    assert result["dataset_drift"] and result["reference"] == f"training snapshot of production v{v1}"
    engine = drift_store.get_engine()
    assert engine.dialect.name == "postgresql"
    rows = drift_store.load_reports(engine, name)
    assert len(rows) == len(cfg.drift_features)

    # retrain on the drift, promote v2, then roll back to v1 through the server
    v2 = _retrain(cfg, "2025-11-20")
    assert registry.alias_version(name, "production") == v2
    assert registry.get_version(name, v1).tags["archived.replaced_by"] == v2
    assert registry.rollback(name, by="ops", reason="integration test") == (v2, v1)
    assert registry.alias_version(name, "production") == v1

    import mlflow

    model = mlflow.pyfunc.load_model(f"models:/{name}@production")
    sample = storage.read_window(cfg, date(2025, 11, 25), date(2025, 11, 26)).drop(columns=["sales"])
    assert len(model.predict(sample)) == len(sample)
