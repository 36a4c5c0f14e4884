"""Drift report table on SQLite and PostgreSQL: idempotent schema, replace-not-duplicate, atomic saves.

The PostgreSQL case uses the ``pg_url`` fixture (tests/conftest.py): a throwaway
database, dropped afterwards; it fails instead of skipping when CI=true.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from modelops.monitoring import drift_store
from modelops.config import DriftConfig
from modelops.monitoring.drift import DriftReport, detect_drift


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'drift.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    eng = drift_store.get_engine(url)
    yield eng
    drift_store.dispose_engines()  # before pg_url's teardown drops the database


def _report(shift: float = 0.0, seed: int = 0) -> DriftReport:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"a": rng.normal(0, 1, 500), "b": rng.normal(0, 1, 500), "k": rng.choice(list("xyz"), 500)})
    cur = pd.DataFrame({"a": rng.normal(shift, 1, 400), "b": rng.normal(0, 1, 400), "k": rng.choice(list("xyz"), 400)})
    return detect_drift(ref, cur, DriftConfig(drift_ratio_threshold=0.3), ["a", "b"], ["k"])


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(drift_store.drift_reports)).scalar_one()


def test_create_schema_is_idempotent_with_constraints(engine):
    drift_store.create_schema(engine)
    drift_store.create_schema(engine)
    insp = sa.inspect(engine)
    assert drift_store.TABLE in insp.get_table_names()
    uniques = [tuple(u["column_names"]) for u in insp.get_unique_constraints(drift_store.TABLE)]
    assert ("model_name", "logical_date", "feature") in uniques
    indexes = [tuple(i["column_names"]) for i in insp.get_indexes(drift_store.TABLE)]
    assert ("model_name", "logical_date") in indexes


def test_save_twice_same_date_replaces_rows(engine):
    drift_store.create_schema(engine)
    day = date(2025, 6, 1)
    first = _report(0.0)
    assert drift_store.save_report(engine, first, "m", day, model_version=3, dag_id="drift_daily", run_id="r1",
                                   mlflow_run_id="abc") == 3
    second = _report(2.0, seed=1)
    assert drift_store.save_report(engine, second, "m", "2025-06-01T00:00:00+00:00", run_id="r2") == 3
    assert _count(engine) == 3
    df = drift_store.load_reports(engine, "m")
    assert sorted(df["feature"]) == ["a", "b", "k"] and set(df["run_id"]) == {"r2"}
    assert df.set_index("feature").loc["a", "drifted"] and bool(df["dataset_drift"].iloc[0]) == second.dataset_drift
    assert df.set_index("feature").loc["a", "ks_statistic"] == pytest.approx(second.feature("a").ks_statistic, abs=0)
    assert pd.isna(df.set_index("feature").loc["k", "ks_pvalue"])  # categorical: no KS -> NULL
    # another date and another model are separate rows
    drift_store.save_report(engine, first, "m", date(2025, 6, 2))
    drift_store.save_report(engine, first, "other", day)
    assert _count(engine) == 9


def test_failure_mid_save_leaves_previous_rows(engine, monkeypatch):
    drift_store.create_schema(engine)
    day = date(2025, 6, 1)
    drift_store.save_report(engine, _report(0.0), "m", day, run_id="good")
    before = drift_store.load_reports(engine, "m")

    # 1) an error inside the transaction, after the delete and half of the inserts
    real_insert = drift_store._insert_rows

    def half_then_fail(conn, rows):
        real_insert(conn, rows[:1])
        raise RuntimeError("worker killed mid-save")

    monkeypatch.setattr(drift_store, "_insert_rows", half_then_fail)
    with pytest.raises(RuntimeError, match="mid-save"):
        drift_store.save_report(engine, _report(2.0, seed=1), "m", day, run_id="bad")
    monkeypatch.setattr(drift_store, "_insert_rows", real_insert)
    pd.testing.assert_frame_equal(drift_store.load_reports(engine, "m"), before)

    # 2) the database itself refuses a row (duplicate feature violates the unique key)
    dup = _report(2.0, seed=1)
    dup.features.append(dup.features[0])
    with pytest.raises(sa.exc.IntegrityError):
        drift_store.save_report(engine, dup, "m", day, run_id="bad")
    pd.testing.assert_frame_equal(drift_store.load_reports(engine, "m"), before)

    # 3) NaN where it is not allowed is refused before anything is written
    nan_ratio = _report(2.0, seed=1)
    nan_ratio.drift_ratio = float("nan")
    with pytest.raises(ValueError, match="drift_ratio"):
        drift_store.save_report(engine, nan_ratio, "m", day)
    inf_psi = _report(2.0, seed=1)
    inf_psi.features[1].psi = float("inf")
    with pytest.raises(ValueError, match="psi of feature 'b'"):
        drift_store.save_report(engine, inf_psi, "m", day)
    pd.testing.assert_frame_equal(drift_store.load_reports(engine, "m"), before)
    assert set(before["run_id"]) == {"good"}


def test_load_range_and_latest_summary(engine):
    drift_store.create_schema(engine)
    assert drift_store.latest_summary(engine, "m") is None
    assert drift_store.load_reports(engine, "m").empty
    for d, shift in ((date(2025, 6, 1), 0.0), (date(2025, 6, 2), 0.0), (date(2025, 6, 3), 2.0)):
        drift_store.save_report(engine, _report(shift, seed=d.day), "m", d, model_version="7", mlflow_run_id=f"run{d.day}")
    df = drift_store.load_reports(engine, "m", start=date(2025, 6, 2), end="2025-06-03")
    assert sorted(set(df["logical_date"].dt.date)) == [date(2025, 6, 2), date(2025, 6, 3)]
    assert len(drift_store.load_reports(engine, "m", end=date(2025, 6, 1))) == 3
    s = drift_store.latest_summary(engine, "m")
    assert s["logical_date"] == date(2025, 6, 3) and s["dataset_drift"] is True
    assert "a" in s["drifted_features"] and s["drift_ratio"] >= 1 / 3 and s["n_features"] == 3
    assert s["model_version"] == "7" and s["mlflow_run_id"] == "run3"


def test_get_engine_cached_per_url(tmp_path):
    a = drift_store.get_engine(f"sqlite:///{tmp_path / 'x' / 'a.db'}")
    assert drift_store.get_engine(f"sqlite:///{tmp_path / 'x' / 'a.db'}") is a
    assert drift_store.get_engine(f"sqlite:///{tmp_path / 'b.db'}") is not a
    default = drift_store.get_engine()
    assert str(default.url).startswith("sqlite:///") and drift_store.get_engine() is default
    drift_store.dispose_engines()
