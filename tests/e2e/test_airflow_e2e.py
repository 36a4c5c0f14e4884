"""Tier 5: a real Airflow (scheduler, dag-processor, triggerer, api-server; LocalExecutor on
PostgreSQL) on loopback, driven as a user's script would: the official
``apache-airflow-client`` to trigger and watch, ``python -m modelops approve`` to answer
the approval. MLflow is a real server (PostgreSQL + S3), data lives on S3.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, write_config
from tests.integration.conftest import free_port, wait_http

pytestmark = pytest.mark.e2e

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


class Airflow:
    """The processes of one Airflow deployment, stopped in ``close`` whatever happened."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env, self.procs = home, env, []
        self.port = int(env["AIRFLOW__API__PORT"])
        self.url = f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> str:
        out = subprocess.run([AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout

    def start(self, *components: str) -> None:
        for comp in components:
            log = self.home / f"{comp}.log"
            fh = log.open("w")
            cmd = [AIRFLOW, comp] + (["--port", str(self.port)] if comp == "api-server" else [])
            self.procs.append((comp, subprocess.Popen(cmd, env=self.env, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT,
                                                      start_new_session=True), log))
        wait_http(f"{self.url}/api/v2/monitor/health", timeout=180, log=self.home / "api-server.log")

    def logs(self) -> str:
        return "\n".join(f"--- {c} ---\n{log.read_text()[-2500:]}" for c, _, log in self.procs)

    def close(self) -> None:
        for _, p, _ in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for _, p, _ in self.procs:
            try:
                p.wait(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)

    def password(self, user: str) -> str:
        return json.loads(Path(self.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).read_text())[user]

    def client(self, user: str = "admin"):
        import airflow_client.client as ac

        token = requests.post(f"{self.url}/auth/token", json={"username": user, "password": self.password(user)}, timeout=30).json()
        cfg = ac.Configuration(host=self.url, access_token=token["access_token"])
        return ac.ApiClient(cfg)


@pytest.fixture
def airflow(real_stack, pg_databases, tmp_path, fast_hp_file):
    from modelops.config import load_config
    from modelops.data.sample_data import generate_store_sales, write_dataset

    home = tmp_path / "airflow"
    home.mkdir()
    name = f"e2e_{uuid.uuid4().hex[:6]}"
    cfg_path = write_config(tmp_path, model_name=name, **{"mlflow.experiment": name, "training.window_days": 150,
                                                          "training.hyperparameters_file": str(fast_hp_file)})
    env = {**os.environ, **{k: v for k, v in real_stack.items() if k.isupper()},
           "AIRFLOW_HOME": str(home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg_databases("airflow"),
           "AIRFLOW__CORE__EXECUTOR": "LocalExecutor", "AIRFLOW__CORE__PARALLELISM": "4",
           "AIRFLOW__API__PORT": str(free_port()), "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
           "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5", "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
           "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"), "MODELOPS_CONFIG": str(cfg_path),
           "PYTHONPATH": f"{ROOT / 'include'}:{ROOT / 'plugins'}"}
    env["AIRFLOW__API__BASE_URL"] = f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}"
    env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"{env['AIRFLOW__API__BASE_URL']}/execution/"
    env["MODELOPS_AIRFLOW_API_URL"] = env["AIRFLOW__API__BASE_URL"]
    os.environ["MODELOPS_CONFIG"] = str(cfg_path)
    cfg = load_config(cfg_path)
    write_dataset(generate_store_sales(date(2024, 10, 1), date(2025, 12, 1), n_stores=30, seed=8, drift_start=date(2025, 7, 1)), cfg)

    af = Airflow(home, env)
    try:
        af.cli("db", "migrate")
        af.cli("pools", "set", "modelops_training", "2", "training")
        af.start("api-server", "scheduler", "dag-processor", "triggerer")
        yield af, cfg
    except BaseException:
        print(af.logs())
        raise
    finally:
        af.close()
        os.environ.pop("MODELOPS_CONFIG", None)


def _wait(pred, what: str, af: Airflow, timeout: float = 900, every: float = 3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}\n{af.logs()}")


def _parked(af: Airflow, run_id: str) -> bool:
    """The scheduler has taken in the approval task's parking (its executor event, state awaiting_input).

    Airflow 3.3.2 races otherwise: an answer that resumes the task before the scheduler has read
    the executor event of the parked try makes the scheduler see "executor: success, TI: queued" and
    mark the resumed task FAILED (seen once in CI: answered 0.8 s after parking). A reviewer
    is never that fast; this waits for the scheduler instead of for a fixed time.
    """
    needle = f"TaskInstance Finished: dag_id=retrain_weekly, task_id=approve_production, run_id={run_id},"
    return any(needle in line and "state=awaiting_input" in line
               for line in (af.home / "scheduler.log").read_text(errors="replace").splitlines())


def _modelops(af: Airflow, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelops", *args], env=af.env, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_retrain_approve_promote_and_drift_schedules_retrain(airflow):
    import airflow_client.client as ac

    from modelops.governance import registry

    af, cfg = airflow
    api = af.client("admin")
    dags = ac.DAGApi(api)
    _wait(lambda: {d.dag_id for d in dags.get_dags().dags} >= {"retrain_weekly", "drift_daily"}, "DAGs parsed", af)
    for dag_id in ("retrain_weekly", "drift_daily"):
        dags.patch_dag(dag_id, ac.DAGPatchBody(is_paused=False))
    runs = ac.DagRunApi(api)

    def trigger(dag_id: str, end: str, conf: dict) -> str:
        end_dt = datetime.fromisoformat(end).replace(tzinfo=timezone.utc)
        body = ac.TriggerDAGRunPostBody(dag_run_id=f"e2e__{dag_id}__{end}__{uuid.uuid4().hex[:4]}", logical_date=end_dt,
                                        data_interval_start=end_dt - timedelta(days=1) if dag_id == "drift_daily" else end_dt,
                                        data_interval_end=end_dt, conf=conf)
        return runs.trigger_dag_run(dag_id, body).dag_run_id

    def state(dag_id: str, run_id: str) -> str:
        return str(runs.get_dag_run(dag_id, run_id).state.value)

    def approve_as(user: str, approve: bool, comment: str) -> subprocess.CompletedProcess:
        return _modelops(af, "approve" if approve else "reject", "--user", user, "--password", af.password(user), "--comment", comment)

    # run 1: trigger through the REST API, a non-approver is refused, the reviewer approves
    run1 = trigger("retrain_weekly", "2025-06-01", {"training_end": "2025-06-01", "note": "e2e"})
    # a second, manual trigger while run 1 is in flight (a backfill or a UI click during the scheduled
    # run): max_active_runs=1 keeps it queued until run 1 is done. Three trees per booster make it a
    # model the gate rejects, so it never asks for approval.
    weak = {"xgboost": {"n_estimators": 3}, "lightgbm": {"n_estimators": 3}}
    run_b = trigger("retrain_weekly", "2025-06-02", {"training_end": "2025-06-01", "note": "manual during run 1",
                                                      "hyperparameter_overrides": weak})
    def viewer_refused():
        out = approve_as("viewer", True, "me too")  # "no approval is waiting" until the run gets there
        return out if "HTTP 403" in out.stderr else None

    refused = _wait(viewer_refused, "the approval to wait (and refuse a viewer)", af)
    assert refused.returncode != 0
    assert state("retrain_weekly", run1) == "running" and state("retrain_weekly", run_b) == "queued"
    _wait(lambda: _parked(af, run1), "the scheduler to take in the parked approval", af)
    out = approve_as("reviewer", True, "e2e approve")
    assert out.returncode == 0, out.stderr
    _wait(lambda: state("retrain_weekly", run1) in ("success", "failed"), "run 1 to finish", af)
    assert state("retrain_weekly", run1) == "success", af.logs()
    v1 = registry.alias_version(cfg.model_name, "production")
    assert v1 is not None and registry.get_version(cfg.model_name, v1).tags["approval.by"] == "reviewer"
    # only now does the queued run start; the gate rejects its weak model and production stays v1
    _wait(lambda: state("retrain_weekly", run_b) in ("success", "failed"), "the queued manual run", af)
    assert state("retrain_weekly", run_b) == "success", af.logs()
    first_b = min(r.start_date for r in ac.TaskInstanceApi(api).get_task_instances("retrain_weekly", run_b).task_instances
                  if r.start_date)
    assert first_b >= runs.get_dag_run("retrain_weekly", run1).end_date  # serialized, not overlapping
    assert registry.alias_version(cfg.model_name, "production") == v1
    weak = registry.versions(cfg.model_name)[-1]
    assert weak.tags["lifecycle"] == "rejected"
    # evaluate scored production v1 on the same test window and kept its figures with the candidate's run
    compared = registry.client().get_run(weak.run_id).data
    assert compared.tags["modelops.compared_with_production_version"] == v1
    assert f"production_test_{cfg.evaluation.metric}" in compared.metrics

    # drift on a drifted day: the Asset event makes the scheduler start retrain_weekly by itself
    drift_run = trigger("drift_daily", "2025-11-20", {})
    _wait(lambda: state("drift_daily", drift_run) in ("success", "failed"), "the drift run", af)
    assert state("drift_daily", drift_run) == "success", af.logs()

    def asset_run():
        for r in runs.get_dag_runs("retrain_weekly").dag_runs:
            if str(r.run_type.value) == "asset_triggered":
                return r
        return None

    triggered = _wait(asset_run, "an asset-triggered retrain_weekly run", af)
    # it trains on the drift window and asks again; this time the reviewer rejects
    _wait(lambda: _parked(af, triggered.dag_run_id), "the scheduler to take in the second parked approval", af)
    _wait(lambda: approve_as("reviewer", False, "not yet").returncode == 0, "the second approval", af, timeout=900)
    _wait(lambda: state("retrain_weekly", triggered.dag_run_id) in ("success", "failed"), "the asset-triggered run", af)
    assert state("retrain_weekly", triggered.dag_run_id) == "success"
    assert registry.alias_version(cfg.model_name, "production") == v1  # rejection leaves production untouched
    versions = registry.versions(cfg.model_name)
    assert len(versions) == 3 and versions[-1].tags["lifecycle"] == "rejected"
    assert versions[-1].tags["modelops.training_window"].endswith("2025-11-20)")
