"""Tier 3: whole DAG runs with ``dag.test()`` on the embedded default.

Reviewers answer through Airflow's real REST API app (the same FastAPI app the
api-server serves, driven in-process), as authenticated users; the timeout is
resolved by the scheduler's own timeout sweep.
"""

from __future__ import annotations

import os
import threading
import uuid
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import STATE, write_config

DATA_START, DATA_END, DRIFT_START = date(2024, 1, 1), date(2026, 1, 1), date(2025, 7, 1)
N_STORES = 40


@pytest.fixture(scope="session")
def airflow_db():
    from airflow.utils import db

    db.resetdb()
    return True


@pytest.fixture(scope="session")
def api_app(airflow_db):
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    return TestClient(create_app(apps="core"), base_url="http://testserver")


def api_as(api_app, user: str):
    import json

    from modelops.governance.approvals import AirflowApi

    passwords = json.loads(Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).read_text())
    return AirflowApi.login(base_url="http://testserver", user=user, password=passwords[user], session=api_app)


@pytest.fixture(scope="session")
def store_data():
    """Store sales for all run tests: one dataset, drift injected from 2025-07-01."""
    from modelops.config import load_config
    from modelops.data.sample_data import generate_store_sales, write_dataset

    cfg_path = write_config(STATE / "base-config")
    cfg = load_config(cfg_path)
    df = generate_store_sales(DATA_START, DATA_END, n_stores=N_STORES, seed=3, drift_start=DRIFT_START)
    write_dataset(df, cfg)
    return cfg.data.path


@pytest.fixture
def problem(tmp_path, store_data, fast_hp_file, monkeypatch, airflow_db):
    """A fresh model name per test, so registry state never leaks between tests."""

    def make(**overrides: Any):
        name = overrides.pop("model_name", f"sales_{uuid.uuid4().hex[:8]}")
        path = write_config(tmp_path, model_name=name, **{"mlflow.experiment": name, "training.window_days": 180,
                                                          "training.hyperparameters_file": str(fast_hp_file), **overrides})
        monkeypatch.setenv("MODELOPS_CONFIG", str(path))
        from modelops.config import load_config

        return load_config(path)

    return make


def load_dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


def utc(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=timezone.utc)


def states(dr) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}


class Reviewer(threading.Thread):
    """Waits for the approval to appear in the REST API, then answers it as ``user``.

    ``attempts`` lets a test try a sequence of users (e.g. an intruder first, then
    a real approver) and records each outcome.
    """

    def __init__(self, api_app, model_name: str, attempts: list[tuple[str, bool, str]]) -> None:
        super().__init__(daemon=True)
        self.api_app, self.model_name, self.attempts = api_app, model_name, attempts
        self.outcomes: list[tuple[str, str]] = []
        self.error: BaseException | None = None
        # Set by the test when dag.test() returns: waiting stops on that, not on a clock, so a
        # slow machine only makes the test slower (pytest-timeout bounds the whole test).
        self.run_done = threading.Event()

    def run(self) -> None:
        from modelops.governance.approvals import ApprovalError, find_waiting

        try:
            for user, approve, comment in self.attempts:
                api = api_as(self.api_app, user)
                while True:
                    try:
                        item = find_waiting(api, self.model_name)
                        break
                    except ApprovalError:
                        if self.run_done.wait(0.5):
                            raise ApprovalError(f"the run ended before {user} found an approval to answer") from None
                ti = item["task_instance"]
                try:
                    api.respond(ti["dag_id"], ti["dag_run_id"], approve, comment)
                    self.outcomes.append((user, "ok"))
                except ApprovalError as exc:
                    self.outcomes.append((user, str(exc)))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the test
            self.error = exc


class TimeoutSweeper(threading.Thread):
    """Runs the scheduler's awaiting-input timeout sweep until the approval resolves."""

    def __init__(self, model_name: str, api_app) -> None:
        super().__init__(daemon=True)
        self.model_name, self.api_app = model_name, api_app
        self.swept = False
        self.error: BaseException | None = None
        self.run_done = threading.Event()  # as in Reviewer: set when dag.test() returns

    def run(self) -> None:
        from airflow.jobs.job import Job
        from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

        from modelops.governance.approvals import ApprovalError, find_waiting

        try:
            api = api_as(self.api_app, "admin")
            while True:
                try:
                    find_waiting(api, self.model_name)
                    break
                except ApprovalError:
                    if self.run_done.wait(0.5):
                        raise ApprovalError("the run ended before an approval was waiting") from None
            runner = SchedulerJobRunner(job=Job())
            while not self.run_done.wait(1.5):
                runner.check_awaiting_input_timeouts()
                try:
                    find_waiting(api, self.model_name)
                except ApprovalError:
                    self.swept = True
                    return
        except BaseException as exc:  # noqa: BLE001
            self.error = exc
