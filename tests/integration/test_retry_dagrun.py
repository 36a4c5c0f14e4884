"""A whole retrain_weekly run against a real `mlflow server` that fails mid-run; Airflow's own retries recover.

The proxy answers 503 *after* the server committed (the worst case) once during
registration and once during the production alias move. MLflow's client does not retry
here, so each fault fails the Airflow task; the task is retried (exponential backoff,
1 s base in tests) and the run completes with exactly one version, in production, with
no staging alias left and the audit trail in place.
"""

from __future__ import annotations

import pytest

from modelops.governance import registry
from tests.integration.conftest import free_port
from tests.integration.faultproxy import FaultProxy
from tests.runs.conftest import airflow_db, api_app, problem, states, store_data  # noqa: F401 - fixtures
from tests.runs.test_retrain_weekly import V1_DAY, run_retrain

pytestmark = [pytest.mark.integration, pytest.mark.dagrun]


def test_retrain_run_survives_5xx_during_registration_and_promotion(mlflow_server, s3_server, api_app, problem,  # noqa: F811
                                                                    monkeypatch):
    proxy = FaultProxy(mlflow_server["uri"], free_port()).start()
    try:
        for k, v in s3_server["env"].items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", proxy.url)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        monkeypatch.delenv("MODELOPS_ARTIFACT_ROOT", raising=False)
        cfg = problem()
        proxy.add("POST", "/model-versions/create", "fail_after", times=1)
        proxy.add("POST", "/registered-models/alias", "fail_after", times=1, body='"alias": "production"')

        dr, reviewer = run_retrain(api_app, cfg, V1_DAY, [("reviewer", True, "fine after the outage")])
        st = states(dr)
        assert str(dr.state) == "success", st
        assert reviewer.outcomes == [("reviewer", "ok")]
        assert all(r.fired == 1 for r in proxy.rules), proxy.rules  # both faults were injected
        tries = {ti.task_id: ti.try_number for ti in dr.get_task_instances()}
        assert tries["register_candidate"] == 2 and tries["promote"] == 2, tries  # failed once, retried by Airflow

        (v,) = registry.versions(cfg.model_name)  # exactly one version despite the committed-then-503 create
        assert registry.alias_version(cfg.model_name, "production") == str(v.version)
        assert registry.alias_version(cfg.model_name, "staging") is None
        t = v.tags
        assert t["lifecycle"] == "production" and t["gate.passed"] == "true" and t["smoke_test.passed"] == "true"
        assert t["approval.decision"] == "approved" and t["approval.by"] == "reviewer"
    finally:
        proxy.stop()
