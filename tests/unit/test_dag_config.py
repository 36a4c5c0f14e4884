"""The parse-time config: a cache hit equals full validation, and nothing stale or foreign is trusted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelops import config as full
from modelops import dag_config
from modelops.dag_config import ConfigError, load_dag_config

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "include" / "config" / "store_sales.yaml"


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv(dag_config.CACHE_ENV, str(d))
    return d / "dag-config"


@pytest.fixture()
def validations(monkeypatch):
    """Counts full (pydantic) validations behind load_dag_config."""
    calls: list[str] = []
    real = full.parse_config

    def counting(raw, source="<dict>"):
        calls.append(source)
        return real(raw, source=source)

    monkeypatch.setattr(full, "parse_config", counting)
    return calls


def _write(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_a_hit_returns_what_full_validation_returns(cache, validations):
    first = load_dag_config(DEMO)
    second = load_dag_config(DEMO)
    assert len(validations) == 1 and len(list(cache.glob("*.json"))) == 1
    cfg = full.load_config(DEMO)
    expected = {**cfg.model_dump(mode="json"), "greater_is_better": cfg.greater_is_better, "feature_columns": cfg.feature_columns,
                "drift_features": cfg.drift_features, "tuning_metric": cfg.tuning_metric}
    assert first.to_dict() == second.to_dict() == expected
    assert second.approval.approvers == cfg.approval.approvers and second.tuning.n_trials == cfg.tuning.n_trials
    with pytest.raises(AttributeError, match="read-only"):
        second.model_name = "other"
    with pytest.raises(AttributeError, match="no key 'modle_name'"):
        _ = second.modle_name


def test_edits_and_referenced_environment_variables_are_never_served_stale(tmp_path, cache, validations, monkeypatch):
    raw = yaml.safe_load(DEMO.read_text())
    raw["approval"]["approvers"] = ["${APPROVER:-admin}"]
    path = _write(tmp_path / "problem.yaml", raw)
    assert load_dag_config(path).approval.approvers == ["admin"]
    monkeypatch.setenv("APPROVER", "alice")
    assert load_dag_config(path).approval.approvers == ["alice"]
    assert len(validations) == 2

    raw["trainig"] = raw.pop("training")  # a typo after a good version was cached
    _write(path, raw)
    with pytest.raises(ConfigError, match=r"unknown key 'trainig' \(did you mean 'training'\?\)"):
        load_dag_config(path)
    raw["training"] = raw.pop("trainig")
    raw["evaluation"]["threshold"] = "high"
    _write(path, raw)
    with pytest.raises(ConfigError, match="evaluation.threshold"):
        load_dag_config(path)

    raw["evaluation"]["threshold"] = 0.5
    _write(path, raw)
    assert load_dag_config(path).evaluation.threshold == 0.5
    before = len(validations)
    assert load_dag_config(path).evaluation.threshold == 0.5
    assert len(validations) == before  # the good content hits again


def test_a_schema_change_misses(tmp_path, cache, validations, monkeypatch):
    load_dag_config(DEMO)
    schema = tmp_path / "config.py"
    schema.write_bytes(dag_config._SCHEMA_SOURCE.read_bytes() + b"\n# a new rule\n")
    monkeypatch.setattr(dag_config, "_SCHEMA_SOURCE", schema)
    load_dag_config(DEMO)
    load_dag_config(DEMO)
    assert len(validations) == 2


def test_a_shared_corrupt_or_mismatched_cache_is_not_trusted(cache, validations):
    load_dag_config(DEMO)
    (entry,) = cache.glob("*.json")

    entry.write_text("{not json", encoding="utf-8")
    assert load_dag_config(DEMO).model_name == "store_sales_forecaster"
    assert json.loads(entry.read_text())["key"] == entry.stem  # rewritten

    planted = json.loads(entry.read_text())
    planted["config"]["approval"]["approvers"] = ["mallory"]
    planted["key"] = "0" * 64  # an entry copied in under another key
    entry.write_text(json.dumps(planted), encoding="utf-8")
    assert load_dag_config(DEMO).approval.approvers == ["admin", "reviewer"]

    planted["key"] = entry.stem
    entry.write_text(json.dumps(planted), encoding="utf-8")
    os.chmod(cache, 0o777)  # a directory others can write to: their entries are not ours
    assert load_dag_config(DEMO).approval.approvers == ["admin", "reviewer"]
    assert len(validations) == 4


def test_no_writable_cache_only_costs_speed(tmp_path, monkeypatch, validations):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(dag_config.CACHE_ENV, str(blocker))  # cache dir would be inside a file
    assert load_dag_config(DEMO).model_name == load_dag_config(DEMO).model_name == "store_sales_forecaster"
    assert len(validations) == 2


def test_a_hit_does_not_import_the_pydantic_models(tmp_path):
    code = ("import sys, json; from modelops.dag_config import load_dag_config; cfg = load_dag_config();"
            "print(json.dumps([cfg.model_name, 'modelops.config' in sys.modules]))")
    env = {**os.environ, dag_config.CACHE_ENV: str(tmp_path), "MODELOPS_CONFIG": str(DEMO),
           "PYTHONPATH": f"{ROOT / 'include'}"}
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr[-2000:]
    first, second = (json.loads(r.stdout.strip().splitlines()[-1]) for r in runs)
    assert first == ["store_sales_forecaster", True]  # miss: full validation
    assert second == ["store_sales_forecaster", False]  # hit: no pydantic models built


@pytest.mark.parametrize("text,needle", [("- a\n- b\n", "top level must be a mapping"), ("model_name: [\n", "not valid YAML")])
def test_unusable_files_fail_like_load_config(tmp_path, cache, text, needle):
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=needle):
        load_dag_config(path)
    with pytest.raises(ConfigError, match=needle):
        full.load_config(path)
    assert not list(cache.glob("*.json"))


def test_the_runtime_config_follows_the_variables_it_references(tmp_path, monkeypatch):
    """``load_config`` keeps validated configs per process (a worker loads one per task); any
    ``${VAR}`` the file references is part of that key, not just the ``MODELOPS_*`` settings."""
    raw = yaml.safe_load(DEMO.read_text())
    raw["approval"]["approvers"] = ["${APPROVER:-admin}"]
    raw["data"]["path"] = "${DATA_ROOT_FOR_TEST}/sales"
    path = _write(tmp_path / "problem.yaml", raw)
    monkeypatch.delenv("APPROVER", raising=False)
    monkeypatch.setenv("DATA_ROOT_FOR_TEST", str(tmp_path / "a"))
    first = full.load_config(path)
    assert first.approval.approvers == ["admin"] and first.data.path == f"{tmp_path / 'a'}/sales"
    assert full.load_config(path) is first  # unchanged: the kept one

    monkeypatch.setenv("APPROVER", "alice")
    monkeypatch.setenv("DATA_ROOT_FOR_TEST", str(tmp_path / "b"))
    again = full.load_config(path)
    assert again.approval.approvers == ["alice"] and again.data.path == f"{tmp_path / 'b'}/sales"
    monkeypatch.setenv("SOMETHING_ELSE", "x")  # a variable the file does not reference changes nothing
    assert full.load_config(path) is again
