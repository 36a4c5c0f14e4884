"""Two approvals racing for two staged versions: exactly one production version, the later-approved one.

The interleaving is forced, not hoped for: promotion A is paused right after it moved the
production alias (inside its critical section); promotion B is started and the test waits
until B is provably waiting for the per-model lock (or, without a lock, has finished), then
lets A go on. Without the lock B would archive A's version while A still thinks it is
production, leaving two versions tagged ``production``.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from modelops.governance import locks
from modelops.governance import registry
from tests.registry_helpers import approved_version, log_constant_model


@pytest.fixture(scope="module")
def model_uri():
    return log_constant_model("promotion-race")




def _wait(cond, what: str, deadline_s: float = 120) -> None:
    end = time.monotonic() + deadline_s
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.parametrize("first", ["earlier", "later"], ids=["earlier-approved promotes first", "later-approved promotes first"])
@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_racing_promotions_end_with_the_later_approved_version(model_uri, monkeypatch, request, first, db):
    if db == "postgresql":
        monkeypatch.setenv("MODELOPS_DB_URL", request.getfixturevalue("pg_url"))
    name = f"race_{uuid.uuid4().hex[:8]}"
    v1 = approved_version(name, model_uri, "k/1", "2026-01-01T00:00:00+00:00")
    registry.promote(name, v1, by="reviewer")
    v_early = approved_version(name, model_uri, "k/2", "2026-01-02T10:00:00+00:00")
    v_late = approved_version(name, model_uri, "k/3", "2026-01-02T10:00:05+00:00")
    a_version, b_version = (v_early, v_late) if first == "earlier" else (v_late, v_early)

    from mlflow.tracking import MlflowClient

    a_paused, release_a, b_waiting = threading.Event(), threading.Event(), threading.Event()
    real_alias, real_sleep = MlflowClient.set_registered_model_alias, locks.time.sleep

    def alias(self, model, alias_name, version):
        out = real_alias(self, model, alias_name, version)
        if threading.current_thread().name == "A" and alias_name == "production":
            a_paused.set()
            release_a.wait(120)
        return out

    def sleep(s):
        if threading.current_thread().name == "B":
            b_waiting.set()
        real_sleep(s)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", alias)
    monkeypatch.setattr(locks.time, "sleep", sleep)
    errors: list[BaseException] = []

    def run(v):
        try:
            registry.promote(name, v, by="reviewer")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    a = threading.Thread(target=run, args=(a_version,), name="A")
    b = threading.Thread(target=run, args=(b_version,), name="B")
    a.start()
    _wait(a_paused.is_set, "A to move the alias")
    b.start()
    _wait(lambda: b_waiting.is_set() or not b.is_alive(), "B to wait for the lock (or finish, without one)")
    release_a.set()
    a.join(120)
    b.join(120)
    monkeypatch.undo()
    assert not errors, errors

    tags = {str(v.version): v.tags for v in registry.versions(name)}
    assert registry.alias_version(name, "production") == v_late
    assert [v for v, t in tags.items() if t["lifecycle"] == "production"] == [v_late]
    assert sorted(v for v, t in tags.items() if t["lifecycle"] == "archived") == sorted([v1, v_early])
    # a consistent archive chain: each archived version names the version that replaced it, which is or was production
    if first == "earlier":
        assert tags[v1]["archived.replaced_by"] == v_early and tags[v_early]["archived.replaced_by"] == v_late
        assert tags[v_late]["promoted.replaced"] == v_early and tags[v_early]["promoted.replaced"] == v1
    else:
        assert tags[v1]["archived.replaced_by"] == v_late and tags[v_late]["promoted.replaced"] == v1
        assert tags[v_early]["archived.replaced_by"] == v_late and tags[v_early]["archived.reason"].startswith("superseded")
        assert "promoted.by" not in tags[v_early]  # never served
    assert registry.alias_version(name, "staging") is None
    assert b_waiting.is_set(), "B never waited: the promotions were not serialized"
