"""`python -m modelops`: status, rollback and clear errors (approve/reject are exercised in tests/runs)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid


from modelops.__main__ import main


def _cli(*args, env_config=None):
    return subprocess.run([sys.executable, "-m", "modelops", *args], capture_output=True, text=True, timeout=300)


def test_status_on_an_empty_registry(capsys, tmp_path, monkeypatch):
    from tests.conftest import write_config

    path = write_config(tmp_path, model_name=f"empty_{uuid.uuid4().hex[:6]}")
    assert main(["--config", str(path), "status"]) == 0
    assert "(no versions registered yet)" in capsys.readouterr().out
    assert main(["--config", str(path), "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["versions"] == [] and data["production"] is None


def test_rollback_without_history_is_a_clear_error(capsys, tmp_path):
    from tests.conftest import write_config

    path = write_config(tmp_path, model_name=f"none_{uuid.uuid4().hex[:6]}")
    assert main(["--config", str(path), "rollback", "--user", "ops"]) == 2
    assert "has no production version to roll back" in capsys.readouterr().err


def test_bad_config_is_one_sentence(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_name: x\ntask: regression\n")
    assert main(["--config", str(bad), "status"]) == 2
    err = capsys.readouterr().err
    assert "missing required key 'data'" in err and "Traceback" not in err


def test_approve_without_a_server_says_where_it_looked(capsys, tmp_path):
    from tests.conftest import write_config

    path = write_config(tmp_path, model_name=f"x_{uuid.uuid4().hex[:6]}")
    rc = main(["--config", str(path), "approve", "--api-url", "http://127.0.0.1:9", "--user", "reviewer", "--password", "p"])
    assert rc == 2
    assert "cannot reach the Airflow API at http://127.0.0.1:9" in capsys.readouterr().err


def test_generate_data_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MODELOPS_DATA_ROOT", str(tmp_path))
    assert main(["generate-data", "--start", "2025-01-01", "--end", "2025-01-08", "--entities", "3"]) == 0
    assert "wrote 21 rows in 7 daily partitions" in capsys.readouterr().out


def test_generate_data_if_missing_never_overwrites(tmp_path, monkeypatch, capsys):
    """The compose init job runs it on every start: a second run must leave the data alone."""
    monkeypatch.setenv("MODELOPS_DATA_ROOT", str(tmp_path / "fresh"))
    args = ["generate-data", "--start", "2025-01-01", "--end", "2025-01-04", "--entities", "2", "--if-missing"]
    assert main(args) == 0
    assert "wrote 6 rows in 3 daily partitions" in capsys.readouterr().out
    files = sorted(p for p in (tmp_path / "fresh").rglob("*") if p.is_file())
    stamps = [p.stat().st_mtime_ns for p in files]
    assert main(args[:-1][:1] + ["--seed", "99"] + args[1:]) == 0
    assert "3 daily partitions already under" in capsys.readouterr().out
    assert [p.stat().st_mtime_ns for p in files] == stamps
