"""The deployment files tell the truth: docker-compose, the Astro override and settings, the Dockerfiles.

No Docker engine runs here, so the compose files are checked by Debian's `docker-compose config`
(a real parser and validator of the compose format) and by reading them: every service a
`depends_on` names exists, health conditions have healthchecks, the images pin what the lock pins,
and every connection, pool and variable the DAGs use is declared, the same way, everywhere.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The Airflow components the Astro CLI's own compose project defines (Airflow 3).
ASTRO_SERVICES = {"postgres", "scheduler", "dag-processor", "triggerer", "api-server"}
_INTERP = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def _interpolate(value):
    """What compose does with ${VAR:-default} when VAR is unset (the local-dev defaults)."""
    if isinstance(value, str):
        return _INTERP.sub(lambda m: m.group(2) or "", value).replace("$$", "$")
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    return value


@pytest.fixture(scope="module")
def compose() -> dict:
    return _load("docker-compose.yaml")


@pytest.fixture(scope="module")
def settings() -> dict:
    return _load("airflow_settings.yaml")["airflow"]


def _lock_version(package: str) -> str:
    m = re.search(rf"^{re.escape(package)}==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M)
    assert m, f"{package} is not pinned in requirements.lock"
    return m.group(1)


# -- docker-compose.yaml ------------------------------------------------------------------------

def test_compose_has_the_whole_stack(compose):
    services = compose["services"]
    assert {"postgres", "redis", "airflow-init", "api-server", "scheduler", "dag-processor", "triggerer", "worker",
            "mlflow", "minio", "minio-init", "modelops-db-init", "model-server", "alerts-echo", "mailpit"} <= set(services)
    env = compose["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://") and "@redis:6379" in env["AIRFLOW__CELERY__BROKER_URL"]
    assert "@postgres:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://api-server:8080/execution/"
    assert services["worker"]["command"] == "celery worker"
    mounts = {v.split(":")[1] for v in compose["x-airflow-common"]["volumes"] if v.startswith("./")}
    assert mounts == {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include"}


def test_compose_mlflow_server_uses_postgres_and_minio(compose):
    services = compose["services"]
    cmd = " ".join(services["mlflow"]["command"])
    assert "--serve-artifacts" in cmd
    assert re.search(r"--backend-store-uri=postgresql\+psycopg2://\S+@postgres:5432/mlflow", cmd)
    bucket = re.search(r"--artifacts-destination=s3://([\w-]+)", cmd).group(1)
    init = " ".join(services["minio-init"]["command"])
    assert f"local/{bucket}" in init and "mc mb --ignore-existing" in init
    assert services["mlflow"]["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    # The databases MLflow and the package use are created before MLflow starts.
    assert "for db in mlflow modelops" in " ".join(services["modelops-db-init"]["command"])
    assert services["mlflow"]["depends_on"]["modelops-db-init"]["condition"] == "service_completed_successfully"
    # The data, work and tuned-hyperparameters roots live in the bucket minio-init creates.
    env = compose["x-modelops-env"]
    for key in ("MODELOPS_DATA_ROOT", "MODELOPS_WORK_ROOT", "MODELOPS_HYPERPARAMETERS_ROOT"):
        assert re.match(r"s3://([\w-]+)/", env[key]).group(1) in init


def test_compose_model_server_serves_the_production_alias_of_the_demo_model(compose):
    from modelops.config import load_config

    server = compose["services"]["model-server"]
    assert server["profiles"] == ["serving"]
    assert '"models:/$${MODELOPS_MODEL_NAME}@production"' in " ".join(server["command"])
    default_name = _interpolate(server["environment"]["MODELOPS_MODEL_NAME"])
    assert default_name == load_config(ROOT / "include" / "config" / "store_sales.yaml").model_name
    assert server["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_compose_dependencies_come_up_in_order(compose):
    services = compose["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on undefined service {dep}"
            cond = spec["condition"]
            if cond == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy, but {dep} has no healthcheck"
            if cond == "service_completed_successfully":
                assert services[dep].get("restart") in (None, "no"), f"{dep} is waited on to finish but restarts"
    for name in ("api-server", "scheduler", "dag-processor", "triggerer", "worker"):
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in services[name], name
    # Host ports are not shared by two services.
    host_ports = [p.split(":")[0] for s in services.values() for p in s.get("ports", [])]
    assert len(host_ports) == len(set(host_ports)), host_ports


def test_compose_builds_exist_and_pin_what_the_lock_pins(compose):
    for name, svc in compose["services"].items():
        if "build" in svc:
            assert (ROOT / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file(), name
    airflow = (ROOT / "docker" / "airflow.Dockerfile").read_text()
    assert f"FROM apache/airflow:{_lock_version('apache-airflow')}-python3.11" in airflow
    assert "pip install --no-cache-dir -r /requirements.lock" in airflow
    assert "ENV PYTHONPATH=/opt/airflow/include:/opt/airflow/plugins" in airflow
    mlflow = (ROOT / "docker" / "mlflow.Dockerfile").read_text()
    assert f"FROM ghcr.io/mlflow/mlflow:v{_lock_version('mlflow')}" in mlflow
    assert "psycopg2-binary|boto3" in mlflow and "requirements.lock" in mlflow
    # Astro: the project Dockerfile is on an Astro Runtime for the same Airflow minor and Python.
    astro = (ROOT / "Dockerfile").read_text()
    minor = ".".join(_lock_version("apache-airflow").split(".")[:2])
    assert re.search(rf"^FROM astrocrpublic\.azurecr\.io/runtime:{re.escape(minor)}-\d+-python-3\.11$", astro, re.M)
    assert "requirements.lock" in astro and "ENV PYTHONPATH=/usr/local/airflow/include" in astro
    assert (ROOT / "packages.txt").exists(), "Astro's ONBUILD copies packages.txt"


def test_the_airflow_init_job_prepares_everything_the_dags_need(compose, settings):
    init = " ".join(compose["services"]["airflow-init"]["command"])
    assert "airflow db migrate" in init and "python -m modelops db-migrate" in init
    for pool in settings["pools"]:
        assert f"airflow pools set {pool['pool_name']} {pool['pool_slot']} " in init
    assert "generate-data" in init and "--if-missing" in init


def _compose_cli() -> str:
    exe = shutil.which("docker-compose")
    if exe is None:
        if IN_CI:
            pytest.fail("Debian's docker-compose is not installed (make test installs it: make system-deps)")
        pytest.skip("docker-compose not installed (make system-deps)")
    return exe


def _normalized(config: dict) -> dict:
    """Compose config output with list order and scalar types that do not matter flattened out."""
    def norm(v):
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return sorted((norm(x) for x in v), key=lambda x: json.dumps(x, sort_keys=True, default=str))
        return str(v)
    return norm(config)


def _compose_config(*files: str) -> dict:
    args = [_compose_cli()] + [a for f in files for a in ("-f", f)] + ["config"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "MINIO_", "AIRFLOW_"))}
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def test_docker_compose_config_accepts_the_files():
    merged = _compose_config()  # what `docker compose up` reads: the file plus the Astro override
    alone = _compose_config("docker-compose.yaml")
    assert "minio" in alone["services"] and "mlflow" in alone["services"]
    # The Astro override repeats definitions of docker-compose.yaml; merged, it must change nothing.
    assert _normalized(merged) == _normalized(alone)


# -- Astro: docker-compose.override.yml + airflow_settings.yaml ---------------------------------

def test_astro_override_adds_mlflow_and_minio_and_repeats_compose_exactly(compose):
    override = _load("docker-compose.override.yml")
    services = override["services"]
    assert {"mlflow", "minio", "minio-init", "modelops-db-init", "alerts-echo", "mailpit"} <= set(services)
    for name, svc in services.items():
        if name in ASTRO_SERVICES:
            assert set(svc) == {"environment"}, f"only add settings to Astro's own {name}"
            main_env = compose["services"][name].get("environment") or compose["x-airflow-common"]["environment"]
            assert svc["environment"].items() <= main_env.items(), name
        else:
            assert svc == compose["services"][name], f"{name} differs between the override and docker-compose.yaml"
            for dep in svc.get("depends_on", {}):
                assert dep in services or dep in ASTRO_SERVICES, f"{name} depends on {dep}, which Astro does not run"


def _referenced_by_dags() -> tuple[set[str], set[str], set[str]]:
    """Connection ids, pools and variables that the DAGs and the plugin code name."""
    conns: set[str] = set()
    variables: set[str] = set()
    for path in list((ROOT / "dags").rglob("*.py")) + list((ROOT / "plugins").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id.endswith("_CONN_ID"):
                        conns.add(node.value.value)
            if isinstance(node, ast.keyword) and node.arg and node.arg.endswith("conn_id") \
                    and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                conns.add(node.value.value)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args \
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                owner = node.func.value
                if isinstance(owner, ast.Name) and owner.id == "Variable" and node.func.attr == "get":
                    variables.add(node.args[0].value)
                if node.func.attr == "get_connection":
                    conns.add(node.args[0].value)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    pools = {t.pool for d in bag.dags.values() for t in d.tasks if t.pool != "default_pool"}
    # Connections named in the shipped problem configs (alert channels).
    from modelops.config import load_config

    for path in (ROOT / "include" / "config").glob("*.yaml"):
        alerts = load_config(path).monitoring.alerts
        conns |= {alerts.webhook_conn_id, alerts.email_conn_id}
    return conns, pools, variables


def test_settings_declare_every_connection_pool_and_variable_the_dags_use(settings):
    conns, pools, variables = _referenced_by_dags()
    assert {"mlflow_default", "modelops_db", "aws_default"} <= conns  # the scan sees the hooks
    assert pools, "the training tasks run in a pool"
    declared_conns = {c["conn_id"] for c in settings["connections"]}
    declared_pools = {p["pool_name"] for p in settings["pools"]}
    declared_vars = {v["variable_name"] for v in settings.get("variables") or []}
    assert conns <= declared_conns, f"not in airflow_settings.yaml: {conns - declared_conns}"
    assert pools <= declared_pools, f"not in airflow_settings.yaml: {pools - declared_pools}"
    assert variables <= declared_vars, f"not in airflow_settings.yaml: {variables - declared_vars}"


def test_settings_connections_equal_the_compose_connections(compose, settings):
    from airflow.models.connection import Connection

    env = _interpolate(compose["x-modelops-env"])
    for decl in settings["connections"]:
        key = f"AIRFLOW_CONN_{decl['conn_id'].upper()}"
        assert key in env, f"docker-compose.yaml does not define {decl['conn_id']} ({key})"
        raw = env[key]
        conn = Connection.from_json(raw, conn_id=decl["conn_id"]) if raw.lstrip().startswith("{") \
            else Connection(conn_id=decl["conn_id"], uri=raw)
        assert conn.conn_type == decl["conn_type"], decl["conn_id"]
        assert (conn.host or None) == decl.get("conn_host"), decl["conn_id"]
        assert conn.port == decl.get("conn_port"), decl["conn_id"]
        assert (conn.schema or None) == decl.get("conn_schema"), decl["conn_id"]
        assert (conn.login or None) == decl.get("conn_login"), decl["conn_id"]
        assert (conn.password or None) == decl.get("conn_password"), decl["conn_id"]
        assert (conn.extra_dejson or {}) == (decl.get("conn_extra") or {}), decl["conn_id"]


# -- credentials --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["docker-compose.yaml", "docker-compose.override.yml", "airflow_settings.yaml"])
def test_every_credential_is_a_marked_local_dev_default(name):
    """The only secrets in the repository are local-dev defaults, and each says so where it stands."""
    secret = re.compile(r"(PASSWORD:-|conn_password: \S|JWT_SECRET:-|\"password\": \"[^\"]|:[^@/\s]+@postgres)")
    unmarked = [line.strip() for line in (ROOT / name).read_text().splitlines()
                if secret.search(line) and "local-dev" not in line and not line.lstrip().startswith("#")]
    assert not unmarked, f"{name}: credentials without a 'local-dev default' mark: {unmarked}"
