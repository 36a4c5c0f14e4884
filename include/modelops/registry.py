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


def fluent():
    """``mlflow`` with its global (fluent) URIs pointed at the configured servers.

    ``mlflow.start_run`` and ``mlflow.pyfunc.load_model`` read process-wide globals that
    someone may have set earlier (a previous task in a long-lived worker, a notebook, a
    test); the settings exported from the Airflow connections for *this* task must win.
    """
    import mlflow

    mlflow.set_tracking_uri(settings.tracking_uri())
    mlflow.set_registry_uri(settings.registry_uri())
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
    except MlflowException:
        try:
            c.create_registered_model(name, description=description or None, tags={"managed_by": "airflow-modelops"})
        except MlflowException:
            c.get_registered_model(name)  # lost a race: fine if it exists now


def alias_version(name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def get_version(name: str, version: str | int):
    return client().get_model_version(name, str(version))


def find_version_by_run_key(name: str, run_key: str):
    """The version an earlier try/re-run of the same logical run registered, if any."""
    from mlflow.exceptions import MlflowException

    try:
        found = client().search_model_versions(f"name='{name}' and tags.`{RUN_KEY}`='{run_key}'")
    except MlflowException:
        return None
    found = sorted(found, key=lambda v: int(v.version))
    return found[0] if found else None


def set_tags(name: str, version: str | int, tags: dict[str, Any]) -> None:
    c = client()
    for k, v in tags.items():
        c.set_model_version_tag(name, str(version), k, v if isinstance(v, str) else json.dumps(v))


def register_candidate(name: str, model_uri: str, run_id: str, run_key: str, tags: dict[str, Any], description: str = ""):
    """Register once per logical run: a retry or backfill of the same run key gets the same version back."""
    existing = find_version_by_run_key(name, run_key)
    if existing is not None:
        return existing, False
    ensure_registered_model(name, description)
    c = client()
    all_tags = {RUN_KEY: run_key, LIFECYCLE: "candidate", "candidate_at": now_iso(), **tags}
    # MLflow 3 logged models (models:/m-<id>): the server wants the model id alongside the source
    model_id = model_uri.split("/", 1)[1] if model_uri.startswith("models:/m-") else None
    mv = c.create_model_version(name, model_uri, run_id=run_id, model_id=model_id,
                                tags={k: v if isinstance(v, str) else json.dumps(v) for k, v in all_tags.items()})
    _wait_ready(name, mv.version)
    return c.get_model_version(name, mv.version), True


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
    """Record the decision on the version; passing moves the ``staging`` alias to it."""
    c = client()
    tags = {"gate.passed": str(decision.passed).lower(), "gate.decision": decision.to_dict(), "gate.at": now_iso(), "gate.by": by}
    if decision.passed:
        set_tags(name, version, {**tags, LIFECYCLE: STAGING})
        c.set_registered_model_alias(name, STAGING, str(version))
    else:
        set_tags(name, version, {**tags, LIFECYCLE: "rejected", "rejected.reason": "; ".join(decision.reasons),
                                 "rejected.by": by, "rejected.at": now_iso()})


def record_decision(name: str, version: str, approved: bool, user: str | None, at: str, comment: str,
                    timed_out: bool = False) -> None:
    """The human decision, as tags; a rejection also takes the version out of staging."""
    prefix = "approval"
    existing = get_version(name, version).tags
    if existing.get(f"{prefix}.decision"):
        # The audit trail is append-only: a re-run cannot rewrite who decided.
        return
    tags = {f"{prefix}.decision": "approved" if approved else ("timed_out" if timed_out else "rejected"),
            f"{prefix}.by": user or "", f"{prefix}.at": at, f"{prefix}.comment": comment or ""}
    if not approved:
        tags.update({LIFECYCLE: "rejected", "rejected.by": user or "timeout", "rejected.at": at,
                     "rejected.reason": "approval timed out" if timed_out else f"rejected by {user}: {comment}"})
    set_tags(name, version, tags)
    if not approved and alias_version(name, STAGING) == str(version):
        client().delete_registered_model_alias(name, STAGING)


def promote(name: str, version: str, by: str, reason: str = "approved") -> str | None:
    """Move ``production`` to ``version``; archive the one it replaces. Safe to retry.

    Order matters for crash safety: the alias move is the single atomic switch;
    archive tags are written after it and are idempotent, so a retry after a
    crash anywhere converges to one production version and one archive record.
    """
    c = client()
    mv = get_version(name, version)
    if mv.tags.get(LIFECYCLE) == "rejected":
        raise RegistryError(f"{name} v{version} is tagged rejected and cannot be promoted")
    if mv.tags.get("approval.decision") != "approved" and reason == "approved":
        raise RegistryError(f"{name} v{version} has no recorded approval; refusing to promote")
    current = alias_version(name, PRODUCTION)
    previous = mv.tags.get("promoted.replaced") if current == str(version) else current
    if current != str(version):
        set_tags(name, version, {"promoted.replaced": previous or "", "promoted.by": by, "promoted.at": now_iso()})
        c.set_registered_model_alias(name, PRODUCTION, str(version))
    set_tags(name, version, {LIFECYCLE: PRODUCTION})
    if previous:
        prev = get_version(name, previous)
        if prev.tags.get(LIFECYCLE) != "archived" or prev.tags.get("archived.replaced_by") != str(version):
            set_tags(name, previous, {LIFECYCLE: "archived", "archived.at": now_iso(), "archived.replaced_by": str(version), "archived.by": by})
    if alias_version(name, STAGING) == str(version):
        c.delete_registered_model_alias(name, STAGING)
    return previous or None


def rollback(name: str, by: str, reason: str = "") -> tuple[str, str]:
    """Production back to the archived version the current one replaced."""
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
                             "archived.by": by, "rollback.reason": reason or "rollback", "rollback.rolled_back_at": at})
    return current, target


def versions(name: str) -> list[Any]:
    from mlflow.exceptions import MlflowException

    try:
        vs = client().search_model_versions(f"name='{name}'")
    except MlflowException:
        return []
    return sorted(vs, key=lambda v: int(v.version))


def aliases_by_version(name: str) -> dict[str, list[str]]:
    from mlflow.exceptions import MlflowException

    try:
        rm = client().get_registered_model(name)
    except MlflowException:
        return {}
    out: dict[str, list[str]] = {}
    for alias, ver in (rm.aliases or {}).items():
        out.setdefault(str(ver), []).append(alias)
    return out
