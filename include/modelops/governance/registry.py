"""The model registry state machine on MLflow 3 aliases and tags.

Lifecycle (tag ``lifecycle``):
    candidate -> staging (alias ``staging``) -> production (alias ``production``) -> archived
    candidate | staging -> rejected
Every transition records who/when/why as version tags, so the MLflow UI shows the
whole story of a version. Stages are deprecated since MLflow 2.9 and never used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from modelops import settings

STAGING = "staging"
PRODUCTION = "production"
LIFECYCLE = "lifecycle"
RUN_KEY = "modelops.run_key"


class RegistryError(RuntimeError):
    """A registry transition that is not allowed; production is left untouched."""


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def client():  # -> MlflowClient (import kept lazy: mlflow costs seconds)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=settings.tracking_uri(), registry_uri=settings.registry_uri())


def fluent(experiment_id: str | None = None):
    """``mlflow`` with its global (fluent) URIs pointed at the configured servers.

    ``mlflow.start_run`` and ``mlflow.pyfunc.load_model`` read process-wide globals that
    someone may have set earlier (a previous task in a long-lived worker, a notebook, a
    test); the settings exported from the Airflow connections for *this* task must win.
    ``experiment_id`` also resets the active experiment: ``start_run(run_id=...)`` refuses
    a run of another experiment than the one ``set_experiment`` chose earlier in the process.
    """
    import os

    import mlflow

    # mlflow.set_*_uri also export MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI into os.environ "for
    # subprocesses". Left there, the pinned registry URI would outlive this task: the next task in the
    # same worker (or a changed connection) would register models on the previous server. Put the
    # environment back the way the connections/settings left it.
    before = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(settings.tracking_uri())
    mlflow.set_registry_uri(settings.registry_uri())
    for k, v in before.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    if experiment_id is not None:
        mlflow.set_experiment(experiment_id=experiment_id)
    return mlflow


def ensure_experiment(name: str) -> str:
    """Experiment id; created with an explicit artifact root so files never land in cwd/mlruns."""
    c = client()
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    root = settings.artifact_root()
    try:
        return c.create_experiment(name, artifact_location=f"{root}/{name}" if root else None)
    except Exception:  # created concurrently by another task
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def ensure_registered_model(name: str, description: str = "") -> None:
    c = client()
    from mlflow.exceptions import MlflowException

    try:
        c.get_registered_model(name)
    except MlflowException as exc:
        if not _not_found(exc):
            raise
        try:
            c.create_registered_model(name, description=description or None, tags={"managed_by": "airflow-modelops"})
        except MlflowException:
            c.get_registered_model(name)  # lost a race: fine if it exists now


def _not_found(exc: Exception) -> bool:
    """True only for "no such model/alias": a 5xx or an unreachable server is an error, never "absent".

    Reading "no production version" from a failed request would let a promotion skip the
    archive step of the version that really is in production.
    """
    code = getattr(exc, "error_code", "")
    return code == "RESOURCE_DOES_NOT_EXIST" or (code == "INVALID_PARAMETER_VALUE" and "not found" in str(exc))


def alias_version(name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client().get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if _not_found(exc):
            return None
        raise


def get_version(name: str, version: str | int):
    return client().get_model_version(name, str(version))


def find_version_by_run_key(name: str, run_key: str):
    """The version an earlier try/re-run of the same logical run registered, if any."""
    # no try/except: a failed search must fail the task, not look like "never registered" (a duplicate)
    found = client().search_model_versions(f"name='{name}' and tags.`{RUN_KEY}`='{run_key}'")
    found = sorted(found, key=lambda v: int(v.version))
    return found[0] if found else None


def set_tags(name: str, version: str | int, tags: dict[str, Any]) -> None:
    c = client()
    for k, v in tags.items():
        c.set_model_version_tag(name, str(version), k, v if isinstance(v, str) else json.dumps(v))


def register_candidate(name: str, model_uri: str, run_id: str, run_key: str, tags: dict[str, Any], description: str = ""):
    """Register once per logical run: a retry or backfill of the same run key gets the same version back.

    MLflow's HTTP client retries every method on 5xx, so a server that created the version
    but failed to answer makes the client create a second one with the same run key. The
    lowest version of a run key is the one that counts; :func:`reconcile_run_key` deletes
    the extra unaliased candidates so no orphan is left behind.
    """
    existing = find_version_by_run_key(name, run_key)
    if existing is not None:
        _wait_ready(name, existing.version)
        return reconcile_run_key(name, run_key), False
    ensure_registered_model(name, description)
    c = client()
    all_tags = {RUN_KEY: run_key, LIFECYCLE: "candidate", "candidate_at": now_iso(), **tags}
    # MLflow 3 logged models (models:/m-<id>): the server wants the model id alongside the source
    model_id = model_uri.split("/", 1)[1] if model_uri.startswith("models:/m-") else None
    mv = c.create_model_version(name, model_uri, run_id=run_id, model_id=model_id,
                                tags={k: v if isinstance(v, str) else json.dumps(v) for k, v in all_tags.items()})
    _wait_ready(name, mv.version)
    return reconcile_run_key(name, run_key), True


def reconcile_run_key(name: str, run_key: str):
    """Keep the lowest version registered for ``run_key``; delete duplicate, never-aliased candidates."""
    c = client()
    found = sorted(c.search_model_versions(f"name='{name}' and tags.`{RUN_KEY}`='{run_key}'"), key=lambda v: int(v.version))
    keep, extra = found[0], found[1:]
    aliased = aliases_by_version(name)
    for mv in extra:
        if str(mv.version) in aliased or mv.tags.get(LIFECYCLE) != "candidate":
            continue  # moved on in the lifecycle: a person may have seen it; leave it alone
        c.delete_model_version(name, str(mv.version))
    return c.get_model_version(name, str(keep.version))


def _wait_ready(name: str, version: str, timeout_s: float = 300) -> None:
    import time

    c = client()
    deadline = time.monotonic() + timeout_s
    while True:
        mv = c.get_model_version(name, version)
        status = getattr(mv, "status", "READY")
        if status == "READY":
            return
        if status == "FAILED_REGISTRATION" or time.monotonic() > deadline:
            raise RegistryError(f"model version {name} v{version} did not become READY (status {status})")
        time.sleep(0.5)


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    metric: str
    value: float
    threshold: float
    greater_is_better: bool
    production_version: str | None
    production_value: float | None
    min_improvement: float
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed, "metric": self.metric, "value": self.value, "threshold": self.threshold,
            "greater_is_better": self.greater_is_better, "production_version": self.production_version,
            "production_value": self.production_value, "min_improvement": self.min_improvement,
            "reasons": list(self.reasons),
        }


def decide_gate(metric: str, value: float, threshold: float, greater_is_better: bool,
                production_version: str | None, production_value: float | None, min_improvement: float) -> GateDecision:
    """Threshold AND beats production on the same test window (the first model needs only the threshold)."""
    from modelops.metrics import is_better, passes_threshold

    reasons: list[str] = []
    op = ">" if greater_is_better else "<"
    if not passes_threshold(value, threshold, greater_is_better):
        reasons.append(f"{metric}={value:.6g} does not pass the threshold ({metric} {op} {threshold:g})")
    if production_version is not None and production_value is not None:
        if not is_better(value, production_value, greater_is_better, min_improvement):
            reasons.append(
                f"{metric}={value:.6g} does not beat production v{production_version} "
                f"({metric}={production_value:.6g}) by the required margin {min_improvement:g} on the same test window"
            )
    return GateDecision(not reasons, metric, float(value), threshold, greater_is_better, production_version,
                        None if production_value is None else float(production_value), min_improvement, tuple(reasons))


def apply_gate(name: str, version: str, decision: GateDecision, by: str = "gate") -> None:
    """Record the decision on the version; passing moves the ``staging`` alias to it.

    ``gate.decision`` is written last: it marks the gate as fully applied, so a retry
    after a failure anywhere before it simply applies the same decision again.
    """
    c = client()
    at = now_iso()
    details = {"gate.passed": str(decision.passed).lower(), "gate.at": at, "gate.by": by}
    if decision.passed:
        set_tags(name, version, details)
        c.set_registered_model_alias(name, STAGING, str(version))
        set_tags(name, version, {LIFECYCLE: STAGING})
    else:
        set_tags(name, version, {**details, "rejected.reason": "; ".join(decision.reasons), "rejected.by": by, "rejected.at": at})
        set_tags(name, version, {LIFECYCLE: "rejected"})
    set_tags(name, version, {"gate.decision": decision.to_dict()})


def record_decision(name: str, version: str, approved: bool, user: str | None, at: str, comment: str,
                    timed_out: bool = False) -> bool:
    """The human decision, as tags; a rejection also takes the version out of staging.

    Append-only: once ``approval.decision`` is set, nothing here rewrites who decided
    (returns False). ``approval.decision`` is written last, after who/when/comment and
    the rejection's own tags, so a crash half-way leaves no decision without its author.
    """
    prefix = "approval"
    existing = get_version(name, version).tags
    if existing.get(f"{prefix}.decision"):
        return False
    tags = {f"{prefix}.by": user or "", f"{prefix}.at": at, f"{prefix}.comment": comment or ""}
    set_tags(name, version, tags)
    if not approved:
        set_tags(name, version, {LIFECYCLE: "rejected", "rejected.by": user or "timeout", "rejected.at": at,
                                 "rejected.reason": "approval timed out" if timed_out else f"rejected by {user}: {comment}"})
        if alias_version(name, STAGING) == str(version):
            client().delete_registered_model_alias(name, STAGING)
    set_tags(name, version, {f"{prefix}.decision": "approved" if approved else ("timed_out" if timed_out else "rejected")})
    return True


def abandon_run_key(name: str, run_key: str, reason: str, by: str = "cleanup") -> list[str]:
    """Give a final tag to what a run that failed for good left half-way: its ungated candidates.

    Called when a retrain run fails after its last retry (the DAG's failure callback), so no
    ``candidate`` is left without a final tag. Versions already gated or decided keep their
    state (a staged version can still be approved from a cleared run); returns the versions
    tagged ``rejected``.
    """
    from mlflow.exceptions import MlflowException

    try:
        found = client().search_model_versions(f"name='{name}' and tags.`{RUN_KEY}`='{run_key}'")
    except MlflowException:
        return []
    done = []
    for mv in found:
        if mv.tags.get(LIFECYCLE) != "candidate" or mv.tags.get("gate.decision"):
            continue
        at = now_iso()
        set_tags(name, mv.version, {"rejected.reason": f"abandoned: {reason}", "rejected.by": by, "rejected.at": at})
        set_tags(name, mv.version, {LIFECYCLE: "rejected"})
        done.append(str(mv.version))
    return done


def record_refusal(name: str, version: str, user: str | None, at: str, why: str) -> list[dict[str, str]]:
    """Append a refused response (someone who is not an approver) to ``approval.refused``; never overwrites earlier ones."""
    tags = get_version(name, version).tags
    try:
        refused = json.loads(tags.get("approval.refused") or "[]")
    except ValueError:  # an old free-text value: keep it as the first entry
        refused = [{"note": tags["approval.refused"]}]
    entry = {"user": user or "", "at": at, "why": why}
    if entry not in refused:  # a retry of the same event does not duplicate it
        refused.append(entry)
        set_tags(name, version, {"approval.refused": refused})
    return refused


def _approved_at(tags: dict[str, str]) -> datetime | None:
    value = tags.get("approval.at")
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _model_lock(name: str):
    from modelops.governance.locks import named_lock

    return named_lock(f"registry:{settings.registry_uri()}:{name}")


def promote(name: str, version: str, by: str, reason: str = "approved") -> str | None:
    """Move ``production`` to ``version``; archive the one it replaces. Safe to retry and to race.

    Order matters for crash safety: the alias move is the single atomic switch;
    archive tags are written after it and are idempotent, so a retry after a
    crash anywhere converges to one production version and one archive record.
    A per-model lock makes read-current/move/archive one critical section, so two
    promotions running at once cannot both archive the same predecessor.

    Never moves production *backwards*: a version that already left production (archived,
    e.g. a re-run of an old DAG run after a newer promotion or a rollback) is not promoted
    again, and when two approvals race the later-approved version wins; the other one is
    tagged archived as superseded. Returns the version that was replaced (None if none).
    """
    with _model_lock(name):
        return _promote_locked(name, str(version), by, reason)


def _promote_locked(name: str, version: str, by: str, reason: str) -> str | None:
    c = client()
    mv = get_version(name, version)
    if mv.tags.get(LIFECYCLE) == "rejected":
        raise RegistryError(f"{name} v{version} is tagged rejected and cannot be promoted")
    if mv.tags.get("approval.decision") != "approved" and reason == "approved":
        raise RegistryError(f"{name} v{version} has no recorded approval; refusing to promote")
    current = alias_version(name, PRODUCTION)
    if current != version and mv.tags.get(LIFECYCLE) == "archived":
        import logging

        logging.getLogger(__name__).warning("%s v%s already left production (%s); production stays at v%s", name, version,
                                            mv.tags.get("archived.reason") or f"replaced by v{mv.tags.get('archived.replaced_by')}",
                                            current)
        return None
    if current is not None and current != version and reason == "approved":
        cur_tags = get_version(name, current).tags
        mine, theirs = _approved_at(mv.tags), _approved_at(cur_tags)
        if mine is not None and theirs is not None and (theirs, int(current)) > (mine, int(version)):
            set_tags(name, version, {"archived.reason": f"superseded: v{current} was approved later and is in production",
                                     "archived.replaced_by": current, "archived.at": now_iso(), "archived.by": by})
            set_tags(name, version, {LIFECYCLE: "archived"})
            if alias_version(name, STAGING) == version:
                c.delete_registered_model_alias(name, STAGING)
            return None
    previous = mv.tags.get("promoted.replaced") if current == version else current
    if current != version:
        set_tags(name, version, {"promoted.replaced": previous or "", "promoted.by": by, "promoted.at": now_iso()})
        c.set_registered_model_alias(name, PRODUCTION, version)
    set_tags(name, version, {LIFECYCLE: PRODUCTION})
    if previous:
        prev = get_version(name, previous)
        if prev.tags.get(LIFECYCLE) != "archived" or prev.tags.get("archived.replaced_by") != version:
            set_tags(name, previous, {"archived.at": now_iso(), "archived.replaced_by": version, "archived.by": by,
                                      "archived.reason": f"replaced by v{version}"})
            set_tags(name, previous, {LIFECYCLE: "archived"})
    if alias_version(name, STAGING) == version:
        c.delete_registered_model_alias(name, STAGING)
    return previous or None


def rollback(name: str, by: str, reason: str = "") -> tuple[str, str]:
    """Production back to the archived version the current one replaced (under the model's lock)."""
    with _model_lock(name):
        current = alias_version(name, PRODUCTION)
        if current is None:
            raise RegistryError(f"{name} has no production version to roll back")
        cur = get_version(name, current)
        target = cur.tags.get("promoted.replaced")
        if not target:
            raise RegistryError(f"{name} v{current} did not replace an earlier production version; nothing to roll back to")
        c = client()
        c.set_registered_model_alias(name, PRODUCTION, target)
        at = now_iso()
        set_tags(name, target, {LIFECYCLE: PRODUCTION, "rollback.restored_at": at, "rollback.by": by})
        set_tags(name, current, {LIFECYCLE: "archived", "archived.at": at, "archived.replaced_by": target,
                                 "archived.by": by, "archived.reason": f"rolled back to v{target}",
                                 "rollback.reason": reason or "rollback", "rollback.rolled_back_at": at})
        return current, target


def versions(name: str) -> list[Any]:
    from mlflow.exceptions import MlflowException

    try:
        vs = client().search_model_versions(f"name='{name}'")
    except MlflowException as exc:
        if _not_found(exc):
            return []
        raise
    return sorted(vs, key=lambda v: int(v.version))


def aliases_by_version(name: str) -> dict[str, list[str]]:
    from mlflow.exceptions import MlflowException

    try:
        rm = client().get_registered_model(name)
    except MlflowException as exc:
        if _not_found(exc):
            return {}
        raise
    out: dict[str, list[str]] = {}
    for alias, ver in (rm.aliases or {}).items():
        out.setdefault(str(ver), []).append(alias)
    return out
