"""PostgreSQL crashes in the middle of a drift report write (a throwaway, restartable cluster).

The crash is injected at an exact point: the listener below kills the server
(``pg_ctl stop -m immediate``) when the report's INSERT is about to run, i.e. after the
DELETE of the previous report in the same transaction. A helper thread starts the
server again. Nothing here sleeps for luck: the product retries with backoff until a
deadline, and the test only looks at the rows afterwards.
"""

from __future__ import annotations

import threading
from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from modelops.monitoring import drift_store
from modelops.config import DriftConfig
from modelops.monitoring.drift import detect_drift
from tests.pgcluster import PgCluster

pytestmark = pytest.mark.postgres
DAY = date(2025, 11, 19)


def _report(shift: float, seed: int):
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"a": rng.normal(0, 1, 400), "b": rng.normal(0, 1, 400), "k": rng.choice(list("xyz"), 400)})
    cur = pd.DataFrame({"a": rng.normal(shift, 1, 300), "b": rng.normal(0, 1, 300), "k": rng.choice(list("xyz"), 300)})
    return detect_drift(ref, cur, DriftConfig(), ["a", "b"], ["k"])


@pytest.fixture(scope="module")
def cluster():
    c = PgCluster().start()
    yield c
    drift_store.dispose_engines()
    c.destroy()


def _rows(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(sa.select(drift_store.drift_reports).order_by(drift_store.drift_reports.c.feature)).mappings().all())


def _crash_on_insert(engine, cluster: PgCluster, restart: bool) -> dict:
    fired = {"n": 0, "restarter": None}

    @sa.event.listens_for(engine, "before_cursor_execute")
    def crash(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
        if fired["n"] == 0 and statement.lstrip().upper().startswith(f"INSERT INTO {drift_store.TABLE.upper()}"):
            fired["n"] += 1
            cluster.stop("immediate")  # the server dies with the DELETE uncommitted
            if restart:
                fired["restarter"] = threading.Thread(target=cluster.start, daemon=True)
                fired["restarter"].start()

    fired["remove"] = lambda: sa.event.remove(engine, "before_cursor_execute", crash)
    return fired


def test_restart_during_report_write_leaves_old_report_then_retry_replaces_it(cluster, caplog):
    engine = drift_store.get_engine(cluster.dsn.replace("postgresql://", "postgresql+psycopg2://", 1))
    drift_store.create_schema(engine)
    old, new = _report(0.0, 1), _report(1.5, 2)
    assert drift_store.save_report(engine, old, "m", DAY, run_id="try1") == 3
    before = _rows(engine)

    # 1) the server crashes mid-transaction and does not come back in time: a clear failure,
    #    and the previous report is intact (no partial rows, nothing deleted)
    inj = _crash_on_insert(engine, cluster, restart=False)
    try:
        with pytest.raises(sa.exc.OperationalError):
            drift_store.save_report(engine, new, "m", DAY, run_id="try2", retry_for_s=1.0)
    finally:
        inj["remove"]()
    cluster.start()
    after_failure = _rows(engine)
    pd.testing.assert_frame_equal(after_failure, before)

    # 2) the server restarts while the write is retried: one complete new report, no duplicates
    caplog.clear()
    inj = _crash_on_insert(engine, cluster, restart=True)
    try:
        assert drift_store.save_report(engine, new, "m", DAY, run_id="try3") == 3
    finally:
        inj["remove"]()
        if inj["restarter"] is not None:
            inj["restarter"].join(timeout=120)
    assert inj["n"] == 1
    retried = [r.getMessage() for r in caplog.records if "database connection lost" in r.getMessage() and "attempt 1" in r.getMessage()]
    assert retried, "the write succeeded without a retry: the crash was not injected"
    rows = _rows(engine)
    assert len(rows) == 3 and rows["feature"].tolist() == ["a", "b", "k"]
    assert set(rows["run_id"]) == {"try3"}
    expected = new.to_frame().set_index("feature")
    for _, r in rows.iterrows():
        e = expected.loc[r["feature"]]
        assert r["drifted"] == bool(e["drifted"]) and (pd.isna(e["psi"]) or abs(r["psi"] - e["psi"]) < 1e-12)
    with engine.connect() as conn:
        dupes = conn.execute(sa.text(f"SELECT feature, count(*) FROM {drift_store.TABLE} GROUP BY model_name, logical_date, "
                                     "feature HAVING count(*) > 1")).all()
    assert dupes == []
