"""A worker SIGKILLed mid-training and mid-promotion; the retry finishes the job.

Each step runs in a real subprocess (``tests/killer.py``) on the embedded default
(SQLite MLflow store, local work files), is killed with SIGKILL at a chosen point
(inside the booster; right after a given registry write), and is then retried the way
Airflow retries a task: the same function, same logical run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import pytest

from modelops import lifecycle
from modelops.governance import registry
from modelops.data import storage
from modelops.tracking import RunContext
from tests.conftest import ROOT, write_config
from tests.registry_helpers import approved_version, log_constant_model

CTX = RunContext("retrain_weekly", "scheduled__2025-03-02", "2025-03-02T00:00:00+00:00", None, "2025-03-02T00:00:00+00:00")


def run_step(spec: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.killer", json.dumps(spec)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=os.environ.copy())


@pytest.fixture(scope="module")
def problem(tmp_path_factory, fast_hp_file):
    from modelops.config import load_config
    from modelops.data.sample_data import generate_store_sales, write_dataset

    tmp = tmp_path_factory.mktemp("killed")
    name = f"killed_{uuid.uuid4().hex[:8]}"
    path = write_config(tmp, model_name=name, **{"mlflow.experiment": name, "data.path": str(tmp / "data"),
                                                  "training.window_days": 120, "training.hyperparameters_file": str(fast_hp_file)})
    cfg = load_config(path)
    write_dataset(generate_store_sales(date(2024, 10, 1), date(2025, 3, 2), n_stores=8, seed=11), cfg)
    start, end = lifecycle.training_window(cfg, CTX)
    val = lifecycle.validate_data(cfg, CTX, start, end, mlflow_run_id=lifecycle.parent_run(cfg, CTX))
    feats = lifecycle.build_features(cfg, CTX, val["path"])
    return {"cfg": cfg, "path": str(path), "features": feats}


def _train_runs(cfg) -> list:
    exp = registry.ensure_experiment(cfg.mlflow.experiment)
    return registry.client().search_runs([exp], filter_string=f"tags.`modelops.run_key` = '{CTX.run_key}' and "
                                                              "tags.`modelops.kind` = 'train_xgboost'")


@pytest.mark.parametrize("kill", [{"xgboost_iteration": 3}, {"mlflow": "log_batch", "after": 1}],
                         ids=["inside the booster", "after the run was created and half-logged"])
def test_sigkill_mid_training_then_retry(problem, kill):
    cfg = problem["cfg"]
    model_path = storage.join(lifecycle.run_dir(cfg, CTX), "model_xgboost.pkl")
    if storage.exists(model_path):
        Path(model_path).unlink()
    spec = {"step": "train", "kill": kill, "args": {"config": problem["path"], "ctx": CTX.to_dict(), "which": "xgboost",
                                                    "features": problem["features"]}}
    killed = run_step(spec)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not storage.exists(model_path)  # the model is written last: nothing half-written downstream

    retry = run_step({**spec, "kill": None})
    assert retry.returncode == 0, retry.stderr[-3000:]
    out = json.loads(retry.stdout.strip().splitlines()[-1])
    assert storage.exists(model_path) and out["model_path"] == model_path
    runs = _train_runs(cfg)
    assert len(runs) == 1, [r.info.run_id for r in runs]  # the retry reused the killed try's run
    assert runs[0].info.run_id == out["mlflow_run_id"] and runs[0].info.status == "FINISHED"
    assert "validation_rmspe" in runs[0].data.metrics  # its test metrics are logged later, by build_ensemble


def test_a_failing_fit_leaves_no_training_run_and_no_model(problem, monkeypatch):
    cfg = problem["cfg"]

    def broken(*args, **kwargs):
        raise RuntimeError("booster exploded")

    monkeypatch.setattr(lifecycle, "fit_booster", broken)
    with pytest.raises(RuntimeError, match="booster exploded"):
        lifecycle.train_model(cfg, CTX, "lightgbm", problem["features"])
    exp = registry.ensure_experiment(cfg.mlflow.experiment)
    runs = registry.client().search_runs([exp], filter_string=f"tags.`modelops.run_key` = '{CTX.run_key}' and "
                                                              "tags.`modelops.kind` = 'train_lightgbm'")
    assert runs == []
    assert not storage.exists(storage.join(lifecycle.run_dir(cfg, CTX), "model_lightgbm.pkl"))


@pytest.fixture(scope="module")
def model_uri():
    return log_constant_model("killed-promotion")




# Kill points inside registry.promote(v2) with v1 in production: right after the alias move
# (v2 serves, nothing archived yet) and half-way through v1's archive record. Every other
# write boundary is covered in-process by the state machine (test_registry_state_machine.py).
KILL_POINTS = [("set_registered_model_alias", 1), ("set_model_version_tag", 8)]


@pytest.mark.parametrize("method,after", KILL_POINTS, ids=[f"{m}#{n}" for m, n in KILL_POINTS])
def test_sigkill_mid_promotion_then_retry(model_uri, method, after):
    name = f"killp_{uuid.uuid4().hex[:8]}"
    v1 = approved_version(name, model_uri, "k/1", "2026-01-01T00:00:00+00:00")
    registry.promote(name, v1, by="reviewer")
    v2 = approved_version(name, model_uri, "k/2", "2026-01-02T00:00:00+00:00")

    killed = run_step({"step": "promote", "kill": {"mlflow": method, "after": after}, "args": {"name": name, "version": v2}})
    assert killed.returncode == -9, killed.stderr[-2000:]
    # whatever the kill point, production is one whole version, never none
    assert registry.alias_version(name, "production") in (v1, v2)

    assert registry.promote(name, v2, by="reviewer") == v1  # the retry (the lock died with the killed worker)
    assert registry.alias_version(name, "production") == v2
    assert registry.alias_version(name, "staging") is None
    tags = {str(v.version): v.tags for v in registry.versions(name)}
    assert [v for v, t in tags.items() if t["lifecycle"] == "production"] == [v2]
    assert [v for v, t in tags.items() if t["lifecycle"] == "archived"] == [v1]
    assert tags[v1]["archived.replaced_by"] == v2 and tags[v2]["promoted.replaced"] == v1
    # a second retry changes nothing (the archive record is written once)
    before = dict(tags[v1])
    assert registry.promote(name, v2, by="someone-else") == v1
    assert registry.get_version(name, v1).tags == before


def test_a_failing_test_scoring_leaves_no_logged_model_and_the_retry_logs_one(problem, monkeypatch):
    """build_ensemble logs the model on a second thread while it scores the test window: when the
    scoring fails, the model that thread logged is deleted and the run is not marked done."""
    cfg, feats = problem["cfg"], problem["features"]
    val = lifecycle.validate_data(cfg, CTX, *lifecycle.training_window(cfg, CTX))
    x = lifecycle.train_model(cfg, CTX, "xgboost", feats)
    lg = lifecycle.train_model(cfg, CTX, "lightgbm", feats)
    parent = lifecycle.parent_run(cfg, CTX)
    exp = registry.ensure_experiment(cfg.mlflow.experiment)

    def logged() -> list:
        return [m for m in registry.client().search_logged_models(experiment_ids=[exp]) if m.source_run_id == parent]

    def broken(*args, **kwargs):
        raise RuntimeError("scoring exploded")

    with monkeypatch.context() as m:
        m.setattr(lifecycle, "score_window_components", broken)
        with pytest.raises(RuntimeError, match="scoring exploded"):
            lifecycle.build_ensemble(cfg, CTX, feats, x, lg, val)
    assert logged() == []
    assert "modelops.model_uri" not in registry.client().get_run(parent).data.tags

    out = lifecycle.build_ensemble(cfg, CTX, feats, x, lg, val)
    models = logged()
    assert [mm.model_id for mm in models] == [out["model_uri"].split("/")[-1]], (models, out)
    assert registry.client().get_run(parent).data.tags["modelops.model_uri"] == out["model_uri"]
    assert {"test_rmspe", "xgboost_test_rmspe", "rows_total"} <= set(registry.client().get_run(parent).data.metrics)
