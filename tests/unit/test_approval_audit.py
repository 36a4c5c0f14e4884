"""The approval gate's own checks, on the real operator and a real MLflow store.

Airflow already refuses (HTTP 403) anyone the HITL task is not assigned to; this is the
second line: a response event from someone not in ``approval.approvers`` (e.g. assigned
users edited in the DB, a misconfigured auth manager) is refused, logged and recorded, and
the audit trail on the model version is written once and never rewritten.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from modelops.governance import registry
from tests.conftest import write_config
from tests.registry_helpers import log_constant_model, staged_version


class _TI:
    """Only what the operator reads from the task instance: the registered version's XCom."""

    def __init__(self, version: str) -> None:
        self.version = version

    def xcom_pull(self, task_ids: str):
        return {"version": self.version} if task_ids == "register_candidate" else {}


@pytest.fixture
def staged(tmp_path, monkeypatch):
    from modelops.config import load_config

    name = f"audit_{uuid.uuid4().hex[:8]}"
    path = write_config(tmp_path, model_name=name, **{"mlflow.experiment": name})
    monkeypatch.setenv("MODELOPS_CONFIG", str(path))
    return load_config(path), staged_version(name, log_constant_model(name), "k/1")


def _event(user: str, approve: bool, comment: str, at: datetime):
    return {"chosen_options": ["Approve" if approve else "Reject"], "params_input": {"comment": comment},
            "responded_by_user": {"id": user, "name": user}, "responded_at": at, "timedout": False}


def test_non_approver_is_refused_logged_and_the_audit_trail_is_write_once(staged, capfd):
    from modelops_airflow.approval import ModelApprovalOperator, NotAnApprover

    cfg, v = staged
    op = ModelApprovalOperator(task_id="approve_production", approvers=cfg.approval.approvers, timeout=timedelta(hours=1))
    ctx = {"ti": _TI(v)}
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)

    def task_log() -> str:  # the operator logs through Airflow's structlog to the task's output
        out, err = capfd.readouterr()
        return out + err

    for i in range(2):  # refused twice: both refusals are kept
        with pytest.raises(NotAnApprover, match="'intruder' is not an approver"):
            op.execute_complete(ctx, _event("intruder", True, "let me in", t0 + timedelta(minutes=i)))
    tags = registry.get_version(cfg.model_name, v).tags
    assert "approval.decision" not in tags and tags["lifecycle"] == "staging"
    assert registry.alias_version(cfg.model_name, "staging") == v
    refused = json.loads(tags["approval.refused"])
    assert [r["user"] for r in refused] == ["intruder", "intruder"] and refused[0]["at"] != refused[1]["at"]
    assert task_log().count("response from 'intruder' refused: not an approver") == 2

    op.execute_complete(ctx, _event("reviewer", True, "metrics look right", t0 + timedelta(hours=1)))
    tags = registry.get_version(cfg.model_name, v).tags
    audit = {k: tags[k] for k in ("approval.decision", "approval.by", "approval.at", "approval.comment")}
    assert audit == {"approval.decision": "approved", "approval.by": "reviewer",
                     "approval.at": (t0 + timedelta(hours=1)).isoformat(), "approval.comment": "metrics look right"}
    assert f"{cfg.model_name} v{v} APPROVED by reviewer" in task_log()

    # a later re-run / second response (even from a real approver) cannot rewrite who decided, when or why
    op.execute_complete(ctx, _event("admin", False, "changed my mind", t0 + timedelta(hours=2)))
    after = registry.get_version(cfg.model_name, v).tags
    assert {k: after[k] for k in audit} == audit and after["lifecycle"] == "staging"
    assert "already has a recorded decision (approved by reviewer" in task_log()
    assert json.loads(after["approval.refused"]) == refused
