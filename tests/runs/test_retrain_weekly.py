"""Whole retrain_weekly runs: happy path, re-run, gate rejects, approval rejected/refused/timed out, a run failing after registration."""

from __future__ import annotations

import json

import pytest

from modelops.governance import registry
from tests.runs.conftest import Reviewer, TimeoutSweeper, load_dag, states, utc

pytestmark = pytest.mark.dagrun

V1_DAY = "2025-06-01"


def run_retrain(api_app, cfg, day: str, attempts=None, conf=None, sweeper: bool = False):
    dag = load_dag("retrain_weekly")
    helper = None
    if attempts:
        helper = Reviewer(api_app, cfg.model_name, attempts)
    elif sweeper:
        helper = TimeoutSweeper(cfg.model_name, api_app)
    if helper:
        helper.start()
    try:
        dr = dag.test(logical_date=utc(day), run_conf=conf)
    finally:
        if helper:
            helper.run_done.set()
    if helper:
        helper.join(timeout=60)
        assert helper.error is None, helper.error
    return dr, helper


def test_happy_path_then_rerun_reuses_the_version(api_app, problem):
    cfg = problem()
    dr, reviewer = run_retrain(api_app, cfg, V1_DAY, [("reviewer", True, "looks good")])
    st = states(dr)
    assert str(dr.state) == "success", st
    assert all(s == "success" for s in st.values()), st
    assert reviewer.outcomes == [("reviewer", "ok")]

    vs = registry.versions(cfg.model_name)
    assert len(vs) == 1
    v = vs[0]
    assert registry.alias_version(cfg.model_name, "production") == str(v.version)
    assert registry.alias_version(cfg.model_name, "staging") is None
    t = v.tags
    assert t["lifecycle"] == "production"
    assert t["approval.decision"] == "approved" and t["approval.by"] == "reviewer" and t["approval.comment"] == "looks good"
    assert t["gate.passed"] == "true" and float(t["metric.rmspe"]) < cfg.evaluation.threshold
    assert t["smoke_test.passed"] == "true"
    for key in ("airflow.dag_id", "airflow.run_id", "airflow.logical_date", "airflow.try_number", "modelops.package_version",
                "modelops.config_hash", "modelops.data_fingerprint", "modelops.rows"):
        assert t.get(key), key
    run = registry.client().get_run(v.run_id)
    assert {"test_rmspe", "test_mape", "test_rmse", "test_r2", "xgboost_test_rmspe", "lightgbm_test_rmspe"} <= set(run.data.metrics)
    assert run.inputs.dataset_inputs and {d.dataset.name.rsplit("-", 1)[1] for d in run.inputs.dataset_inputs} == {"train", "validation", "test"}
    for d in run.inputs.dataset_inputs:  # schema from the dtypes, digest from the data fingerprint and the split
        cols = {c["name"]: c["type"] for c in json.loads(d.dataset.schema)["mlflow_colspec"]}
        assert cols["date"] == "datetime" and cols["sales"] == "double" and cols["store_type"] == "string", cols
        assert json.loads(d.dataset.profile)["num_rows"] == int({t.key: t.value for t in d.tags}["rows"]) > 0
    assert len({d.dataset.digest for d in run.inputs.dataset_inputs}) == 3
    # each booster's child run: validation metrics from its task, test metrics from the one scoring of the test window
    children = registry.client().search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{v.run_id}'")
    boosters = {c.data.tags.get("mlflow.runName"): c for c in children}
    for name in ("xgboost", "lightgbm"):
        m = boosters[name].data.metrics
        assert {"validation_rmspe", "test_rmspe", "fit_seconds"} <= set(m), m
        assert m["test_rmspe"] == run.data.metrics[f"{name}_test_rmspe"]
        # the fit alone, a part of its task's time
        ti = next(t for t in dr.get_task_instances() if t.task_id == f"train_{name}")
        assert 0 < m["fit_seconds"] < (ti.end_date - ti.start_date).total_seconds(), m
    arts = {a.path for a in registry.client().list_artifacts(v.run_id)}
    assert {"plots", "drift_reference", "validation", "config"} <= arts

    # the same logical date again (a re-run or a backfill): no new version, nobody asked twice
    dr2, _ = run_retrain(api_app, cfg, V1_DAY)
    assert str(dr2.state) == "success", states(dr2)
    assert len(registry.versions(cfg.model_name)) == 1
    assert registry.alias_version(cfg.model_name, "production") == str(v.version)


def test_gate_rejects_and_production_is_untouched(api_app, problem):
    cfg = problem(**{"evaluation.threshold": 0.001})
    dr, _ = run_retrain(api_app, cfg, V1_DAY)
    st = states(dr)
    assert st["gate"] == "success"
    assert st["approve_production"] == "skipped" and st["promote"] == "skipped" and st["smoke_test"] == "skipped"
    (v,) = registry.versions(cfg.model_name)
    assert v.tags["lifecycle"] == "rejected" and "does not pass the threshold" in v.tags["rejected.reason"]
    assert registry.alias_version(cfg.model_name, "production") is None
    assert registry.alias_version(cfg.model_name, "staging") is None


def test_rejected_by_reviewer_after_an_intruder_is_refused(api_app, problem):
    cfg = problem()
    dr, reviewer = run_retrain(api_app, cfg, V1_DAY, [("intruder", True, "let me in"), ("viewer", True, ""), ("admin", False, "not this one")])
    assert reviewer.outcomes[0][0] == "intruder" and "HTTP 403" in reviewer.outcomes[0][1]
    assert reviewer.outcomes[1][0] == "viewer" and "HTTP 403" in reviewer.outcomes[1][1]
    assert reviewer.outcomes[2] == ("admin", "ok")
    st = states(dr)
    assert st["approve_production"] == "success" and st["promote"] == "skipped"
    (v,) = registry.versions(cfg.model_name)
    t = v.tags
    assert t["lifecycle"] == "rejected" and t["approval.decision"] == "rejected" and t["approval.by"] == "admin"
    assert t["approval.comment"] == "not this one"
    assert registry.alias_version(cfg.model_name, "production") is None


def test_approval_timeout_counts_as_rejection(api_app, problem):
    cfg = problem(**{"approval.timeout_hours": 0.0005})  # ~2 s
    dr, sweeper = run_retrain(api_app, cfg, V1_DAY, sweeper=True)
    assert sweeper.swept
    st = states(dr)
    assert st["approve_production"] == "success" and st["promote"] == "skipped", st
    (v,) = registry.versions(cfg.model_name)
    assert v.tags["approval.decision"] == "timed_out" and v.tags["lifecycle"] == "rejected"
    assert registry.alias_version(cfg.model_name, "production") is None


def test_a_run_that_fails_after_registering_leaves_no_candidate_behind(api_app, problem, monkeypatch):
    """The gate step fails for good (after its retries): the DAG's failure callback gives the
    registered but ungated version its final tag, so no ``candidate`` is left without a decision."""
    from modelops import lifecycle

    cfg = problem()

    def broken(*args, **kwargs):
        raise RuntimeError("gate exploded")

    monkeypatch.setattr(lifecycle, "gate", broken)  # tasks run in this process under dag.test()
    dr, _ = run_retrain(api_app, cfg, V1_DAY)
    st = states(dr)
    assert str(dr.state) == "failed", st
    assert st["register_candidate"] == "success" and st["gate"] == "failed", st
    (v,) = registry.versions(cfg.model_name)
    t = v.tags
    assert t["lifecycle"] == "rejected", t
    assert t["rejected.reason"].startswith("abandoned: run ") and "failed" in t["rejected.reason"], t
    assert t["rejected.by"] == "cleanup" and t.get("rejected.at")
    assert registry.alias_version(cfg.model_name, "production") is None
    assert registry.alias_version(cfg.model_name, "staging") is None
