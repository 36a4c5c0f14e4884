"""The package's own database: one engine per URL, one schema, migrated by the package.

SQLite by default (``$MODELOPS_HOME/modelops.db``), PostgreSQL through psycopg2 in the real
stack (``MODELOPS_DB_URL``, exported from the ``modelops_db`` Airflow connection). Every table
module (drift reports, predictions, monitoring, ...) declares its tables on :data:`metadata`
and is listed in :data:`TABLE_MODULES`; :func:`migrate` creates what is missing and applies
the numbered migrations once, recorded in ``modelops_schema_migrations``. It is idempotent and
safe to run from several workers at once (a PostgreSQL advisory lock serializes them), so
tasks call it before they write and the compose init job runs it at start.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from modelops.settings import database_url

metadata = sa.MetaData()

# Modules whose import registers their tables on ``metadata``.
TABLE_MODULES: tuple[str, ...] = ("modelops.monitoring.drift_store", "modelops.monitoring.predictions", "modelops.monitoring.performance",
                                   "modelops.monitoring.alerts", "modelops.monitoring.explanation_store")

MIGRATIONS_TABLE = "modelops_schema_migrations"
schema_migrations = sa.Table(
    MIGRATIONS_TABLE,
    metadata,
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Migration:
    """A schema change after a table first shipped; ``apply`` runs once, inside the migrate transaction."""

    version: int
    name: str
    apply: Callable[[Connection], None]


# Numbered, append-only. Version 1 is the baseline that create_all builds; later entries alter
# existing databases (new columns, new indexes) and must be no-ops on a freshly created schema.
MIGRATIONS: list[Migration] = [Migration(1, "baseline", lambda conn: None)]

_engines: dict[str, Engine] = {}
_migrated: set[str] = set()
_lock = threading.Lock()
_ADVISORY_KEY = 0x6D6F64656C6F7073  # "modelops"


def for_days(query: sa.Select, table: sa.Table, model_name: str, start: date | datetime | str | None = None,
             end: date | datetime | str | None = None, *,
             end_inclusive: bool = False) -> sa.Select:
    """``query`` narrowed to one model's rows with ``start <= logical_date < end`` (``<= end`` when
    ``end_inclusive``); each bound optional, given as a date, datetime or ISO string. Every store
    (predictions, performance, drift reports, alerts) is keyed by model and data day."""
    from modelops.data.storage import as_day

    query = query.where(table.c.model_name == model_name)
    if start is not None:
        query = query.where(table.c.logical_date >= as_day(start))
    if end is not None:
        query = query.where(table.c.logical_date <= as_day(end) if end_inclusive else table.c.logical_date < as_day(end))
    return query


def get_engine(url: str | None = None) -> Engine:
    """One engine (and pool) per URL for the process; default ``settings.database_url()``."""
    url = url or database_url()
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create_engine(url)
            _engines[url] = engine
        return engine


def _create_engine(url: str) -> Engine:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # several Airflow workers may write: wait for the file lock instead of failing at once
        return sa.create_engine(url, connect_args={"timeout": 30})
    return sa.create_engine(url, pool_pre_ping=True)


def dispose_engines() -> None:
    """Close every cached pool (tests dropping a database, forked workers)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _migrated.clear()


def _load_table_modules() -> None:
    for name in TABLE_MODULES:
        importlib.import_module(name)


def migrate(engine: Engine | None = None, *, force: bool = False) -> list[str]:
    """Create missing tables and apply pending migrations; returns the names applied now.

    Cheap after the first call per engine in a process (remembered), so every writer can
    call it. ``force`` re-checks the database (the CLI does).
    """
    engine = engine or get_engine()
    key = str(engine.url)
    if key in _migrated and not force:
        return []
    _load_table_modules()
    applied: list[str] = []
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # two workers starting at once would race in CREATE TABLE; the lock ends with the transaction
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})
        metadata.create_all(conn, checkfirst=True)
        done = {row[0] for row in conn.execute(sa.select(schema_migrations.c.version))}
        for m in sorted(MIGRATIONS, key=lambda m: m.version):
            if m.version in done:
                continue
            m.apply(conn)
            conn.execute(schema_migrations.insert().values(version=m.version, name=m.name,
                                                           applied_at=datetime.now(timezone.utc)))
            applied.append(f"{m.version:04d}_{m.name}")
    with _lock:
        _migrated.add(key)
    return applied


def schema_version(engine: Engine | None = None) -> int | None:
    """Highest applied migration, or None for a database the package never touched."""
    engine = engine or get_engine()
    if MIGRATIONS_TABLE not in sa.inspect(engine).get_table_names():
        return None
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(schema_migrations.c.version))).scalar()


def redacted_url(engine: Engine | None = None) -> str:
    """The URL for logs and CLI output, password hidden."""
    return (engine or get_engine()).url.render_as_string(hide_password=True)
