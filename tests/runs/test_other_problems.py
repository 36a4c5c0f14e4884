"""The same DAGs on a classification problem, and a bad partition stopping everything downstream at the first try."""

from __future__ import annotations

import json
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from modelops.governance import registry
from modelops.data import storage
from tests.conftest import write_config
from tests.runs.conftest import Reviewer, load_dag, states, utc

pytestmark = pytest.mark.dagrun


def test_classification_problem_end_to_end(api_app, tmp_path, fast_hp_file, monkeypatch):
    from modelops.config import load_config
    from modelops.data.sample_data import generate_churn, write_dataset

    name = f"churn_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MODELOPS_DATA_ROOT", str(tmp_path / "data"))
    path = write_config(tmp_path, "churn.yaml", model_name=name, **{"mlflow.experiment": name,
                                                                      "training.hyperparameters_file": str(fast_hp_file)})
    monkeypatch.setenv("MODELOPS_CONFIG", str(path))
    cfg = load_config(path)
    write_dataset(generate_churn(date(2025, 1, 1), date(2025, 6, 1), n_per_day=40, seed=2), cfg)

    reviewer = Reviewer(api_app, name, [("admin", True, "churn model ok")])
    reviewer.start()
    try:
        dr = load_dag("retrain_weekly").test(logical_date=utc("2025-06-01"))
    finally:
        reviewer.run_done.set()
    reviewer.join(60)
    assert reviewer.error is None, reviewer.error
    assert str(dr.state) == "success", states(dr)
    (v,) = registry.versions(name)
    assert registry.alias_version(name, "production") == str(v.version)
    run = registry.client().get_run(v.run_id)
    for m in ("accuracy", "f1", "precision", "recall", "roc_auc"):
        assert f"test_{m}" in run.data.metrics, m
    assert run.data.metrics["test_roc_auc"] > cfg.evaluation.threshold
    assert "plots/confusion_matrix.png" in {a.path for a in registry.client().list_artifacts(v.run_id, "plots")}

    import mlflow

    model = mlflow.pyfunc.load_model(f"models:/{name}@production")
    sample = storage.read_window(cfg, date(2025, 5, 30), date(2025, 6, 1)).drop(columns=["churned"])
    proba = np.asarray(model.predict(sample))
    assert len(proba) == len(sample) and ((proba >= 0) & (proba <= 1)).all()


def test_bad_partition_fails_validation_and_nothing_downstream_runs(problem, tmp_path, monkeypatch):
    from modelops.config import load_config
    from modelops.data.sample_data import generate_store_sales, write_dataset

    monkeypatch.setenv("MODELOPS_DATA_ROOT", str(tmp_path / "data"))
    cfg = problem(**{"training.window_days": 60})
    df = generate_store_sales(date(2025, 3, 1), date(2025, 6, 1), n_stores=10, seed=9)
    df.loc[df.index[(df.date == "2025-05-01").to_numpy()][2], "sales"] = -42.0  # inside the training window
    write_dataset(df, load_config())

    dr = load_dag("retrain_weekly").test(logical_date=utc("2025-06-01"))
    st = states(dr)
    assert st["validate_data"] == "failed"
    # bad data is not retried: the reason shows at the first try (issue 18), not after backoffs
    assert {ti.task_id: ti.try_number for ti in dr.get_task_instances()}["validate_data"] == 1
    assert all(s == "upstream_failed" for t, s in st.items() if t != "validate_data"), st
    assert registry.versions(cfg.model_name) == []
    (kept,) = Path(storage.work_root(), cfg.model_name).glob("retrain_weekly/*/validation_result.json")
    result = json.loads(kept.read_text())
    (bad,) = [f for f in result["modelops_failures"] if f.get("column") == "sales"]
    assert bad["examples"] == [-42.0]
