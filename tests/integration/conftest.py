"""Tier 4: real services on loopback: PostgreSQL, an S3-compatible server (moto), an `mlflow server`.

The fixtures start what a user's stack has, point the package at it through the
same environment variables the Airflow hooks export, and stop everything even
when a test fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import STATE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 120, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}: {log.read_text()[-3000:] if log else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback
                if r.status < 500:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout}s: {log.read_text()[-3000:] if log else ''}")


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3-compatible server on loopback, with the buckets a deployment has."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL_S3": endpoint, "MLFLOW_S3_ENDPOINT_URL": endpoint}
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1")
    for bucket in ("mlflow", "modelops"):
        s3.create_bucket(Bucket=bucket)
    yield {"endpoint": endpoint, "env": env, "client": s3}
    server.stop()


@pytest.fixture(scope="session")
def mlflow_server(pg_databases, s3_server):
    """A real `mlflow server`: PostgreSQL backend store, S3 artifacts, --serve-artifacts."""
    backend = pg_databases("mlflow")
    port = free_port()
    log = STATE / f"mlflow-server-{port}.log"
    env = {**os.environ, **s3_server["env"]}
    cmd = [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", backend, "--artifacts-destination", "s3://mlflow/artifacts", "--serve-artifacts",
           "--workers", "1"]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=180, proc=proc, log=log)
        yield {"uri": f"http://127.0.0.1:{port}", "backend": backend, "log": log}
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


@pytest.fixture
def real_stack(mlflow_server, s3_server, pg_databases, monkeypatch, tmp_path):
    """The package pointed at the real services, as the Airflow hooks would configure it."""
    db = pg_databases("modelops")
    run = uuid.uuid4().hex[:8]
    env = {**s3_server["env"], "MLFLOW_TRACKING_URI": mlflow_server["uri"], "MODELOPS_DB_URL": db,
           "MODELOPS_WORK_ROOT": f"s3://modelops/{run}/work", "MODELOPS_DATA_ROOT": f"s3://modelops/{run}/data"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("MODELOPS_ARTIFACT_ROOT", raising=False)
    import fsspec

    fsspec.config.conf.pop("s3", None)
    fsspec.filesystem("s3").clear_instance_cache() if hasattr(fsspec.filesystem("s3"), "clear_instance_cache") else None
    return {**env, "run": run, "s3": s3_server["client"]}
