"""Tuning core: request/search-space validation, live-file resolution, resumable study storage, pruning hooks."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from modelops.training import hyperparameters as H
from modelops.config import ConfigError, load_config, parse_config
from modelops.training.tuning import TuningError, effective_search_space, open_storage, recover_interrupted, resolve_request
from tests.conftest import ROOT, write_config


def _raw(**tuning):
    raw = yaml.safe_load((ROOT / "include/config/store_sales.yaml").read_text())
    raw["tuning"] = tuning
    return raw


@pytest.fixture
def cfg(tmp_path):
    shipped = str(ROOT / "include/config/best_hyperparameters.json")
    return load_config(write_config(tmp_path, model_name=f"tune_{uuid.uuid4().hex[:8]}", **{"training.hyperparameters_file": shipped}))


# -- config and request -----------------------------------------------------------------------

@pytest.mark.parametrize(("tuning", "message"), [
    ({"search_space": {"xgboost": {"max_dept": {"type": "int", "low": 2, "high": 4}}}}, "did you mean 'max_depth'"),
    ({"search_space": {"xgboost": {"max_depth": {"type": "float", "low": 2, "high": 4}}}}, "integer parameter needs type int"),
    ({"search_space": {"lightgbm": {"learning_rate": {"type": "float", "low": 0.0, "high": 0.3, "log": True}}}}, "log scale needs low > 0"),
    ({"search_space": {"lightgbm": {"learning_rate": {"type": "float", "low": 0.3, "high": 0.1}}}}, "low must be below high"),
    ({"search_space": {"xgboost": {"tree_method": {"type": "int", "low": 1, "high": 2}}}}, "string parameter needs type categorical"),
    ({"search_space": {"catboost": {}}}, "tuning.search_space.catboost"),
    ({"n_trials": 0}, "tuning.n_trials"),
    ({"pruner": "hyperband"}, "tuning.pruner"),
    ({"metric": "roc_auc"}, "tuning.metric 'roc_auc' does not fit task 'regression'"),
    ({"n_trails": 5}, "unknown key 'tuning.n_trails' (did you mean 'n_trials'?)"),
])
def test_bad_tuning_config_names_the_key(tuning, message):
    with pytest.raises(ConfigError, match="invalid config file x.yaml") as exc:
        parse_config(_raw(**tuning), "x.yaml")
    assert message in str(exc.value)


def test_request_defaults_come_from_the_config(cfg):
    req = resolve_request(cfg, {})
    assert req.models == ["xgboost", "lightgbm"] and req.n_trials == cfg.tuning.n_trials
    assert req.timeout_seconds == cfg.tuning.timeout_minutes * 60 and req.metric == "rmspe" and req.direction == "minimize"
    assert set(req.search_space["xgboost"]) >= {"max_depth", "learning_rate"}
    req = resolve_request(cfg, {"models": ["lightgbm"], "n_trials": 7, "timeout_minutes": 1.5, "metric": "r2", "apply": False})
    assert (req.models, req.n_trials, req.timeout_seconds, req.metric, req.direction, req.apply) == (
        ["lightgbm"], 7, 90.0, "r2", "maximize", False)


@pytest.mark.parametrize(("params", "message"), [
    ({"models": ["catboost"]}, "params.models"),
    ({"models": ["xgboost", "xgboost"]}, "params.models"),
    ({"n_trials": 0}, "params.n_trials must be an integer from 1"),
    ({"n_trials": "10"}, "params.n_trials must be an integer from 1"),
    ({"n_trials": True}, "params.n_trials must be an integer from 1"),
    ({"timeout_minutes": -1}, "params.timeout_minutes"),
    ({"timeout_minutes": float("nan")}, "params.timeout_minutes"),
    ({"metric": "f1"}, "params.metric 'f1' does not fit task 'regression'"),
    ({"apply": "yes"}, "params.apply"),
    ({"search_space": {"xgboost": {"num_leaves": {"type": "int", "low": 2, "high": 9}}}}, "xgboost.num_leaves: not a tunable xgboost"),
    ({"search_space": {"xgboost": {"max_depth": {"type": "int", "low": 2}}}}, "xgboost.max_depth"),
    ({"search_space": {"lightgbm": {"num_leaves": {"type": "int", "low": 2.5, "high": 9}}}}, "whole-number"),
    ({"search_space": {"lightgbm": {"subsample": {"type": "float", "low": 0.5, "high": 1, "colour": 1}}}}, "lightgbm.subsample.colour"),
])
def test_bad_run_params_fail_before_any_work(cfg, params, message):
    with pytest.raises(TuningError) as exc:
        resolve_request(cfg, params)
    assert message in str(exc.value)


def test_search_space_layers_and_null_drops(tmp_path):
    path = write_config(tmp_path, **{"tuning.search_space": {"xgboost": {"max_depth": {"type": "int", "low": 2, "high": 4},
                                                                          "reg_alpha": None}}})
    cfg = load_config(path)
    space = effective_search_space(cfg, "xgboost")
    assert space["max_depth"] == {"type": "int", "low": 2.0, "high": 4.0, "log": False}
    assert "reg_alpha" not in space and "learning_rate" in space  # defaults stay unless removed
    space = effective_search_space(cfg, "xgboost", {"max_depth": {"type": "categorical", "choices": [3, 5]}, "learning_rate": None})
    assert space["max_depth"] == {"type": "categorical", "log": False, "choices": [3, 5]} and "learning_rate" not in space
    everything_off = {name: None for name in effective_search_space(cfg, "lightgbm")}
    with pytest.raises(TuningError, match="search space of lightgbm is empty"):
        effective_search_space(cfg, "lightgbm", everything_off)


# -- which file training uses -------------------------------------------------------------------

def test_training_prefers_the_live_tuned_file_and_records_where_params_came_from(cfg):
    active = H.load_active(cfg)
    assert not active.tuned and active.path == str(cfg.hyperparameters_path)
    params, tags = H.load_for_training(cfg, "xgboost", {"xgboost": {"max_depth": 3}})
    assert params["max_depth"] == 3
    assert tags["modelops.hyperparameters.source"] == "config" and tags["modelops.hyperparameters.overrides"] == "true"

    tuned = {m: dict(active.params[m]) for m in H.MODELS}
    tuned["xgboost"]["max_depth"] = 5
    meta = {"version": "v1", "models": {"xgboost": {"source": "tuning", "study": "s", "trial": 4, "mlflow_run_id": "abc"}}}
    out = H.write_version(cfg, tuned, meta, make_live=True)
    assert out["live_path"] == H.live_path(cfg) and Path(out["version_path"]).exists()
    assert not Path(f"{out['live_path']}.tmp").exists()
    params, tags = H.load_for_training(cfg, "xgboost")
    assert params["max_depth"] == 5
    assert tags["modelops.hyperparameters.source"] == "tuning" and tags["modelops.hyperparameters.trial"] == "4"
    assert tags["modelops.hyperparameters.study"] == "s" and tags["modelops.hyperparameters.file_version"] == "v1"
    _, tags = H.load_for_training(cfg, "lightgbm")  # a section the study did not tune keeps its own origin
    assert tags["modelops.hyperparameters.source"] == "config" and tags["modelops.hyperparameters.file"] == H.live_path(cfg)

    Path(H.live_path(cfg)).write_text('{"xgboost": {"max_depth": "deep"}}')
    with pytest.raises(ConfigError, match=r"best_hyperparameters.json: xgboost.max_depth must be int"):
        H.load_active(cfg)  # a broken tuned file is an error, never a silent fallback to the shipped one


def test_the_live_file_can_live_on_s3(cfg, monkeypatch):
    """The real stack keeps tuned files in the bucket (MODELOPS_HYPERPARAMETERS_ROOT=s3://...): every worker sees them."""
    import boto3
    import s3fs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                     "AWS_ENDPOINT_URL_S3": endpoint, "FSSPEC_S3_ENDPOINT_URL": endpoint,
                     "MODELOPS_HYPERPARAMETERS_ROOT": "s3://tuned/hyperparameters"}.items():
            monkeypatch.setenv(k, v)
        s3fs.S3FileSystem.clear_instance_cache()
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="tuned")
        base = H.load_active(cfg)
        for version, depth in (("v1", 4), ("v2", 5)):
            params = {m: dict(base.params[m]) for m in H.MODELS}
            params["xgboost"]["max_depth"] = depth
            H.write_version(cfg, params, {"version": version, "models": {"xgboost": {"source": "tuning", "trial": depth}}}, True)
        params, tags = H.load_for_training(cfg, "xgboost")
        assert params["max_depth"] == 5 and tags["modelops.hyperparameters.trial"] == "5"
        assert tags["modelops.hyperparameters.file"] == f"s3://tuned/hyperparameters/{cfg.model_name}/best_hyperparameters.json"
        keys = sorted(o["Key"] for o in boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket="tuned")["Contents"])
        assert keys == [f"hyperparameters/{cfg.model_name}/{k}" for k in ("best_hyperparameters.json", "versions/v1.json", "versions/v2.json")]
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


def test_an_invalid_file_is_never_published(cfg):
    with pytest.raises(ConfigError, match="xgboost.learning_rate must be number"):
        H.write_version(cfg, {"xgboost": {"learning_rate": "fast"}, "lightgbm": {}}, {"version": "bad"}, make_live=True)
    assert not Path(H.live_path(cfg)).exists()


# -- study storage ----------------------------------------------------------------------------

def test_an_interrupted_trial_fails_and_its_parameters_run_again(tmp_path):
    import optuna
    from optuna.trial import TrialState

    storage = open_storage(f"sqlite:///{tmp_path / 'studies.db'}")
    study = optuna.create_study(study_name="m.xgboost.dag/2025-01-01", storage=storage)
    for _ in range(2):
        t = study.ask()
        study.tell(t, t.suggest_float("x", 0, 10))
    dead = study.ask()  # what a killed worker leaves behind: a RUNNING trial with its parameters
    dead.suggest_float("x", 0, 10)
    x_dead = dead.params["x"]

    resumed = optuna.load_study(study_name="m.xgboost.dag/2025-01-01", storage=open_storage(f"sqlite:///{tmp_path / 'studies.db'}"))
    assert recover_interrupted(resumed) == [2]
    assert resumed.trials[2].state == TrialState.FAIL and resumed.trials[2].user_attrs["interrupted"] is True
    resumed.optimize(lambda t: t.suggest_float("x", 0, 10), n_trials=1)
    retry = resumed.trials[3]
    assert retry.params["x"] == x_dead and retry.user_attrs["retry_of"] == 2 and retry.state == TrialState.COMPLETE
    assert [t.state for t in resumed.trials[:2]] == [TrialState.COMPLETE] * 2
    assert recover_interrupted(resumed) == []  # nothing left to recover


def test_postgres_studies_live_in_their_own_schema(pg_url):
    import optuna
    import sqlalchemy as sa

    storage = open_storage(pg_url)
    study = optuna.create_study(study_name="m.lightgbm.dag/2025-01-01", storage=storage, direction="minimize")
    study.optimize(lambda t: (t.suggest_float("x", -1, 1)) ** 2, n_trials=2)
    again = optuna.create_study(study_name="m.lightgbm.dag/2025-01-01", storage=open_storage(pg_url), load_if_exists=True)
    assert len(again.trials) == 2
    engine = sa.create_engine(pg_url)
    try:
        insp = sa.inspect(engine)
        assert {"studies", "trials", "alembic_version"} <= set(insp.get_table_names(schema="optuna"))
        assert not {"studies", "trials", "alembic_version"} & set(insp.get_table_names(schema="public"))
    finally:
        engine.dispose()
        storage.engine.dispose()


# -- pruning hooks in the boosters ----------------------------------------------------------------

def _tiny(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)}).astype("float32")
    y = (2 * X["a"] - X["b"] + rng.normal(scale=0.1, size=n)).to_numpy()
    return X[:300], y[:300], X[300:], y[300:]


@pytest.mark.parametrize("which", ["xgboost", "lightgbm"])
def test_the_iteration_hook_sees_the_validation_curve_and_can_stop_training(which):
    from modelops.training.boosters import train_lightgbm, train_xgboost

    X_tr, y_tr, X_va, y_va = _tiny()
    seen: list[tuple[int, float]] = []

    def fit(hook):
        if which == "xgboost":
            return train_xgboost(X_tr, y_tr, X_va, y_va, {"n_estimators": 30}, "regression", 100, 1, on_iteration=hook)
        return train_lightgbm(X_tr, y_tr, X_va, y_va, {"n_estimators": 30, "min_child_samples": 5}, "regression", 100, 1, [],
                              on_iteration=hook)

    _, info = fit(lambda step, value: seen.append((step, value)))
    assert [s for s, _ in seen] == list(range(30))
    assert [v for _, v in seen] == pytest.approx(info["validation_curve"])  # the same per-round validation metric

    class Stop(Exception):
        pass

    def stop_at_5(step, value):
        if step == 5:
            raise Stop(value)

    with pytest.raises(Stop):  # a pruned trial stops training right there
        fit(stop_at_5)


def test_request_round_trips_through_xcom_json(cfg):
    req = resolve_request(cfg, {"n_trials": 3})
    assert type(req).from_dict(json.loads(json.dumps(req.to_dict()))) == req


# -- a real (tiny) study ------------------------------------------------------------------------

def test_same_data_and_seed_give_the_same_study_and_weak_trials_are_pruned(tmp_path, state_dir):
    """Two studies over the same data (two DAG ids) suggest, prune and score identically."""
    import optuna
    from datetime import date

    from modelops import lifecycle
    from modelops.governance import registry
    from modelops.training import tuning
    from modelops.data.sample_data import generate_store_sales, write_dataset
    from modelops.tracking import RunContext

    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps({"xgboost": {"n_estimators": 80, "max_depth": 6, "learning_rate": 0.15}, "lightgbm": {"n_estimators": 80}}))
    name = f"tune_{uuid.uuid4().hex[:8]}"
    cfg = load_config(write_config(tmp_path, model_name=name, **{
        "mlflow.experiment": name, "data.path": str(state_dir / "data" / name), "training.window_days": 90,
        "training.hyperparameters_file": str(hp), "tuning.pruner_startup_trials": 1, "tuning.pruner_warmup_steps": 10}))
    write_dataset(generate_store_sales(date(2025, 1, 1), date(2025, 4, 1), n_stores=6, seed=3), cfg)
    trials = []
    for dag_id in ("dag_a", "dag_b"):
        ctx = RunContext(dag_id, "manual__1", "2025-04-01T00:00:00+00:00", None, "2025-04-01T00:00:00+00:00")
        v = lifecycle.validate_data(cfg, ctx, *lifecycle.training_window(cfg, ctx))
        f = lifecycle.build_features(cfg, ctx, v["path"])
        out = tuning.tune_model(cfg, ctx, "xgboost", tuning.resolve_request(cfg, {"models": ["xgboost"], "n_trials": 4}), f, v)
        assert out["study_name"] == f"{name}.xgboost.{dag_id}/2025-04-01T00:00:00+00:00" and out["trials_run_now"] == 4
        study = optuna.load_study(study_name=out["study_name"], storage=open_storage())
        trials.append([(t.state.name, t.params, t.value, t.intermediate_values) for t in study.trials])
    assert trials[0] == trials[1]
    states = [s for s, *_ in trials[0]]
    assert "PRUNED" in states and "COMPLETE" in states, states
    exp = registry.client().get_experiment_by_name(name)
    pruned = registry.client().search_runs([exp.experiment_id], "tags.`optuna.state` = 'PRUNED'")
    assert len(pruned) == 2 * states.count("PRUNED") and all(r.data.metrics["pruned_at_round"] >= 10 for r in pruned)
