"""Cross-process locks for registry transitions that must not interleave.

Two promotions (or a promotion and a rollback) of the same model running at once
would each read "current production", move the alias and archive what they read:
the loser's archive tags would point at the wrong version and two versions could
end up tagged ``production``. The lock makes read-decide-write one critical section.

The lock lives in the package database, which every worker already shares:
PostgreSQL session advisory lock (real stack), ``flock`` on a file next to the SQLite
file (embedded default, one host). Both are released by the OS/server when the
holder dies, so a SIGKILLed worker never leaves a stale lock behind.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from modelops.settings import database_url, home


class LockTimeout(TimeoutError):
    """Another worker held the lock for longer than the timeout."""


def _key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"modelops-lock|{name}".encode(), digest_size=8).digest(), "big", signed=True)


@contextmanager
def named_lock(name: str, timeout_s: float = 600.0, url: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock called ``name`` across processes and hosts sharing the package DB."""
    url = url or database_url()
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        from modelops.db import get_engine

        with get_engine(url).connect() as conn:
            deadline = time.monotonic() + timeout_s
            while not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _key(name)}).scalar():
                if time.monotonic() > deadline:
                    raise LockTimeout(f"lock {name!r} still held by another worker after {timeout_s:.0f}s")
                conn.rollback()
                time.sleep(0.2)
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _key(name)})
                conn.commit()
        return
    import fcntl

    base = Path(parsed.database).parent if parsed.database and parsed.database != ":memory:" else home()
    lock_dir = base / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"{hashlib.sha1(name.encode()).hexdigest()[:20]}.lock"
    with path.open("a+") as fh:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockTimeout(f"lock {name!r} ({path}) still held by another worker after {timeout_s:.0f}s") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
