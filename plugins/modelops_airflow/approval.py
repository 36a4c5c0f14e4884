"""The manual-approval gate before production, on Airflow's human-in-the-loop ApprovalOperator.

While it waits, the task is parked in ``awaiting_input``: no worker slot, no
triggerer. Reviewers answer on the Required Actions page or through the REST
API (``PATCH .../hitlDetails``); only the approvers named in the config are
assigned, so Airflow itself refuses anyone else with 403. The decision (who,
when, comment) is written to the MLflow version once and never rewritten; the
timeout answers "Reject" on the reviewers' behalf.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param

if TYPE_CHECKING:
    from airflow.sdk import Context


class NotAnApprover(PermissionError):
    """A response from someone the config does not name as approver."""


class ModelApprovalOperator(ApprovalOperator):
    """Wait for an approver's decision on the staged model version.

    :param approvers: user ids allowed to decide (``approval.approvers`` in the config).
    :param timeout: how long to wait; on timeout the version is rejected.
    :param config_path: problem config YAML (default ``$MODELOPS_CONFIG``).
    :param version_task_id: task whose XCom holds ``{"version": ...}``.
    """

    ui_color = "#fff0b3"

    def __init__(self, *, approvers: list[str], timeout: timedelta, config_path: str | None = None,
                 version_task_id: str = "register_candidate", gate_task_id: str = "gate",
                 evaluate_task_id: str = "evaluate", **kwargs: Any) -> None:
        if not approvers:
            raise ValueError("ModelApprovalOperator needs at least one approver")
        kwargs.pop("params", None)  # DAG-level params do not belong on the reviewer's form
        super().__init__(
            subject=kwargs.pop("subject", "Promote the staged model to production?"),
            body=kwargs.pop("body", None),
            defaults=["Reject"],
            assigned_users=[{"id": a, "name": a} for a in approvers],
            response_timeout=timeout,
            params={"comment": Param("", type="string", title="Comment",
                                     description="Why you approve or reject; stored on the MLflow model version.")},
            **kwargs,
        )
        self.approvers = list(approvers)
        self.config_path = config_path
        self.version_task_id = version_task_id
        self.gate_task_id = gate_task_id
        self.evaluate_task_id = evaluate_task_id

    def _version(self, context: Context) -> str:
        reg = context["ti"].xcom_pull(task_ids=self.version_task_id)
        if not reg or "version" not in reg:
            raise ValueError(f"{self.task_id}: no model version from '{self.version_task_id}'")
        return str(reg["version"])

    def execute(self, context: Context) -> Any:
        from modelops.governance import registry
        from modelops.config import load_config

        from modelops_airflow.hooks import ModelopsHook

        ModelopsHook().configure_environment()
        cfg = load_config(self.config_path)
        version = self._version(context)
        mv = registry.get_version(cfg.model_name, version)
        decided = mv.tags.get("approval.decision")
        if decided:
            # A re-run of the same logical date: the recorded decision stands, nobody is asked twice.
            self.log.info("v%s already has a recorded decision (%s by %s at %s); not asking again", version, decided,
                          mv.tags.get("approval.by"), mv.tags.get("approval.at"))
            if decided != "approved":
                self.skip(ti=context["ti"], tasks=list(context["task"].get_direct_relatives(upstream=False)))
            return {"chosen_options": [self.APPROVE if decided == "approved" else self.REJECT], "recorded_by": mv.tags.get("approval.by"),
                    "reused": True}
        if registry.alias_version(cfg.model_name, registry.STAGING) != version:
            raise ValueError(f"{cfg.model_name} v{version} is not the staging version; nothing to approve")

        evaluation = context["ti"].xcom_pull(task_ids=self.evaluate_task_id) or {}
        gate = context["ti"].xcom_pull(task_ids=self.gate_task_id) or {}
        self.subject = f"Promote {cfg.model_name} v{version} to production?"
        self.body = _body(cfg, version, mv, evaluation, gate, self.approvers)
        registry.set_tags(cfg.model_name, version, {"approval.requested_at": registry.now_iso(),
                                                    "approval.assigned": ",".join(self.approvers),
                                                    "approval.airflow_run_id": context["dag_run"].run_id})
        self.log.info("waiting for one of %s to approve or reject %s v%s (timeout %s)", self.approvers, cfg.model_name, version,
                      self.response_timeout)
        from modelops_airflow.notifiers import send_alert

        metric = cfg.evaluation.metric
        send_alert(context, "approval_waiting", {
            "model_version": version, "metric": metric, "value": (evaluation.get("candidate") or {}).get(metric),
            "production_version": evaluation.get("production_version"),
            "production_value": (evaluation.get("production") or {}).get(metric), "approvers": self.approvers,
            "timeout_hours": self.response_timeout.total_seconds() / 3600 if self.response_timeout else None,
            "mlflow_run_id": mv.run_id}, self.config_path)
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from modelops.governance import registry
        from modelops.config import load_config

        from modelops_airflow.hooks import ModelopsHook

        ModelopsHook().configure_environment()
        cfg = load_config(self.config_path)
        version = self._version(context)
        from modelops_airflow.health_metrics import after_approval

        if "error" in event:
            recorded = registry.record_decision(cfg.model_name, version, False, None, registry.now_iso(), "", timed_out=True)
            after_approval(cfg, approved=False, recorded=bool(recorded))
            self._close_alerts(context, cfg, version, registry.get_version(cfg.model_name, version).run_id, True, "rejected")
            return super().execute_complete(context, event)
        timed_out = bool(event.get("timedout"))
        user = event.get("responded_by_user") or {}
        user_id = user.get("id")
        at = event["responded_at"].isoformat() if hasattr(event.get("responded_at"), "isoformat") else str(event.get("responded_at"))
        if not timed_out and user_id not in self.approvers:
            self.log.error("response from %r refused: not an approver of %s (approvers: %s)", user_id, cfg.model_name, self.approvers)
            registry.record_refusal(cfg.model_name, version, user_id, at, "not an approver")
            raise NotAnApprover(f"{user_id!r} is not an approver for {cfg.model_name}; the decision does not count")
        chosen = list(event.get("chosen_options") or [])
        approved = chosen == [self.APPROVE] and not timed_out
        comment = str((event.get("params_input") or {}).get("comment") or "")
        recorded = registry.record_decision(cfg.model_name, version, approved, None if timed_out else user_id, at,
                                            "approval timed out" if timed_out else comment, timed_out=timed_out)
        after_approval(cfg, approved, bool(recorded))  # approvals / approval_rejections counters, open alerts
        if not recorded:
            tags = registry.get_version(cfg.model_name, version).tags
            self.log.warning("%s v%s already has a recorded decision (%s by %s at %s); this response does not change it",
                             cfg.model_name, version, tags.get("approval.decision"), tags.get("approval.by"), tags.get("approval.at"))
        self._close_alerts(context, cfg, version, mv_run_id=registry.get_version(cfg.model_name, version).run_id,
                           timed_out=timed_out, outcome="approved" if approved else "rejected")
        self.log.info("%s v%s %s by %s at %s%s", cfg.model_name, version,
                      "APPROVED" if approved else ("REJECTED (timeout)" if timed_out else "REJECTED"),
                      user_id or "timeout", at, f": {comment}" if comment else "")
        return super().execute_complete(context, event)

    def _close_alerts(self, context: Context, cfg: Any, version: str, mv_run_id: str, timed_out: bool, outcome: str) -> None:
        """The waiting alert is answered; a timeout is worth its own alert."""
        from modelops import db
        from modelops.monitoring import alerts

        from modelops_airflow.notifiers import send_alert

        try:
            engine = db.get_engine()
            db.migrate(engine)
            alerts.resolve(engine, cfg.model_name, [alerts.APPROVAL_WAITING], f"v{version} {outcome}" + (" (timeout)" if timed_out else ""))
        except Exception:  # noqa: BLE001 - bookkeeping of alerts never blocks the decision
            self.log.exception("could not close the approval alert")
        if timed_out:
            hours = self.response_timeout.total_seconds() / 3600 if self.response_timeout else None
            send_alert(context, "approval_timed_out", {"model_version": version, "timeout_hours": hours, "mlflow_run_id": mv_run_id},
                       self.config_path)


def _body(cfg: Any, version: str, mv: Any, evaluation: dict[str, Any], gate: dict[str, Any], approvers: list[str]) -> str:
    metric = cfg.evaluation.metric
    cand = (evaluation.get("candidate") or {})
    prod = evaluation.get("production") or {}
    lines = [
        f"**{cfg.model_name} v{version}** passed the automatic gate and waits for a human decision.",
        "",
        f"| | {metric} | " + " | ".join(k for k in cand if k != metric) + " |",
        "|---|---|" + "---|" * (len(cand) - 1),
        f"| candidate v{version} | {cand.get(metric, float('nan')):.5f} | " + " | ".join(f"{v:.4f}" for k, v in cand.items() if k != metric) + " |",
    ]
    if prod:
        lines.append(f"| production v{evaluation.get('production_version')} | {prod.get(metric, float('nan')):.5f} | "
                     + " | ".join(f"{v:.4f}" for k, v in prod.items() if k != metric) + " |")
    lines += [
        "",
        f"Threshold: {metric} {'>' if cfg.greater_is_better else '<'} {cfg.evaluation.threshold}; test window "
        f"{evaluation.get('test_window')}. Gate: {'passed' if gate.get('passed') else gate.get('reasons')}.",
        f"MLflow run: `{mv.run_id}`; training window {mv.tags.get('modelops.training_window')}.",
        f"Approvers: {', '.join(approvers)}. No answer before the timeout counts as Reject.",
    ]
    from modelops.monitoring.explain_report import approval_markdown  # what drives it, what changed vs production

    return "\n".join(lines + approval_markdown(evaluation.get("explanation"), version))
