"""Registry transitions against a real local MLflow store (SQLite backend, local artifacts)."""

from __future__ import annotations

import uuid

import pytest

from modelops.governance import registry
from tests.registry_helpers import log_constant_model


@pytest.fixture(scope="module")
def model_uri():
    return log_constant_model("registry-tests")


@pytest.fixture
def name():
    return f"m_{uuid.uuid4().hex[:8]}"


def _candidate(name, model_uri, key, value=0.05):
    uri, run_id = model_uri
    mv, created = registry.register_candidate(name, uri, run_id, key, {"metric.rmspe": str(value)})
    return str(mv.version), created


def _decide(value, prod_v=None, prod_value=None, margin=0.0, threshold=0.10):
    return registry.decide_gate("rmspe", value, threshold, False, prod_v, prod_value, margin)


def test_register_is_idempotent_per_run_key(name, model_uri):
    v1, created1 = _candidate(name, model_uri, "retrain_weekly/2025-06-01")
    v1b, created2 = _candidate(name, model_uri, "retrain_weekly/2025-06-01")
    v2, _ = _candidate(name, model_uri, "retrain_weekly/2025-06-08")
    assert (v1, created1) == (v1b, True) and created2 is False
    assert v2 != v1
    assert registry.get_version(name, v1).tags["lifecycle"] == "candidate"


def test_gate_decisions():
    assert _decide(0.08).passed
    fail = _decide(0.12)
    assert not fail.passed and "does not pass the threshold (rmspe < 0.1)" in fail.reasons[0]
    assert _decide(0.07, "1", 0.08).passed
    worse = _decide(0.085, "1", 0.08)
    assert not worse.passed and "does not beat production v1" in worse.reasons[0]
    assert not _decide(0.079, "1", 0.08, margin=0.005).passed  # better, but not by the margin
    assert _decide(0.074, "1", 0.08, margin=0.005).passed
    both = _decide(0.2, "1", 0.08)
    assert len(both.reasons) == 2
    # larger-is-better metrics flip the comparisons
    assert registry.decide_gate("roc_auc", 0.8, 0.7, True, "1", 0.75, 0.0).passed
    assert not registry.decide_gate("roc_auc", 0.72, 0.7, True, "1", 0.75, 0.0).passed


def test_gate_pass_stages_fail_rejects(name, model_uri):
    v1, _ = _candidate(name, model_uri, "k1")
    registry.apply_gate(name, v1, _decide(0.05))
    assert registry.alias_version(name, "staging") == v1
    v2, _ = _candidate(name, model_uri, "k2")
    registry.apply_gate(name, v2, _decide(0.5))
    tags = registry.get_version(name, v2).tags
    assert tags["lifecycle"] == "rejected" and "threshold" in tags["rejected.reason"]
    assert registry.alias_version(name, "staging") == v1  # a rejected candidate never moves staging


def _approve(name, v, user="reviewer"):
    registry.record_decision(name, v, True, user, registry.now_iso(), "ok")


def test_promote_archives_previous_and_is_idempotent(name, model_uri):
    v1, _ = _candidate(name, model_uri, "a")
    registry.apply_gate(name, v1, _decide(0.05))
    with pytest.raises(registry.RegistryError, match="no recorded approval"):
        registry.promote(name, v1, by="x")
    _approve(name, v1)
    assert registry.promote(name, v1, by="reviewer") is None
    assert registry.alias_version(name, "production") == v1
    assert registry.alias_version(name, "staging") is None
    v2, _ = _candidate(name, model_uri, "b")
    registry.apply_gate(name, v2, _decide(0.04, v1, 0.05))
    _approve(name, v2)
    assert registry.promote(name, v2, by="reviewer") == v1
    assert registry.promote(name, v2, by="reviewer") == v1  # retry after a crash: same answer, no new state
    t1, t2 = registry.get_version(name, v1).tags, registry.get_version(name, v2).tags
    assert t1["lifecycle"] == "archived" and t1["archived.replaced_by"] == v2
    assert t2["lifecycle"] == "production" and t2["promoted.replaced"] == v1
    assert [v for v, a in registry.aliases_by_version(name).items() if "production" in a] == [v2]


def test_rejection_unstages_and_cannot_be_promoted_or_rewritten(name, model_uri):
    v1, _ = _candidate(name, model_uri, "a")
    registry.apply_gate(name, v1, _decide(0.05))
    registry.record_decision(name, v1, False, "reviewer", "2025-01-01T00:00:00+00:00", "not convinced")
    assert registry.alias_version(name, "staging") is None
    tags = registry.get_version(name, v1).tags
    assert tags["lifecycle"] == "rejected" and tags["approval.by"] == "reviewer" and tags["approval.comment"] == "not convinced"
    registry.record_decision(name, v1, True, "someone-else", registry.now_iso(), "override")  # a re-run cannot rewrite
    assert registry.get_version(name, v1).tags["approval.by"] == "reviewer"
    with pytest.raises(registry.RegistryError, match="rejected"):
        registry.promote(name, v1, by="x")
    assert registry.alias_version(name, "production") is None


def test_timeout_counts_as_rejection(name, model_uri):
    v1, _ = _candidate(name, model_uri, "a")
    registry.apply_gate(name, v1, _decide(0.05))
    registry.record_decision(name, v1, False, None, registry.now_iso(), "", timed_out=True)
    tags = registry.get_version(name, v1).tags
    assert tags["approval.decision"] == "timed_out" and tags["lifecycle"] == "rejected"
    assert tags["rejected.reason"] == "approval timed out"


def test_rollback_restores_replaced_version(name, model_uri):
    with pytest.raises(registry.RegistryError, match="no production version"):
        registry.rollback(name, by="ops")
    v1, _ = _candidate(name, model_uri, "a")
    registry.apply_gate(name, v1, _decide(0.05))
    _approve(name, v1)
    registry.promote(name, v1, by="r")
    with pytest.raises(registry.RegistryError, match="did not replace"):
        registry.rollback(name, by="ops")
    v2, _ = _candidate(name, model_uri, "b")
    registry.apply_gate(name, v2, _decide(0.04, v1, 0.05))
    _approve(name, v2)
    registry.promote(name, v2, by="r")
    assert registry.rollback(name, by="ops", reason="bad live metrics") == (v2, v1)
    assert registry.alias_version(name, "production") == v1
    t2 = registry.get_version(name, v2).tags
    assert t2["lifecycle"] == "archived" and t2["rollback.reason"] == "bad live metrics" and t2["archived.replaced_by"] == v1


def test_a_run_that_failed_for_good_leaves_no_bare_candidate(name, model_uri):
    v1, _ = _candidate(name, model_uri, "retrain_weekly/a")  # its run failed before the gate
    v2, _ = _candidate(name, model_uri, "retrain_weekly/b")  # gated and staged, then the run failed later
    registry.apply_gate(name, v2, _decide(0.05))
    assert registry.abandon_run_key(name, "retrain_weekly/a", "run x failed (train_xgboost)") == [v1]
    assert registry.abandon_run_key(name, "retrain_weekly/b", "run y failed (promote)") == []
    t1, t2 = registry.get_version(name, v1).tags, registry.get_version(name, v2).tags
    assert t1["lifecycle"] == "rejected" and t1["rejected.reason"] == "abandoned: run x failed (train_xgboost)"
    assert t2["lifecycle"] == "staging" and registry.alias_version(name, "staging") == v2
    assert registry.abandon_run_key(name, "retrain_weekly/a", "again") == []  # idempotent


def test_fluent_does_not_pin_the_registry_for_the_next_task(monkeypatch):
    """mlflow.set_registry_uri exports MLFLOW_REGISTRY_URI; a later task with another connection must not inherit it."""
    from modelops import settings

    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://server-a:5000")
    registry.fluent()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://server-b:5000")  # the next task's mlflow_default connection
    assert settings.registry_uri() == "http://server-b:5000"
    assert registry.client()._registry_uri == "http://server-b:5000"
