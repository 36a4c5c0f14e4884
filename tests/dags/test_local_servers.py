"""Local servers listen on loopback unless told otherwise: `make airflow-ui`, `make mlflow-ui` and the demo's api-server.

The Makefile recipes are run for real (through bash, with `scripts/airflow_env.sh`), with stand-ins for the
`airflow` and `mlflow` executables that print the arguments they were started with.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _recipe(target: str) -> str:
    """The shell line `make` runs for ``target`` (dry run), the venv's bin folder left as ``.venv/bin/``."""
    out = subprocess.run(["make", "-n", "--no-print-directory", target], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    lines = out.replace("\\\n", " ").splitlines()
    (line,) = [ln for ln in lines if "airflow_env.sh" in ln and ("api-server" in ln or "mlflow ui" in ln)]
    return line


@pytest.fixture
def fake_bin(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for exe in ("airflow", "mlflow"):
        p = bin_dir / exe
        p.write_text(f'#!/bin/sh\n[ "$1" = db ] && exit 0\necho "{exe} $*"\n')
        p.chmod(0o755)
    return bin_dir


def _run(line: str, fake_bin: Path, tmp_path: Path, **env: str) -> str:
    home = tmp_path / "home"
    full = {**{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__API__", "MLFLOW_UI_"))},
            "MODELOPS_HOME": str(home), "AIRFLOW_HOME": str(home / "airflow"), **env}
    cmd = line.replace(".venv/bin/", f"{fake_bin}/")
    return subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=full, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("target,exe", [("airflow-ui", "airflow api-server"), ("mlflow-ui", "mlflow ui")])
def test_make_ui_targets_bind_loopback_unless_told(target, exe, fake_bin, tmp_path):
    line = _recipe(target)
    started = [ln for ln in _run(line, fake_bin, tmp_path).splitlines() if ln.startswith(exe)]
    assert started and "--host 127.0.0.1" in started[0], started
    told = "AIRFLOW__API__HOST" if target == "airflow-ui" else "MLFLOW_UI_HOST"
    exposed = [ln for ln in _run(line, fake_bin, tmp_path, **{told: "0.0.0.0"}).splitlines() if ln.startswith(exe)]
    assert "--host 0.0.0.0" in exposed[0], exposed


def test_demo_api_server_binds_loopback_unless_told(monkeypatch):
    spec = importlib.util.spec_from_file_location("modelops_demo_script", ROOT / "scripts" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    monkeypatch.delenv("AIRFLOW__API__HOST", raising=False)
    cmd = demo.api_server_command()
    assert cmd[1] == "api-server" and cmd[cmd.index("--host") + 1] == "127.0.0.1"
    monkeypatch.setenv("AIRFLOW__API__HOST", "0.0.0.0")
    assert demo.api_server_command()[cmd.index("--host") + 1] == "0.0.0.0"
    # the environment the demo runs in (scripts/airflow_env.sh) sets loopback explicitly
    env = subprocess.run(["bash", "-c", "env -u AIRFLOW__API__HOST bash -c 'source scripts/airflow_env.sh && echo $AIRFLOW__API__HOST'"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert env == "127.0.0.1"
