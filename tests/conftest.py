"""Shared fixtures. The environment is set before anything imports Airflow or MLflow.

Every session gets its own state directory (Airflow SQLite DB, MLflow SQLite store,
artifacts, data, work files), so tests never touch `.demo/` and leave nothing behind.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(tempfile.mkdtemp(prefix="modelops-tests-"))

_env = {
    "MODELOPS_HOME": str(STATE),
    "MODELOPS_DATA_ROOT": str(STATE / "data"),
    "MODELOPS_CACHE_DIR": str(STATE / "cache"),
    "AIRFLOW_HOME": str(STATE / "airflow"),
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{STATE / 'airflow' / 'airflow.db'}",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,reviewer:user,viewer:viewer,intruder:admin",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(STATE / "airflow" / "passwords.json"),
    "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(STATE / "airflow" / "logs"),
    "AIRFLOW__API__BASE_URL": "http://testserver",
    "MLFLOW_TRACKING_URI": f"sqlite:///{STATE / 'mlflow.db'}",
    "MODELOPS_RETRY_DELAY_SECONDS": "1",
    "GIT_PYTHON_REFRESH": "quiet",
}
for _k, _v in _env.items():
    os.environ[_k] = _v
for _k in ("MLFLOW_REGISTRY_URI", "MODELOPS_DB_URL", "MODELOPS_WORK_ROOT", "MODELOPS_CONFIG", "MODELOPS_ARTIFACT_ROOT"):
    os.environ.pop(_k, None)
(STATE / "airflow").mkdir(parents=True, exist_ok=True)
for _p in (ROOT / "include", ROOT / "plugins"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    cluster = _pg_state.get("cluster")
    if cluster is not None:
        cluster.destroy()  # type: ignore[attr-defined]
    if not os.environ.get("MODELOPS_KEEP_TEST_STATE"):
        shutil.rmtree(STATE, ignore_errors=True)


# What the Airflow hooks export into the process for the core (plugins/modelops_airflow/hooks.py).
# A real task runs in its own process; dag.test() runs tasks in this one, so put them back after
# every test or one test's connections would point the next test at its database or server.
_HOOK_EXPORTS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                 "MODELOPS_DB_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_S3_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_S3", "FSSPEC_S3_ENDPOINT_URL")


@pytest.fixture(autouse=True)
def _restore_hook_exports():
    before = {k: os.environ.get(k) for k in _HOOK_EXPORTS}
    yield
    for k, v in before.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def state_dir() -> Path:
    return STATE


# -- PostgreSQL ----------------------------------------------------------------------

# The server tests use: $MODELOPS_TEST_PG, else the local one on 127.0.0.1:5432, else a
# throwaway cluster started from the installed server binaries (tests/pgcluster.py).
PG_DSN = os.environ.get("MODELOPS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
_pg_state: dict[str, object] = {}


def pg_dsn() -> str:
    """Admin DSN of a PostgreSQL server for this session; starts a throwaway one when needed."""
    if "dsn" in _pg_state:
        return str(_pg_state["dsn"])
    import psycopg2

    try:
        psycopg2.connect(PG_DSN, connect_timeout=5).close()
        _pg_state["dsn"] = PG_DSN
    except psycopg2.OperationalError as exc:
        if "MODELOPS_TEST_PG" in os.environ:
            raise RuntimeError(f"MODELOPS_TEST_PG={PG_DSN} is unreachable: {exc}") from exc
        from tests.pgcluster import PgCluster

        cluster = PgCluster().start()  # its own temp dir: STATE is private to root
        _pg_state.update(dsn=cluster.dsn, cluster=cluster)
        print(f"\nno PostgreSQL on {PG_DSN}; started a throwaway cluster on port {cluster.port}")
    return str(_pg_state["dsn"])


def _pg_admin():
    import psycopg2

    conn = psycopg2.connect(pg_dsn(), connect_timeout=5)
    conn.autocommit = True
    return conn


def _pg_unavailable(exc: BaseException):
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI but neither {PG_DSN} nor a throwaway cluster is available: {exc}")
    pytest.skip(f"PostgreSQL unavailable: {exc}")


@pytest.fixture(scope="session")
def pg_databases():
    """Factory of named throwaway databases (SQLAlchemy psycopg2 URLs); all dropped at the end."""
    try:
        admin = _pg_admin()
    except Exception as exc:  # noqa: BLE001
        _pg_unavailable(exc)
    made: list[str] = []
    base = pg_dsn().rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://", 1)

    def make(prefix: str = "modelops_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"{base}/{name}"

    yield make
    with admin.cursor() as cur:
        for name in made:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def pg_url(pg_databases):
    """A throwaway database on the session's PostgreSQL; never skipped in CI."""
    return pg_databases("modelops_test")


# -- configs and data ----------------------------------------------------------------

def write_config(tmp: Path, base: str = "store_sales.yaml", **overrides) -> Path:
    """A copy of a shipped config with nested overrides (dotted keys), written to ``tmp``."""
    import yaml

    raw = yaml.safe_load((ROOT / "include" / "config" / base).read_text())
    for dotted, value in overrides.items():
        node = raw
        parts = dotted.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / f"{raw['model_name']}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


FAST_HP = {
    "xgboost": {"n_estimators": 150, "max_depth": 6, "learning_rate": 0.15, "subsample": 0.9, "colsample_bytree": 0.9, "tree_method": "hist"},
    "lightgbm": {"n_estimators": 200, "num_leaves": 31, "learning_rate": 0.12, "subsample": 0.9, "subsample_freq": 1, "colsample_bytree": 0.9},
}


@pytest.fixture(scope="session")
def fast_hp_file() -> Path:
    import json

    p = STATE / "fast_hyperparameters.json"
    p.write_text(json.dumps(FAST_HP))
    return p
