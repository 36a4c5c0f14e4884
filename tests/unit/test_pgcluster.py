"""The test suite's PostgreSQL: a throwaway cluster when no server answers, and a restartable one for fault tests."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.pgcluster import PgCluster

pytestmark = pytest.mark.postgres


def test_throwaway_cluster_keeps_committed_rows_across_a_crash_restart():
    import psycopg2

    cluster = PgCluster().start()
    try:
        with psycopg2.connect(cluster.dsn) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE t (x int)")
            cur.execute("INSERT INTO t VALUES (1), (2)")
        cluster.restart("immediate")  # no shutdown checkpoint: recovery replays the WAL
        with psycopg2.connect(cluster.dsn) as conn, conn.cursor() as cur:
            cur.execute("SELECT sum(x) FROM t")
            assert cur.fetchone()[0] == 3
    finally:
        cluster.destroy()
    assert not cluster.root.exists()


def test_suite_starts_its_own_server_when_none_answers():
    code = ("import tests.conftest as c, psycopg2; c.PG_DSN = 'postgresql://postgres@127.0.0.1:9/postgres';"
            "dsn = c.pg_dsn(); conn = psycopg2.connect(dsn); print('DSN', dsn); conn.close();"
            "c._pg_state['cluster'].destroy()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=180,
                         env={"PATH": "/usr/bin:/bin", "HOME": "/root"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "no PostgreSQL on postgresql://postgres@127.0.0.1:9/postgres; started a throwaway cluster" in out.stdout
    assert "DSN postgresql://postgres@127.0.0.1:" in out.stdout and ":9/" not in out.stdout.split("DSN", 1)[1]
