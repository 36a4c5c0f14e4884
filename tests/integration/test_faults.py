"""Faults against real services: an `mlflow server` behind a fault-injecting proxy, and an S3 server that goes away.

"Retry" below is what Airflow does after a failed try (retries with exponential backoff,
see dag_support.default_args): the same step function, same logical run, run again.
"""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from modelops import lifecycle, tracking
from modelops.governance import registry
from modelops.data import storage
from modelops.tracking import RunContext
from tests.conftest import write_config
from tests.integration.conftest import free_port
from tests.integration.faultproxy import FaultProxy
from tests.registry_helpers import approved_version, log_constant_model

pytestmark = pytest.mark.integration

CTX = RunContext("retrain_weekly", "scheduled__2025-06-01", "2025-06-01T00:00:00+00:00", None, "2025-06-01T00:00:00+00:00")


@pytest.fixture(scope="module")
def proxy(mlflow_server):
    p = FaultProxy(mlflow_server["uri"], free_port()).start()
    yield p
    p.stop()


@pytest.fixture
def via_proxy(proxy, s3_server, monkeypatch):
    """The package talks to the MLflow server through the proxy; MLflow's own HTTP retries are fast here."""
    for k, v in s3_server["env"].items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", proxy.url)
    monkeypatch.delenv("MODELOPS_ARTIFACT_ROOT", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    proxy.clear()
    proxy.log.clear()
    yield proxy
    if proxy._server is None:
        proxy.start()
    proxy.clear()


@pytest.fixture(scope="module")
def logged_model(mlflow_server, s3_server):
    """A tiny pyfunc logged through the real server (artifacts proxied to S3)."""
    import os

    old = {k: os.environ.get(k) for k in [*s3_server["env"], "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"]}
    os.environ.update(s3_server["env"])
    try:
        return log_constant_model("faults", tracking_uri=mlflow_server["uri"])
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _cfg(tmp_path, name):
    from modelops.config import load_config

    return load_config(write_config(tmp_path, model_name=name, **{"mlflow.experiment": name}))


def _versions_for_key(name, key):
    return [v for v in registry.versions(name) if v.tags.get(registry.RUN_KEY) == key]


def _fired(proxy, path):
    return [e for e in proxy.log if path in e[1] and e[2] < 0 or (path in e[1] and e[2] >= 500)]


def test_registration_answered_5xx_after_commit_leaves_exactly_one_version(via_proxy, logged_model, monkeypatch):
    """The server registers, the answer is lost as a 503, MLflow's client re-POSTs: the duplicate is reconciled."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    name = f"f5xx_{uuid.uuid4().hex[:6]}"
    uri, run_id = logged_model
    via_proxy.add("POST", "/model-versions/create", "fail_after", times=1)
    mv, created = registry.register_candidate(name, uri, run_id, CTX.run_key, {})
    creates = [e for e in via_proxy.log if e[0] == "POST" and "/model-versions/create" in e[1]]
    assert [e[2] for e in creates] == [-503, 200], creates  # the server committed twice
    assert created and str(mv.version) == "1"
    vs = registry.versions(name)
    assert [str(v.version) for v in vs] == ["1"], "the duplicate from the client's retry is left behind"
    # the task's own retry (e.g. the worker died before pushing its XCom) gets the same version
    again, created_again = registry.register_candidate(name, uri, run_id, CTX.run_key, {})
    assert (str(again.version), created_again) == ("1", False)
    assert registry.aliases_by_version(name) == {}


def test_run_creation_answered_5xx_after_commit_leaves_one_run(via_proxy, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    exp = f"f5xx_runs_{uuid.uuid4().hex[:6]}"
    via_proxy.add("POST", "/runs/create", "fail_after", times=1)
    rid = tracking.get_or_create_run(exp, CTX, "retrain", "retrain-2025-06-01")
    assert [e[2] for e in via_proxy.log if "/runs/create" in e[1]] == [-503, 200]
    exp_id = registry.ensure_experiment(exp)
    live = registry.client().search_runs([exp_id])
    assert [r.info.run_id for r in live] == [rid]
    assert tracking.get_or_create_run(exp, CTX, "retrain", "retrain-2025-06-01") == rid


def test_staging_alias_fails_then_gate_retry_completes(via_proxy, logged_model, tmp_path):
    name = f"fgate_{uuid.uuid4().hex[:6]}"
    cfg = _cfg(tmp_path, name)
    uri, run_id = logged_model
    mv, _ = registry.register_candidate(name, uri, run_id, CTX.run_key, {})
    v = str(mv.version)
    evaluation = {"candidate": {"rmspe": 0.05}, "production_version": None, "production": None}
    via_proxy.add("POST", "/registered-models/alias", "fail_before", times=1, status=500)
    with pytest.raises(Exception, match="500|INTERNAL|TEMPORARILY_UNAVAILABLE|injected"):
        lifecycle.gate(cfg, CTX, v, evaluation)
    tags = registry.get_version(name, v).tags
    assert registry.alias_version(name, "staging") is None
    assert "gate.decision" not in tags and tags["lifecycle"] == "candidate"  # not marked done: the retry re-applies

    out = lifecycle.gate(cfg, CTX, v, evaluation)  # Airflow's retry
    assert out["passed"] and not out["reused"]
    assert registry.alias_version(name, "staging") == v
    assert registry.get_version(name, v).tags["lifecycle"] == "staging"
    assert lifecycle.gate(cfg, CTX, v, evaluation)["reused"]  # a third run reuses, decides nothing new




def test_promotion_with_5xx_after_alias_commit_and_server_unreachable(via_proxy, logged_model, tmp_path):
    name = f"fprom_{uuid.uuid4().hex[:6]}"
    cfg = _cfg(tmp_path, name)
    v1 = approved_version(name, logged_model, "k/1", "2026-01-01T00:00:00+00:00")
    lifecycle.promote(cfg, v1, by="reviewer")
    v2 = approved_version(name, logged_model, "k/2", "2026-01-02T00:00:00+00:00")

    # reading the current production answers 503: nothing may be decided on "no production"
    via_proxy.add("GET", "/registered-models/alias", "fail_before", times=1)
    with pytest.raises(Exception, match="503|TEMPORARILY_UNAVAILABLE|injected"):
        lifecycle.promote(cfg, v2, by="reviewer")
    assert registry.alias_version(name, "production") == v1
    assert "promoted.replaced" not in registry.get_version(name, v2).tags

    # the alias move commits on the server but the answer is a 503: the task fails half-way
    via_proxy.add("POST", "/registered-models/alias", "fail_after", times=1)
    with pytest.raises(Exception, match="503|INTERNAL|injected"):
        lifecycle.promote(cfg, v2, by="reviewer")
    assert registry.alias_version(name, "production") == v2  # the switch happened, atomically
    assert registry.get_version(name, v1).tags["lifecycle"] == "production"  # archive not written yet

    # the server is unreachable for the first retry
    via_proxy.stop()
    with pytest.raises(Exception, match="Connection|connect|refused|Max retries"):
        lifecycle.promote(cfg, v2, by="reviewer")
    via_proxy.start()

    out = lifecycle.promote(cfg, v2, by="reviewer")  # recovered: the retry finishes the job
    assert out == {"version": v2, "previous": v1, "production": v2}
    tags = {str(v.version): v.tags for v in registry.versions(name)}
    assert [v for v, t in tags.items() if t["lifecycle"] == "production"] == [v2]
    assert tags[v1]["lifecycle"] == "archived" and tags[v1]["archived.replaced_by"] == v2
    assert tags[v2]["promoted.replaced"] == v1 and len(tags) == 2
    assert registry.alias_version(name, "staging") is None


def test_object_store_down_while_writing_features_then_retry_rewrites_same_path(tmp_path, fast_hp_file, monkeypatch):
    """moto's S3 server stops after build_features read its input; the retry writes the same run-scoped keys."""
    import boto3
    from moto.server import ThreadedMotoServer

    from modelops.config import load_config
    from modelops.data.sample_data import generate_store_sales, write_dataset

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL_S3": endpoint, "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    bucket = f"work-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    monkeypatch.setenv("MODELOPS_WORK_ROOT", f"s3://{bucket}/work")
    import fsspec

    fsspec.filesystem("s3").clear_instance_cache()
    name = f"fs3_{uuid.uuid4().hex[:6]}"
    cfg = load_config(write_config(tmp_path, model_name=name, **{"mlflow.experiment": name, "data.path": str(tmp_path / "data"),
                                                                 "training.window_days": 90,
                                                                 "training.hyperparameters_file": str(fast_hp_file)}))
    write_dataset(generate_store_sales(date(2025, 2, 1), date(2025, 6, 1), n_stores=5, seed=3), cfg)
    start, end = lifecycle.training_window(cfg, CTX)
    val = lifecycle.validate_data(cfg, CTX, start, end)
    assert val["path"].startswith(f"s3://{bucket}/work/")

    real_read = storage.read_frame
    stopped = []

    def read_then_store_goes_away(path):
        df = real_read(path)
        if not stopped:
            server.stop()
            stopped.append(path)
        return df

    monkeypatch.setattr(storage, "read_frame", read_then_store_goes_away)
    try:
        with pytest.raises(storage.StorageError) as info:
            lifecycle.build_features(cfg, CTX, val["path"])
        msg = str(info.value)
        rdir = lifecycle.run_dir(cfg, CTX)
        # the snapshot is already in time order, so the first file build_features writes is the feature file
        assert msg.startswith(f"cannot write {storage.join(rdir, 'features.parquet')}:"), msg
        assert "A retry rewrites the same run-scoped path." in msg
    finally:
        monkeypatch.setattr(storage, "read_frame", real_read)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)  # back, same port, same buckets
        server.start()
    try:
        fsspec.filesystem("s3").clear_instance_cache()
        out = lifecycle.build_features(cfg, CTX, val["path"])  # Airflow's retry
        assert out["features_path"] == storage.join(rdir, "features.parquet")
        assert out["raw_sorted_path"] == val["path"]  # no second copy of an ordered snapshot
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="work/")["Contents"])
        prefix = rdir.split(f"s3://{bucket}/", 1)[1]
        assert keys == sorted(f"{prefix}/{k}" for k in ("feature_builder.pkl", "features.parquet", "raw.parquet",
                                                         "validation_result.json"))
        assert len(storage.read_frame(out["features_path"])) == val["rows"]
    finally:
        server.stop()
