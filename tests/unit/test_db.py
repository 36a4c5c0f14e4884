"""The package's schema: created and migrated idempotently, once per migration, safe under concurrency.

PostgreSQL cases use the ``pg_url`` fixture (a throwaway database); they fail instead of
skipping when CI=true.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa

from modelops import db
from modelops.monitoring import drift_store
from tests.conftest import ROOT


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    yield f"sqlite:///{tmp_path / 'm.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    db.dispose_engines()  # before pg_url's teardown drops the database


def test_migrate_creates_every_table_once_and_records_the_version(url):
    engine = db.get_engine(url)
    assert db.schema_version(engine) is None
    assert db.migrate(engine) == ["0001_baseline"]
    assert db.migrate(engine) == []  # remembered for this process
    assert db.migrate(engine, force=True) == []  # and recorded in the database
    tables = set(sa.inspect(engine).get_table_names())
    assert {drift_store.TABLE, db.MIGRATIONS_TABLE} <= tables
    assert db.schema_version(engine) == 1


def test_a_new_migration_is_applied_once_to_an_existing_database(url, monkeypatch):
    engine = db.get_engine(url)
    db.migrate(engine)
    calls = []

    def add_index(conn):
        calls.append(1)
        conn.execute(sa.text(f"CREATE INDEX ix_test_created ON {drift_store.TABLE} (created_at)"))

    monkeypatch.setattr(db, "MIGRATIONS", [*db.MIGRATIONS, db.Migration(2, "index_created_at", add_index)])
    assert db.migrate(engine, force=True) == ["0002_index_created_at"]
    assert db.migrate(engine, force=True) == []
    assert calls == [1] and db.schema_version(engine) == 2
    assert "ix_test_created" in {i["name"] for i in sa.inspect(engine).get_indexes(drift_store.TABLE)}


def test_a_failing_migration_leaves_nothing_half_done(url, monkeypatch):
    engine = db.get_engine(url)
    db.migrate(engine)

    def broken(conn):
        conn.execute(sa.text(f"CREATE INDEX ix_half ON {drift_store.TABLE} (created_at)"))
        raise RuntimeError("boom in migration 2")

    monkeypatch.setattr(db, "MIGRATIONS", [*db.MIGRATIONS, db.Migration(2, "broken", broken)])
    with pytest.raises(RuntimeError, match="boom in migration 2"):
        db.migrate(engine, force=True)
    assert db.schema_version(engine) == 1
    if engine.dialect.name == "postgresql":  # transactional DDL: the index went with the rollback
        assert "ix_half" not in {i["name"] for i in sa.inspect(engine).get_indexes(drift_store.TABLE)}


@pytest.mark.postgres
def test_concurrent_migrations_on_postgresql_do_not_race(pg_url):
    """Workers starting together: without the advisory lock CREATE TABLE collides in pg_type."""
    errors: list[BaseException] = []
    results: list[list[str]] = []

    def worker():
        try:
            results.append(db.migrate(sa.create_engine(pg_url), force=True))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(map(len, results)) == [0, 0, 0, 1]  # exactly one applied the baseline
    db.dispose_engines()


def test_cli_db_migrate(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    run = lambda: subprocess.run([sys.executable, "-m", "modelops", "db-migrate", "--url", url],  # noqa: E731
                                 capture_output=True, text=True, cwd=ROOT, timeout=120)
    first, second = run(), run()
    assert first.returncode == 0 and "schema version 1 (applied 0001_baseline)" in first.stdout
    assert second.returncode == 0 and "(up to date)" in second.stdout
    bad = subprocess.run([sys.executable, "-m", "modelops", "db-migrate", "--url",
                          "postgresql+psycopg2://nobody:secret@127.0.0.1:1/x"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "cannot migrate" in bad.stderr and "secret" not in bad.stderr + bad.stdout


@pytest.mark.parametrize("end_inclusive", [False, True])
def test_for_days_keeps_one_models_rows_of_the_day_window(url, end_inclusive):
    """The day window every store's loader uses: start inclusive, end exclusive unless asked, bounds optional."""
    from datetime import date, datetime

    meta = sa.MetaData()
    t = sa.Table("days_probe", meta, sa.Column("model_name", sa.String(64)), sa.Column("logical_date", sa.Date))
    engine = sa.create_engine(url)
    try:
        meta.create_all(engine)
        with engine.begin() as conn:
            conn.execute(t.insert(), [{"model_name": m, "logical_date": date(2025, 6, d)} for m in ("m", "other") for d in (1, 2, 3, 4)])

        def days(start=None, end=None) -> list[int]:
            q = db.for_days(sa.select(t.c.logical_date), t, "m", start, end, end_inclusive=end_inclusive)
            with engine.connect() as conn:
                return sorted(r[0].day for r in conn.execute(q))

        last = [2, 3, 4] if end_inclusive else [2, 3]
        assert days(date(2025, 6, 2), date(2025, 6, 4)) == last
        assert days("2025-06-02", datetime(2025, 6, 4, 23, 59)) == last  # ISO strings and datetimes mean their day
        assert days(start=date(2025, 6, 3)) == [3, 4]
        assert days(end=date(2025, 6, 2)) == ([1, 2] if end_inclusive else [1])
        assert days() == [1, 2, 3, 4]  # the other model's rows never come back
    finally:
        meta.drop_all(engine)
        engine.dispose()
