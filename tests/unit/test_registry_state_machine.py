"""Property-based test of the registry state machine against a real MLflow store (SQLite).

Hypothesis drives random sequences of register (incl. MLflow's duplicate-on-retry),
gate, approve, reject, promote (incl. re-runs of old promotions and crashes at every
write followed by a retry), and rollback, and checks after every step that:

* at most one version is tagged ``production`` and it is the one the alias points at;
* the production version was approved by a human; rejected versions never hold an alias;
* every version that ever held ``production`` and no longer does is tagged ``archived``
  with the version that replaced it (the archive link is never lost);
* production is the version the reference model (later approval wins, never backwards) says;
* one version per run key, however often registration was retried.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from modelops.governance import registry
from tests.registry_helpers import log_constant_model

_MODEL_URI: tuple[str, str] | None = None
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
WRITES = ("set_model_version_tag", "set_registered_model_alias", "delete_registered_model_alias", "create_model_version",
          "delete_model_version")


def model_uri() -> tuple[str, str]:
    global _MODEL_URI
    if _MODEL_URI is None:
        _MODEL_URI = log_constant_model("registry-state-machine")
    return _MODEL_URI


class Crash(RuntimeError):
    """The injected fault: the worker dies after ``budget`` registry writes."""


class CrashingClient:
    """The real MlflowClient, except that the write after the budget raises (a crash between writes)."""

    def __init__(self, real, counter: list[int]) -> None:
        self._real, self._counter = real, counter

    def __getattr__(self, item):
        attr = getattr(self._real, item)
        if item not in WRITES:
            return attr

        def write(*a, **kw):
            if self._counter[0] <= 0:
                raise Crash(f"injected crash before {item}")
            self._counter[0] -= 1
            return attr(*a, **kw)

        return write


class RegistryMachine(RuleBasedStateMachine):
    versions = Bundle("versions")

    def __init__(self) -> None:
        super().__init__()
        self.name = f"sm_{uuid.uuid4().hex[:10]}"
        self.keys: dict[str, str] = {}  # version -> run key
        self.gated: dict[str, bool] = {}
        self.decided: dict[str, bool] = {}  # version -> approved?
        self.approval_order: dict[str, int] = {}
        self.clock = 0
        self.production: str | None = None
        self.replaced: dict[str, str | None] = {}  # version -> the production it replaced when first promoted
        self.left: set[str] = set()  # held production once, no longer (archived)
        self.ever_production: set[str] = set()

    # -- helpers -------------------------------------------------------------------------------
    def _tick(self) -> str:
        self.clock += 1
        return (T0 + timedelta(minutes=self.clock)).isoformat()

    def _register(self, key: str) -> str:
        uri, run_id = model_uri()
        mv, _ = registry.register_candidate(self.name, uri, run_id, key, {"metric.rmspe": "0.05"})
        return str(mv.version)

    def _with_crash(self, budget: int, fn) -> bool:
        """Run ``fn`` with a client that crashes after ``budget`` writes; True if it crashed."""
        real = registry.client
        counter = [budget]
        registry.client = lambda: CrashingClient(real(), counter)  # type: ignore[assignment]
        try:
            fn()
            return False
        except Crash:
            return True
        finally:
            registry.client = real  # type: ignore[assignment]

    def _expected_promote(self, v: str) -> None:
        """The reference model of promote (same rules, kept independent of MLflow)."""
        if self.production == v or v in self.left:
            event("promote: no-op (already production or left it)")
            return
        cur = self.production
        if cur is not None and self.approval_order[cur] > self.approval_order[v]:
            event("promote: superseded by a later approval")
            self.left.add(v)  # superseded: a later-approved version is already in production
            return
        self.replaced.setdefault(v, cur)
        if cur is not None:
            self.left.add(cur)
        event("promote: production moved" + (" (archived previous)" if cur else ""))
        self.production = v
        self.ever_production.add(v)

    # -- rules ---------------------------------------------------------------------------------
    @rule(target=versions)
    def register(self):
        key = f"retrain_weekly/{uuid.uuid4().hex[:8]}"
        v = self._register(key)
        self.keys[v] = key
        return v

    @rule(target=versions, dup=st.booleans())
    def register_with_client_retry(self, dup):
        """MLflow's client re-POSTs create_model_version after a 5xx: a second version, same run key."""
        key = f"retrain_weekly/{uuid.uuid4().hex[:8]}"
        uri, run_id = model_uri()
        registry.ensure_registered_model(self.name)
        c = registry.client()
        first = c.create_model_version(self.name, uri, run_id=run_id, model_id=uri.split("/", 1)[1],
                                       tags={registry.RUN_KEY: key, registry.LIFECYCLE: "candidate"})
        if dup:
            c.create_model_version(self.name, uri, run_id=run_id, model_id=uri.split("/", 1)[1],
                                   tags={registry.RUN_KEY: key, registry.LIFECYCLE: "candidate"})
        v = self._register(key)  # the task's retry
        assert v == str(first.version)
        self.keys[v] = key
        return v

    @rule(target=versions)
    def train_gate_and_approve(self):
        """A whole retrain run up to the approval: the common path, so promotions race often."""
        key = f"retrain_weekly/{uuid.uuid4().hex[:8]}"
        v = self._register(key)
        self.keys[v] = key
        registry.apply_gate(self.name, v, registry.decide_gate("rmspe", 0.05, 0.1, False, None, None, 0.0))
        self.gated[v] = True
        at = self._tick()
        registry.record_decision(self.name, v, True, "reviewer", at, "ok")
        self.decided[v] = True
        self.approval_order[v] = self.clock
        return v

    @rule(v=versions)
    def register_again(self, v):
        """A retry/backfill of the same logical run gets the same version back."""
        assert self._register(self.keys[v]) == v

    @precondition(lambda self: set(self.keys) - set(self.gated))
    @rule(data=st.data(), passed=st.booleans(), crash_after=st.none() | st.integers(0, 6))
    def gate(self, data, passed, crash_after):
        v = data.draw(st.sampled_from(sorted(set(self.keys) - set(self.gated))))

        def apply():
            if not registry.get_version(self.name, v).tags.get("gate.decision"):  # what lifecycle.gate's retry checks
                registry.apply_gate(self.name, v, registry.decide_gate("rmspe", 0.05 if passed else 0.5, 0.1, False, None, None, 0.0))

        if crash_after is not None:
            self._with_crash(crash_after, apply)
        apply()
        self.gated[v] = passed

    def _undecided(self) -> list[str]:
        return sorted(v for v, ok in self.gated.items() if ok and v not in self.decided)

    @precondition(lambda self: self._undecided())
    @rule(data=st.data(), approve=st.integers(0, 3).map(bool), crash_after=st.none() | st.integers(0, 5))
    def decide(self, data, approve, crash_after):
        v = data.draw(st.sampled_from(self._undecided()))
        at = self._tick()

        def record():
            registry.record_decision(self.name, v, approve, "reviewer", at, "ok" if approve else "no")

        if crash_after is not None:
            self._with_crash(crash_after, record)
        record()
        self.decided[v] = approve
        if approve:
            self.approval_order[v] = self.clock
        # a re-run cannot rewrite the decision
        assert registry.record_decision(self.name, v, not approve, "intruder", self._tick(), "rewrite") is False

    @precondition(lambda self: self.keys)
    @rule(data=st.data(), crash_after=st.none() | st.integers(0, 8))
    def promote(self, data, crash_after):
        """Mostly approved versions (incl. re-runs of old promotions), sometimes any version."""
        approved = sorted(v for v, ok in self.decided.items() if ok)
        pool = approved if approved and data.draw(st.integers(0, 4)) else sorted(self.keys)
        v = data.draw(st.sampled_from(pool))
        if not self.decided.get(v):
            try:
                registry.promote(self.name, v, by="reviewer")
            except registry.RegistryError:
                return
            raise AssertionError(f"v{v} promoted without an approval")
        if crash_after is not None and self._with_crash(crash_after, lambda: registry.promote(self.name, v, by="reviewer")):
            event("promote: crashed, then retried")
        registry.promote(self.name, v, by="reviewer")  # the retry (or the only try)
        self._expected_promote(v)

    @precondition(lambda self: set(self.keys) - set(self.gated))
    @rule(data=st.data())
    def run_fails_for_good(self, data):
        """The retrain run dies before its gate and exhausts its retries: the failure callback cleans up."""
        v = data.draw(st.sampled_from(sorted(set(self.keys) - set(self.gated))))
        assert registry.abandon_run_key(self.name, self.keys[v], "test") == [v]
        self.gated[v] = False
        t = registry.get_version(self.name, v).tags
        assert t["lifecycle"] == "rejected" and t["rejected.reason"] == "abandoned: test"

    @rule()
    def rollback(self):
        cur = self.production
        target = self.replaced.get(cur) if cur else None
        if cur is None or not target:
            try:
                registry.rollback(self.name, by="ops")
            except registry.RegistryError:
                return
            raise AssertionError("rollback without a replaced version succeeded")
        assert registry.rollback(self.name, by="ops") == (cur, target)
        event("rollback done")
        self.left.add(cur)
        self.left.discard(target)
        self.production = target

    # -- invariants ----------------------------------------------------------------------------
    @invariant()
    def registry_is_consistent(self):
        vs = {str(v.version): v.tags for v in registry.versions(self.name)}
        prod = registry.alias_version(self.name, "production")
        staging = registry.alias_version(self.name, "staging")
        assert prod == self.production
        tagged_prod = sorted(v for v, t in vs.items() if t.get("lifecycle") == "production")
        assert tagged_prod == ([prod] if prod else []), (tagged_prod, prod)
        if prod:
            assert vs[prod].get("approval.decision") == "approved"
        for v in self.left - ({prod} if prod else set()):
            assert vs[v].get("lifecycle") == "archived", (v, vs[v])
            assert vs[v].get("archived.replaced_by"), (v, vs[v])
        for v in self.ever_production - ({prod} if prod else set()):
            assert v in self.left
        for v, t in vs.items():
            if t.get("lifecycle") == "rejected":
                assert v not in (prod, staging)
        if staging:
            t = vs[staging]
            assert t.get("gate.passed") == "true" and t.get("approval.decision") in (None, "approved"), t
        for v, t in vs.items():  # the audit trail is complete wherever a decision is recorded
            if t.get("approval.decision"):
                assert t.get("approval.by") == "reviewer" and t.get("approval.at"), (v, t)
            if t.get("gate.decision"):
                assert t.get("gate.at") and t.get("lifecycle") != "candidate", (v, t)
        keys = [t.get(registry.RUN_KEY) for t in vs.values()]
        assert len(keys) == len(set(keys)), "two versions share a run key"


RegistryMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=25, deadline=None,
                                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_registry_state_machine = RegistryMachine.TestCase
