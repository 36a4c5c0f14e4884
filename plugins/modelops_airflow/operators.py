"""One thin operator per lifecycle step.

Each reads the Airflow context and params, calls the matching function in
``modelops.lifecycle`` and returns a small dict (ids, paths, metrics) as XCom.
Frames never go through XCom. Heavy imports happen inside ``execute``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, SkipMixin

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def run_context(context: Context, drift_asset_uri: str | None = None):
    """Airflow context -> the core's RunContext; asset-triggered runs take their window from the event."""
    from modelops.tracking import RunContext

    dag_run = context["dag_run"]
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    logical = context.get("logical_date")
    extra: dict[str, Any] = {}
    events = context.get("triggering_asset_events") or {}
    try:
        items = list(events.items())
    except AttributeError:
        items = []
    for _asset, evs in items:
        for ev in evs or []:
            ev_extra = dict(getattr(ev, "extra", None) or {})
            if ev_extra.get("data_interval_end"):
                extra = ev_extra  # the latest event wins
    if extra.get("data_interval_end") and logical is None:
        end_s = extra["data_interval_end"]
        return RunContext(dag_run.dag_id, dag_run.run_id, end_s, extra.get("data_interval_start"), end_s,
                          context["ti"].try_number, str(dag_run.run_type), {"trigger": extra})
    if end is None and logical is None:
        run_after = getattr(dag_run, "run_after", None)
        end = run_after
    return RunContext(dag_run.dag_id, dag_run.run_id, _iso(logical), _iso(start), _iso(end),
                      context["ti"].try_number, str(dag_run.run_type), {"trigger": extra} if extra else {})


def push_then_skip(op: Any, context: Context, result: dict[str, Any], tasks: list[Any]) -> None:
    """Skip ``tasks`` without losing ``result``.

    In Airflow 3 ``SkipMixin.skip`` raises ``DownstreamTasksSkipped``, so ``execute`` never
    returns and its return value is never pushed: push it first, as the XCom a return would make.
    """
    context["ti"].xcom_push(key="return_value", value=result)
    op.skip(ti=context["ti"], tasks=tasks)


def _fail_fast(execute: Any) -> Any:
    """``execute`` with the user's mistakes made final: a config, schema or data error (``UserInputError``)
    fails the task without retries (``AirflowFailException``), so the reason shows at the first try;
    anything else (object store, database, network) keeps Airflow's retries. An empty window of a
    monitoring task follows ``monitoring.on_empty_day``: fail, or skip with the reason."""

    @functools.wraps(execute)
    def wrapper(self: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        from modelops.errors import UserInputError

        try:
            return execute(self, context, *args, **kwargs)
        except UserInputError as exc:
            from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

            from modelops.data.validation import NoDataError

            cfg = getattr(self, "_cfg", None)
            if isinstance(exc, NoDataError) and self.empty_day_rule and cfg is not None and cfg.monitoring.on_empty_day == "skip":
                raise AirflowSkipException(f"skipped (monitoring.on_empty_day: skip): {exc}") from exc
            raise AirflowFailException(f"{type(exc).__name__} (not retried: fix the config or the data, then clear the task): "
                                       f"{exc}") from exc

    return wrapper


class ModelopsOperator(BaseOperator):
    """Loads the config and the connections, then runs one lifecycle step.

    Config, schema and data errors fail the task at once, without retries (see ``_fail_fast``).

    :param config_path: problem config YAML; default ``$MODELOPS_CONFIG`` or the demo config.
    """

    template_fields: Sequence[str] = ("config_path",)
    ui_color = "#e8f1fb"
    empty_day_rule = False  # monitoring tasks: an empty window follows monitoring.on_empty_day

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "execute" in cls.__dict__:
            cls.execute = _fail_fast(cls.__dict__["execute"])

    def __init__(self, *, config_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_path = config_path

    def load(self, context: Context):
        from modelops.config import load_config

        from modelops_airflow.hooks import ModelopsHook

        ModelopsHook().configure_environment()
        cfg = load_config(self.config_path)
        self._cfg = cfg
        return cfg, run_context(context)

    def pull(self, context: Context, task_id: str) -> Any:
        value = context["ti"].xcom_pull(task_ids=task_id)
        if value is None:
            raise ValueError(f"{self.task_id}: no result from upstream task '{task_id}'")
        return value


class ValidateDataOperator(ModelopsOperator):
    """Great Expectations suite from the config over the run's window; fails with a readable summary.

    :param window: ``training`` (the training window, params may override) or ``interval`` (the data interval).
    :param mlflow_parent_kind: the DAG run's parent MLflow run that keeps the validation result
        (``retrain``; the tuning DAG uses ``tune``).
    """

    ui_color = "#fdf1e1"

    def __init__(self, *, window: str = "training", mlflow_parent_kind: str = "retrain", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if window not in ("training", "interval"):
            raise ValueError("window must be 'training' or 'interval'")
        self.window = window
        self.empty_day_rule = window == "interval"
        self.mlflow_parent_kind = mlflow_parent_kind

    def execute(self, context: Context) -> dict[str, Any]:
        from modelops import lifecycle
        from modelops.data import storage

        cfg, ctx = self.load(context)
        params = context.get("params") or {}
        if self.window == "training":
            # Run params checked before any work (the Param schemas already refused wrong types at trigger time):
            # the cross-field rules a JSON schema cannot express, and the overrides against the tuned file.
            from modelops.config import load_hyperparameters

            load_hyperparameters(cfg, params.get("hyperparameter_overrides") or None)
            start, end = lifecycle.training_window(cfg, ctx, params.get("training_start"), params.get("training_end"))
        else:
            start = storage.as_day(ctx.data_interval_start or ctx.logical_date)
            end = storage.as_day(ctx.data_interval_end or ctx.logical_date)
            if start >= end:
                from modelops.errors import UserInputError

                raise UserInputError(f"empty data interval [{start}, {end}): schedule this DAG with an interval timetable")
        snapshot = "raw.parquet" if self.window == "training" else "current.parquet"
        parent = lifecycle.parent_run(cfg, ctx, self.mlflow_parent_kind) if self.window == "training" else None
        return lifecycle.validate_data(cfg, ctx, start, end, snapshot, mlflow_run_id=parent)


class BuildFeaturesOperator(ModelopsOperator):
    def __init__(self, *, validate_task_id: str = "validate_data", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validate_task_id = validate_task_id

    def execute(self, context: Context) -> dict[str, Any]:
        from modelops import lifecycle

        cfg, ctx = self.load(context)
        return lifecycle.build_features(cfg, ctx, self.pull(context, self.validate_task_id)["path"])


class TrainModelOperator(ModelopsOperator):
    """Train one booster (``xgboost`` or ``lightgbm``) with the tuned parameters plus run-param overrides."""

    template_fields: Sequence[str] = ("config_path", "model")
    ui_color = "#e6f5e9"

    def __init__(self, *, model: str, features_task_id: str = "build_features", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.features_task_id = features_task_id

    def execute(self, context: Context) -> dict[str, Any]:
        from modelops import lifecycle

        cfg, ctx = self.load(context)
        overrides = (context.get("params") or {}).get("hyperparameter_overrides") or {}
        return lifecycle.train_model(cfg, ctx, self.model, self.pull(context, self.features_task_id), overrides)


class BuildEnsembleOperator(ModelopsOperator):
    ui_color = "#e6f5e9"

    def execute(self, context: Context) -> dict[str, Any]:
        from modelops import lifecycle

        cfg, ctx = self.load(context)
        out = lifecycle.build_ensemble(cfg, ctx, self.pull(context, "build_features"), self.pull(context, "train_xgboost"),
                                       self.pull(context, "train_lightgbm"), self.pull(context, "validate_data"))
        note = (context.get("params") or {}).get("note")
        if note:
            from modelops.governance.registry import client

            client().set_tag(out["mlflow_run_id"], "modelops.note", str(note))
        return out


class EvaluateOperator(ModelopsOperator):
    def execute(self, context: Context) -> dict[str, Any]:
        from modelops import lifecycle

        cfg, ctx = self.load(context)
        return lifecycle.evaluate(cfg, ctx, self.pull(context, "build_features"), self.pull(context, "build_ensemble"))


class RegisterCandidateOperator(ModelopsOperator):
    def execute(self, context: Context) -> dict[str, Any]:
        from modelops import lifecycle

        cfg, ctx = self.load(context)
        return lifecycle.register_candidate(cfg, ctx, self.pull(context, "build_ensemble"), self.pull(context, "evaluate"),
                                            self.pull(context, "validate_data"))


class GateOperator(ModelopsOperator, SkipMixin):
    """Threshold AND beats production: passing sets the ``staging`` alias; failing tags ``rejected`` and skips downstream."""

    ui_color = "#fff4cc"
    inherits_from_skipmixin = True

    def execute(self, context: Context) -> dict[str, Any]:
        from modelops import lifecycle

        cfg, ctx = self.load(context)
        version = self.pull(context, "register_candidate")["version"]
        decision = lifecycle.gate(cfg, ctx, version, self.pull(context, "evaluate"))
        from modelops_airflow.health_metrics import after_gate

        after_gate(cfg, decision)  # gate_passes / gate_rejections counters (never fails the task)
        if not decision["passed"]:
            self.log.warning("v%s rejected by the gate: %s. Production is untouched.", version, "; ".join(decision["reasons"]))
            push_then_skip(self, context, decision, list(context["task"].get_flat_relatives(upstream=False)))
        return decision


class PromoteOperator(ModelopsOperator):
    """Move ``production`` to the approved version; archive the one it replaces."""

    ui_color = "#dff5e3"

    def execute(self, context: Context) -> dict[str, Any]:
        from modelops import lifecycle

        cfg, ctx = self.load(context)
        approval = self.pull(context, "approve_production")
        version = self.pull(context, "register_candidate")["version"]
        by = (approval.get("responded_by_user") or {}).get("id") or approval.get("recorded_by") or "unknown"
        return lifecycle.promote(cfg, version, by=by)


class SmokeTestOperator(ModelopsOperator):
    def execute(self, context: Context) -> dict[str, Any]:
        from modelops import lifecycle

        cfg, ctx = self.load(context)
        return lifecycle.smoke_test(cfg, ctx, self.pull(context, "build_features")["raw_sorted_path"])


class DetectDriftOperator(ModelopsOperator, SkipMixin):
    """KS + PSI per feature for the day vs the reference; stores the report; skips the alert path when no drift."""

    ui_color = "#fbe9e7"
    inherits_from_skipmixin = True

    def __init__(self, *, validate_task_id: str = "validate_current", on_drift_task_ids: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validate_task_id = validate_task_id
        self.on_drift_task_ids = list(on_drift_task_ids)

    def execute(self, context: Context) -> dict[str, Any]:
        from modelops import lifecycle

        cfg, ctx = self.load(context)
        current = self.pull(context, self.validate_task_id)
        from modelops.data.storage import as_day

        result = lifecycle.detect_drift(cfg, ctx, current["path"], as_day(current["start"]), as_day(current["end"]))
        result["data_interval_start"], result["data_interval_end"] = current["start"], current["end"]
        from modelops_airflow.health_metrics import after_drift

        after_drift(cfg, result)  # drift ratio, drifted features, attribution drift, open alerts, production age
        if not result["dataset_drift"] and self.on_drift_task_ids:
            tasks = [t for t in context["task"].get_direct_relatives(upstream=False) if t.task_id in self.on_drift_task_ids]
            push_then_skip(self, context, result, tasks)
        return result


class CheckTuningRequestOperator(ModelopsOperator):
    """Validate the tuning run's params against the config before any data is read; pushes the resolved request."""

    ui_color = "#f3e8fd"

    def execute(self, context: Context) -> dict[str, Any]:
        from modelops.training.tuning import resolve_request

        cfg, _ctx = self.load(context)
        req = resolve_request(cfg, dict(context.get("params") or {}))
        self.log.info("tuning %s: %d trials each, %.0f min budget, validation %s (%s), search spaces %s", req.models, req.n_trials,
                      req.timeout_seconds / 60, req.metric, req.direction, req.search_space)
        return req.to_dict()


class TuneModelOperator(ModelopsOperator):
    """Create or resume this run's Optuna study for one booster; skipped when the run did not ask for it."""

    template_fields: Sequence[str] = ("config_path", "model")
    ui_color = "#f3e8fd"

    def __init__(self, *, model: str, request_task_id: str = "check_request", features_task_id: str = "build_features",
                 validate_task_id: str = "validate_data", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.request_task_id = request_task_id
        self.features_task_id = features_task_id
        self.validate_task_id = validate_task_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from modelops.training import tuning

        cfg, ctx = self.load(context)
        request = self.pull(context, self.request_task_id)
        if self.model not in request["models"]:
            raise AirflowSkipException(f"{self.model} is not in params.models {request['models']}")
        return tuning.tune_model(cfg, ctx, self.model, request, self.pull(context, self.features_task_id),
                                 self.pull(context, self.validate_task_id))


class PublishHyperparametersOperator(ModelopsOperator):
    """Make the studies' best parameters live where they beat the current ones (new best_hyperparameters.json version)."""

    ui_color = "#dff5e3"

    def __init__(self, *, tune_task_ids: Sequence[str], request_task_id: str = "check_request", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tune_task_ids = list(tune_task_ids)
        self.request_task_id = request_task_id

    def execute(self, context: Context) -> dict[str, Any]:
        from modelops.training import tuning

        cfg, ctx = self.load(context)
        request = self.pull(context, self.request_task_id)
        results = [r for tid in self.tune_task_ids if (r := context["ti"].xcom_pull(task_ids=tid))]
        if not results:
            raise ValueError(f"{self.task_id}: none of {self.tune_task_ids} produced a study result")
        out = tuning.publish(cfg, ctx, results, apply=bool(request.get("apply", True)))
        note = (context.get("params") or {}).get("note")
        if note:
            from modelops.governance.registry import client

            client().set_tag(out["mlflow_run_id"], "modelops.note", str(note))
        return out


class EmitDriftEventOperator(ModelopsOperator):
    """Emit the drift Asset event (outlet) that schedules the retrain DAG, with the window in its extra."""

    ui_color = "#f8d7da"

    def __init__(self, *, drift_task_id: str = "detect_drift", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.drift_task_id = drift_task_id

    def execute(self, context: Context) -> dict[str, Any]:
        from modelops.config import load_config

        cfg = load_config(self.config_path)
        result = self.pull(context, self.drift_task_id)
        extra = {"model_name": cfg.model_name, "reason": "data_drift", "drift_ratio": result["drift_ratio"],
                 "drifted_features": result["drifted_features"], "data_interval_start": result["data_interval_start"],
                 "data_interval_end": result["data_interval_end"], "mlflow_run_id": result["mlflow_run_id"],
                 "model_version": result.get("production_version"), "drift_ratio_threshold": cfg.drift.drift_ratio_threshold,
                 "source_run_id": context["dag_run"].run_id}
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = extra
        self.log.warning("DRIFT for %s on %s: ratio %.2f, features %s -> retraining requested via %s", cfg.model_name,
                         result["day"], result["drift_ratio"], result["drifted_features"], [getattr(o, "uri", o) for o in self.outlets])
        return extra


# -- production monitoring ----------------------------------------------------------------------

def _interval(ctx: Any) -> tuple[Any, Any]:
    from modelops.data.storage import as_day

    start = as_day(ctx.data_interval_start or ctx.logical_date)
    end = as_day(ctx.data_interval_end or ctx.logical_date)
    if start >= end:
        from modelops.errors import UserInputError

        raise UserInputError(f"empty data interval [{start}, {end}): schedule this DAG with an interval timetable")
    return start, end


class BatchPredictOperator(ModelopsOperator):
    """Score the data interval's rows with ``models:/NAME@production`` (+ ``staging`` as shadow); log them.

    Validates the rows first (the drift suite, without the target's rules): on failure nothing is
    scored or stored. Skips when there is no production version yet; a day with no rows follows
    ``monitoring.on_empty_day`` (fail, the default, or skip), as ``drift_daily`` does.
    """

    ui_color = "#e3f2fd"
    empty_day_rule = True

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from modelops.monitoring import predictions

        cfg, ctx = self.load(context)
        start, end = _interval(ctx)
        out = predictions.batch_predict(cfg, ctx, start, end)
        if out.get("skipped"):
            raise AirflowSkipException(out["skipped"])
        return out


class EvaluatePerformanceOperator(ModelopsOperator, SkipMixin):
    """Join landed actuals to logged predictions, store daily/rolling metrics, judge against the baseline.

    :param on_degraded_task_ids: downstream tasks that only run when production is degraded.
    """

    ui_color = "#ede7f6"
    inherits_from_skipmixin = True

    def __init__(self, *, on_degraded_task_ids: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_degraded_task_ids = list(on_degraded_task_ids)

    def execute(self, context: Context) -> dict[str, Any]:
        from modelops import db
        from modelops.monitoring import alerts
        from modelops.monitoring import performance

        cfg, ctx = self.load(context)
        _start, end = _interval(ctx)
        out = performance.evaluate_performance(cfg, ctx, end)
        out["data_interval_start"], out["data_interval_end"] = _start.isoformat(), end.isoformat()
        if out["judged"] and not out["degraded"]:
            alerts.resolve(db.get_engine(), cfg.model_name, [alerts.PERFORMANCE_DEGRADED], f"within tolerance on {out['day']}")
        from modelops_airflow.health_metrics import after_performance

        after_performance(cfg, out)  # live metric, limit, baseline, open alerts, production age
        if not out["degraded"] and self.on_degraded_task_ids:
            tasks = [t for t in context["task"].get_direct_relatives(upstream=False) if t.task_id in self.on_degraded_task_ids]
            push_then_skip(self, context, out, tasks)
        return out


class EmitDegradationEventOperator(ModelopsOperator):
    """Emit the same Asset event as drift (it schedules the retrain DAG), with reason ``performance_degradation``."""

    ui_color = "#f8d7da"

    def __init__(self, *, performance_task_id: str = "evaluate_performance", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.performance_task_id = performance_task_id

    def execute(self, context: Context) -> dict[str, Any]:
        from modelops.config import load_config

        cfg = load_config(self.config_path)
        perf = self.pull(context, self.performance_task_id)
        extra = {"model_name": cfg.model_name, "reason": "performance_degradation", "metric": perf["metric"],
                 "value": perf["value"], "baseline": perf["baseline"], "limit": perf["limit"], "day": perf["day"],
                 "model_version": perf["model_version"], "rolling_n_rows": perf.get("rolling_n_rows"),
                 "rolling_window_days": perf.get("rolling_window_days"), "daily_value": perf.get("daily_value"),
                 "shadow": perf.get("shadow"), "degraded": True, "reason_text": perf.get("reason"),
                 "data_interval_start": perf["data_interval_start"], "data_interval_end": perf["data_interval_end"],
                 "mlflow_run_id": perf.get("mlflow_run_id"), "source_run_id": context["dag_run"].run_id}
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = extra
        self.log.warning("DEGRADED %s v%s: rolling %s %.4f vs limit %.4f (baseline %.4f) -> retraining requested via %s",
                         cfg.model_name, perf["model_version"], perf["metric"], perf["value"], perf["limit"], perf["baseline"],
                         [getattr(o, "uri", o) for o in self.outlets])
        return extra


class MonitoringReportOperator(ModelopsOperator):
    """Render the monitoring report for the last ``monitoring.report_days`` and log it to MLflow."""

    ui_color = "#e8f5e9"

    def __init__(self, *, performance_task_id: str | None = "evaluate_performance", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.performance_task_id = performance_task_id

    def execute(self, context: Context) -> dict[str, Any]:
        from modelops.monitoring.report import log_daily_report

        cfg, ctx = self.load(context)
        _start, end = _interval(ctx)
        perf = context["ti"].xcom_pull(task_ids=self.performance_task_id) if self.performance_task_id else None
        out = log_daily_report(cfg, ctx, end, perf if isinstance(perf, dict) else None)
        self.log.info("monitoring report [%s, %s) -> MLflow run %s (%s bytes, rendered in %.2f s)", out["start"], out["end"],
                      out["mlflow_run_id"], out["bytes"], out["render_seconds"])
        return out
