"""Secrets from Airflow connections never reach task logs.

drift_daily runs with its database and object-store credentials coming only from
Airflow connections (``AIRFLOW_CONN_*``, as a secrets backend would provide them), one of
them holding a password. The run must really use them (the report lands in that
PostgreSQL database) and no log line, console output or log file may contain the secrets.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import date
from pathlib import Path

import pytest

from modelops.monitoring import drift_store
from tests.conftest import write_config
from tests.runs.conftest import load_dag, states, utc

pytestmark = [pytest.mark.dagrun, pytest.mark.postgres]


def test_connection_secrets_never_appear_in_task_logs(airflow_db, pg_url, tmp_path, monkeypatch, capfd, caplog):
    from modelops.config import load_config
    from modelops.data.sample_data import generate_store_sales, write_dataset

    db_password = f"pg-S3cr3t-{uuid.uuid4().hex}"
    aws_secret = f"aws-S3cr3t-{uuid.uuid4().hex}"
    url = pg_url.replace("postgresql+psycopg2://postgres@", f"postgresql://postgres:{db_password}@", 1)
    assert db_password in url  # trust auth on the test server accepts any password: the connection really works
    monkeypatch.setenv("AIRFLOW_CONN_MODELOPS_DB", url)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "login": "AKIAMODELOPSTEST",
                                                               "password": aws_secret}))
    for k in ("MODELOPS_DB_URL", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(k, raising=False)

    name = f"secrets_{uuid.uuid4().hex[:8]}"
    cfg_path = write_config(tmp_path, model_name=name, **{"mlflow.experiment": name, "data.path": str(tmp_path / "data"),
                                                          "drift.reference": "window", "drift.reference_window_days": 30})
    monkeypatch.setenv("MODELOPS_CONFIG", str(cfg_path))
    cfg = load_config(cfg_path)
    write_dataset(generate_store_sales(date(2025, 4, 1), date(2025, 5, 12), n_stores=25, seed=2), cfg)

    dr = load_dag("drift_daily").test(logical_date=utc("2025-05-11"))
    st = states(dr)
    assert st["validate_current"] == "success" and st["detect_drift"] == "success", st

    # the secrets were used: the report is in the connection's database (with the password in its URL)
    rows = drift_store.load_reports(drift_store.get_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1)), name)
    assert len(rows) == len(cfg.drift_features)
    assert os.environ.get("AWS_SECRET_ACCESS_KEY") == aws_secret  # the hook exported it for boto3/s3fs

    out, err = capfd.readouterr()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    log_dir = Path(os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
    files = {str(p): p.read_text(errors="replace") for p in log_dir.rglob("*") if p.is_file()}
    everything = "\n".join([out, err, logged, *files.values()])
    assert "modelops settings from connections" in everything, "not looking at the task logs"
    assert "detect_drift" in everything
    for secret in (db_password, aws_secret):
        assert secret not in everything, [k for k, v in {"stdout": out, "stderr": err, "records": logged, **files}.items()
                                          if secret in v]
