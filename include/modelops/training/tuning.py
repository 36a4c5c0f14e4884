"""Hyperparameter search with Optuna, on exactly the split and features training uses.

One study per booster and DAG run, stored in the package database (``settings.optuna_storage_url()``:
the SQLite file by default, PostgreSQL in the real stack), named
``<model_name>.<booster>.<dag_id>/<logical date>``. A retried or resumed task loads the same study,
marks the trial its dead predecessor left RUNNING as failed (and queues its parameters again),
counts the finished trials and runs only the remainder, within what is left of the time budget.

Each trial trains through ``lifecycle.fit_booster`` (the function training calls), reports the
booster's per-round validation curve to the pruner, scores the configured metric on the
validation split, and is logged as an MLflow child run of the study's run. The current
parameters are scored the same way once per study (the baseline); a study's best replaces them
only when it beats that baseline (see :func:`publish`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

from modelops.training import hyperparameters as H
from modelops import lifecycle, settings, tracking
from modelops.governance import registry
from modelops.data import storage
from modelops.config import (
    CLASSIFICATION_METRICS,
    DEFAULT_SEARCH_SPACE,
    METRICS,
    REGRESSION_METRICS,
    ModelopsConfig,
    SearchParam,
    check_search_space,
)
from modelops.tracking import RunContext

log = logging.getLogger(__name__)

KIND = "tune"
OPTUNA_PG_SCHEMA = "optuna"
MAX_TRIALS = 10000
MAX_TIMEOUT_MINUTES = 7 * 24 * 60


class TuningError(ValueError):
    """A tuning request or study that cannot be used; the message names the key or the study."""


# -- the request ------------------------------------------------------------------------------

@dataclass(frozen=True)
class TuningRequest:
    """Validated run params merged with the config's ``tuning:`` section (small: travels as XCom)."""

    models: list[str]
    n_trials: int
    timeout_seconds: float
    metric: str
    greater_is_better: bool
    search_space: dict[str, dict[str, dict[str, Any]]]
    apply: bool
    min_improvement: float
    sampler_startup_trials: int
    pruner: str
    pruner_startup_trials: int
    pruner_warmup_steps: int
    report_every: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TuningRequest:
        return cls(**d)

    @property
    def direction(self) -> str:
        return "maximize" if self.greater_is_better else "minimize"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def resolve_request(cfg: ModelopsConfig, params: dict[str, Any] | None) -> TuningRequest:
    """Check run params (types, ranges, names) before any work; unset params fall back to the config."""
    p = dict(params or {})
    t = cfg.tuning
    models = p.get("models") or ["xgboost", "lightgbm"]
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise TuningError(f"params.models must be a list of model names, got {models!r}")
    unknown = [m for m in models if m not in H.MODELS]
    if unknown or len(set(models)) != len(models):
        raise TuningError(f"params.models {models!r}: each of xgboost, lightgbm at most once (unknown: {unknown})")
    n_trials = p.get("n_trials")
    n_trials = t.n_trials if n_trials is None else n_trials
    if not _is_int(n_trials) or not 1 <= n_trials <= MAX_TRIALS:
        raise TuningError(f"params.n_trials must be an integer from 1 to {MAX_TRIALS}, got {n_trials!r}")
    timeout = p.get("timeout_minutes")
    timeout = t.timeout_minutes if timeout is None else timeout
    if not _is_number(timeout) or not 0 < float(timeout) <= MAX_TIMEOUT_MINUTES:
        raise TuningError(f"params.timeout_minutes must be a number in (0, {MAX_TIMEOUT_MINUTES}], got {timeout!r}")
    metric = p.get("metric") or cfg.tuning_metric
    allowed = REGRESSION_METRICS if cfg.task == "regression" else CLASSIFICATION_METRICS
    if metric not in allowed:
        raise TuningError(f"params.metric {metric!r} does not fit task '{cfg.task}'; choose one of {list(allowed)}")
    apply = p.get("apply", True)
    if not isinstance(apply, bool):
        raise TuningError(f"params.apply must be true or false, got {apply!r}")
    overrides = p.get("search_space") or {}
    if not isinstance(overrides, dict):
        raise TuningError(f"params.search_space must be a mapping {{model: {{parameter: spec}}}}, got {overrides!r}")
    space = {m: effective_search_space(cfg, m, overrides.get(m)) for m in models}
    extra = set(overrides) - set(H.MODELS)
    if extra:
        raise TuningError(f"params.search_space has unknown model sections {sorted(extra)} (expected xgboost, lightgbm)")
    return TuningRequest(
        models=list(models), n_trials=int(n_trials), timeout_seconds=float(timeout) * 60.0, metric=metric,
        greater_is_better=METRICS[metric], search_space=space, apply=apply, min_improvement=t.min_improvement,
        sampler_startup_trials=t.sampler_startup_trials, pruner=t.pruner, pruner_startup_trials=t.pruner_startup_trials,
        pruner_warmup_steps=t.pruner_warmup_steps, report_every=t.report_every,
    )


def effective_search_space(cfg: ModelopsConfig, model: str, override: Any = None) -> dict[str, dict[str, Any]]:
    """Defaults, then the config's ``tuning.search_space``, then the run param; ``null`` drops a parameter."""
    from pydantic import ValidationError

    merged: dict[str, Any] = dict(DEFAULT_SEARCH_SPACE[model])
    for name, spec in cfg.tuning.search_space.get(model, {}).items():
        merged[name] = None if spec is None else spec.model_dump(exclude_none=True, exclude_defaults=False)
    if override is not None:
        if not isinstance(override, dict):
            raise TuningError(f"params.search_space.{model} must be a mapping parameter -> spec, got {override!r}")
        merged.update(override)
    checked: dict[str, SearchParam | None] = {}
    for name, spec in merged.items():
        if spec is None:
            checked[name] = None
            continue
        try:
            checked[name] = SearchParam.model_validate(spec)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            raise TuningError(f"search space {model}.{name}{'.' + where if where else ''}: {err['msg']} (got {spec!r})") from None
    try:
        check_search_space(model, checked, "search_space")
    except ValueError as exc:
        raise TuningError(str(exc)) from None
    out = {k: v.model_dump(exclude_none=True) for k, v in checked.items() if v is not None}
    if not out:
        raise TuningError(f"the search space of {model} is empty: nothing to tune")
    return out


# -- storage and study ------------------------------------------------------------------------

def open_storage(url: str | None = None) -> Any:
    """Optuna RDB storage on the package database; on PostgreSQL its tables live in schema ``optuna``.

    Optuna names its tables ``studies``, ``trials``, ``alembic_version``...; a schema of their own
    keeps them from colliding with anything else in a shared database.
    """
    import optuna
    import sqlalchemy as sa

    url = url or settings.optuna_storage_url()
    backend = sa.engine.make_url(url).get_backend_name()
    kwargs: dict[str, Any]
    if backend == "sqlite":
        from modelops.db import get_engine

        get_engine(url)  # creates the parent directory of the file
        kwargs = {"connect_args": {"timeout": 60}}
    elif backend == "postgresql":
        from modelops.db import get_engine

        with get_engine(url).begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {OPTUNA_PG_SCHEMA}"))
        kwargs = {"pool_pre_ping": True, "connect_args": {"options": f"-csearch_path={OPTUNA_PG_SCHEMA}"}}
    else:
        kwargs = {"pool_pre_ping": True}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def redacted(url: str | None = None) -> str:
    import sqlalchemy as sa

    return sa.engine.make_url(url or settings.optuna_storage_url()).render_as_string(hide_password=True)


def study_name(cfg: ModelopsConfig, ctx: RunContext, which: str) -> str:
    """Same model + booster + DAG run (logical date) -> same study, so retries continue it."""
    return f"{cfg.model_name}.{which}.{ctx.run_key}"


def _fingerprint(req: TuningRequest, which: str, validation: dict[str, Any], features: dict[str, Any], cfg: ModelopsConfig) -> str:
    """What must not change between the tries of one study (n_trials and the time budget may)."""
    doc = {"metric": req.metric, "space": req.search_space[which], "data": validation.get("fingerprint"),
           "split": features.get("split"), "early_stopping_rounds": cfg.training.early_stopping_rounds,
           "seed": cfg.training.seed, "target_transform": cfg.training.target_transform}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _suggest(trial: Any, name: str, spec: dict[str, Any]) -> Any:
    kind = spec["type"]
    if kind == "categorical":
        return trial.suggest_categorical(name, spec["choices"])
    if kind == "int":
        step = int(spec.get("step") or 1)
        return trial.suggest_int(name, int(spec["low"]), int(spec["high"]), step=step, log=bool(spec.get("log")))
    return trial.suggest_float(name, float(spec["low"]), float(spec["high"]), step=spec.get("step"), log=bool(spec.get("log")))


def _pruner(req: TuningRequest) -> Any:
    import optuna

    if req.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=req.pruner_startup_trials, n_warmup_steps=req.pruner_warmup_steps)
    if req.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, req.pruner_warmup_steps))
    return optuna.pruners.NopPruner()


def recover_interrupted(study: Any) -> list[int]:
    """Trials left RUNNING by a killed try become FAIL (their MLflow run KILLED) and their parameters are queued again.

    Safe because one task instance owns a study at a time: Airflow runs the tries of a task
    one after another, and the study name is unique to the model and the DAG run.
    """
    from optuna.trial import TrialState

    recovered = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
        run_id = t.user_attrs.get("mlflow_run_id")
        if run_id:
            registry.client().set_tag(run_id, "optuna.state", "INTERRUPTED")
            tracking.finish_run(run_id, "KILLED")
        if t.params:
            study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number})
        recovered.append(t.number)
    if recovered:
        log.warning("study %s: trials %s were interrupted (left RUNNING by an earlier try); marked FAIL, parameters queued again",
                    study.study_name, recovered)
    return recovered


def _finished(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def _seconds_used(trials: list[Any]) -> float:
    return sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trials if t.datetime_complete and t.datetime_start)


# -- one study ------------------------------------------------------------------------------------

def score_params(cfg: ModelopsConfig, which: str, parts: dict[str, Any], params: dict[str, Any], categorical: list[str],
                 metric: str, on_iteration: Any = None) -> tuple[float, dict[str, Any]]:
    """Train with ``params`` exactly as training does and score ``metric`` on the validation split."""
    from modelops import metrics as M
    from modelops.training.ensemble import predict_raw

    tt = cfg.training.target_transform if cfg.task == "regression" else "none"
    model, info = lifecycle.fit_booster(cfg, which, parts, params, categorical, on_iteration)
    X_va, _, y_va_raw = parts["validation"]
    pred = lifecycle.inverse_transform(tt)(predict_raw(model, X_va, cfg.task))
    return float(M.compute(cfg.task, y_va_raw, pred, cfg.evaluation.decision_threshold)[metric]), info


def tune_model(cfg: ModelopsConfig, ctx: RunContext, which: str, request: dict[str, Any] | TuningRequest,
               features: dict[str, Any], validation: dict[str, Any]) -> dict[str, Any]:
    """Create or resume this run's study for ``which``, run the remaining trials, log everything; returns a small summary."""
    import optuna
    from optuna.trial import TrialState

    from modelops import metrics as M

    req = request if isinstance(request, TuningRequest) else TuningRequest.from_dict(request)
    if which not in req.models:
        raise TuningError(f"{which} is not among the requested models {req.models}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.monotonic()
    tt = cfg.training.target_transform if cfg.task == "regression" else "none"
    parts = lifecycle._load_split(features["features_path"], tt, ("train", "validation"))
    categorical = lifecycle._read_pickle(features["builder_path"]).categorical_feature_names

    name = study_name(cfg, ctx, which)
    storage_ = open_storage()
    study = optuna.create_study(study_name=name, storage=storage_, direction=req.direction, load_if_exists=True)
    fp = _fingerprint(req, which, validation, features, cfg)
    attrs = study.user_attrs
    parent = lifecycle.parent_run(cfg, ctx, KIND)
    study_run = tracking.get_or_create_run(cfg.mlflow.experiment, ctx, f"{KIND}_{which}", f"study-{which}",
                                           {"modelops.model_name": cfg.model_name, "optuna.study_name": name,
                                            "optuna.storage": redacted(), "optuna.direction": req.direction,
                                            "modelops.tuning.metric": req.metric}, parent_run_id=parent)
    if "fingerprint" not in attrs:
        # First try: pin what the study compares against, so a resume uses the same base and baseline.
        current = H.load_active(cfg)
        base = current.params.get(which, {})
        baseline, _ = score_params(cfg, which, parts, base, categorical, req.metric)
        for k, v in {"fingerprint": fp, "metric": req.metric, "base_params": base, "base_params_hash": H.params_hash(base),
                     "base_params_file": current.path, "baseline_value": baseline, "mlflow_run_id": study_run}.items():
            study.set_user_attr(k, v)
        attrs = study.user_attrs
        log.info("study %s created; current %s parameters (%s) score validation %s %.6g", name, which, current.path, req.metric, baseline)
    elif attrs["fingerprint"] != fp:
        raise TuningError(
            f"study {name} in {redacted()} was started with another metric, search space or data "
            f"(fingerprint {attrs['fingerprint']} vs {fp}); trigger a new run (another logical date) instead of resuming this one")
    base, baseline = dict(attrs["base_params"]), float(attrs["baseline_value"])

    interrupted = recover_interrupted(study)
    done = _finished(study)
    remaining = max(0, req.n_trials - len(done))
    time_left = req.timeout_seconds - _seconds_used(done)
    study.sampler = optuna.samplers.TPESampler(seed=cfg.training.seed + len(study.trials), n_startup_trials=req.sampler_startup_trials)
    study.pruner = _pruner(req)
    log.info("study %s: %d trials finished, %d to run, %.0f s of the time budget left", name, len(done), remaining, max(time_left, 0))

    exp_id = registry.ensure_experiment(cfg.mlflow.experiment)
    sign = -1.0 if req.greater_is_better else 1.0  # booster curves are lower-is-better; the pruner follows the study direction
    client = registry.client()

    def objective(trial: Any) -> float:
        suggested = {n: _suggest(trial, n, spec) for n, spec in req.search_space[which].items()}
        params = {**base, **suggested}
        run = client.create_run(exp_id, run_name=f"{which}-trial-{trial.number}", tags={
            **ctx.lineage_tags(), "modelops.kind": f"{KIND}_{which}_trial", "mlflow.parentRunId": study_run,
            "optuna.study_name": name, "optuna.trial_number": str(trial.number)})
        run_id = run.info.run_id
        trial.set_user_attr("mlflow_run_id", run_id)
        tracking.log_params(run_id, params)
        seen: dict[str, float] = {}

        def on_iteration(step: int, value: float) -> None:
            if (step + 1) % req.report_every:
                return
            trial.report(sign * value, step)
            seen.update(step=step, value=value)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at round {step + 1}: validation curve {value:.6g}")

        try:
            score, info = score_params(cfg, which, parts, params, categorical, req.metric, on_iteration)
        except optuna.TrialPruned:
            client.set_tag(run_id, "optuna.state", "PRUNED")
            tracking.log_metrics(run_id, {"pruned_at_round": seen.get("step", 0) + 1, "validation_curve_last": seen.get("value")})
            tracking.finish_run(run_id)
            raise
        except BaseException:
            client.set_tag(run_id, "optuna.state", "FAIL")
            tracking.finish_run(run_id, "FAILED")
            raise
        client.set_tag(run_id, "optuna.state", "COMPLETE" if math.isfinite(score) else "FAIL")
        tracking.log_metrics(run_id, {f"validation_{req.metric}": score, "best_iteration": info["best_iteration"]})
        tracking.finish_run(run_id)
        return score

    def report(study_: Any, t: Any) -> None:
        done = t.state == TrialState.COMPLETE  # a pruned trial's value is its last curve point, not the metric
        log.info("%s trial %d %s%s", which, t.number, t.state.name, f": validation {req.metric} {t.value:.6g}" if done else "")

    ran_before = len(study.trials)
    if remaining and time_left > 0:
        study.optimize(objective, n_trials=remaining, timeout=time_left, callbacks=[report], gc_after_trial=False,
                       catch=_booster_errors())
    elif remaining:
        log.warning("study %s: time budget of %.0f s is used up; not starting more trials", name, req.timeout_seconds)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    counts = {s.name.lower(): sum(1 for t in trials if t.state == s) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    if not complete:
        tracking.finish_run(study_run, "FAILED")
        raise TuningError(f"study {name}: no trial completed ({counts}); widen the search space or raise n_trials/timeout")
    best = study.best_trial
    better = M.is_better(float(best.value), baseline, req.greater_is_better, req.min_improvement)
    best_params = {**base, **best.params}

    tracking.log_params(study_run, {"n_trials": req.n_trials, "timeout_seconds": req.timeout_seconds, "metric": req.metric,
                                    "search_space": req.search_space[which], "pruner": req.pruner, "seed": cfg.training.seed})
    tracking.log_metrics(study_run, {f"best_validation_{req.metric}": best.value, f"baseline_validation_{req.metric}": baseline,
                                     "best_trial": best.number, "trials_complete": counts["complete"],
                                     "trials_pruned": counts["pruned"], "trials_failed": counts["fail"]})
    for k, v in {"optuna.best_trial": str(best.number), "optuna.best_trial_run_id": best.user_attrs.get("mlflow_run_id", ""),
                 "modelops.tuning.beats_current": str(better).lower()}.items():
        client.set_tag(study_run, k, v)
    tracking.log_json(study_run, {"params": best_params, "trial": best.number, "value": best.value, "baseline_value": baseline,
                                  "base_params": base}, "best_params.json")
    _log_study_artifacts(study_run, study, f"{which}: validation {req.metric}")
    tracking.finish_run(study_run)
    elapsed = time.monotonic() - started
    log.info("study %s: best trial %d validation %s %.6g vs current %.6g -> %s (%d trials run now, %.1f s)", name, best.number,
             req.metric, best.value, baseline, "better" if better else "not better", len(trials) - ran_before, elapsed)
    return {"model": which, "study_name": name, "storage": redacted(), "metric": req.metric, "direction": req.direction,
            "best_trial": best.number, "best_value": float(best.value), "best_params": best_params,
            "best_trial_mlflow_run_id": best.user_attrs.get("mlflow_run_id"), "mlflow_run_id": study_run,
            "baseline_value": baseline, "baseline_params_hash": attrs["base_params_hash"], "better": better,
            "trials": counts, "interrupted_trials": interrupted, "trials_run_now": len(trials) - ran_before,
            "seconds": round(elapsed, 2)}


def _booster_errors() -> tuple[type[BaseException], ...]:
    """Errors of one parameter combination (a trial fails, the study goes on); anything else fails the task."""
    import lightgbm as lgb
    import xgboost as xgb

    return (xgb.core.XGBoostError, lgb.basic.LightGBMError)


def _log_study_artifacts(run_id: str, study: Any, title: str) -> None:
    """Optimisation history and parameter importance PNGs, plus every trial as CSV."""
    import warnings

    from modelops.plots import _log_fig, pyplot

    pyplot()  # optuna draws through pyplot
    from optuna.visualization import matplotlib as ovm

    client = registry.client()
    frame = study.trials_dataframe()
    client.log_text(run_id, frame.to_csv(index=False), "trials/trials.csv")
    for fname, fn in (("optimization_history.png", ovm.plot_optimization_history), ("param_importances.png", ovm.plot_param_importances)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # optuna's matplotlib plots are flagged experimental
                ax = fn(study)
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            fig.suptitle(title)
            _log_fig(run_id, fig, "plots", fname)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:  # e.g. importances need 2+ complete trials
            log.warning("no %s for study %s: %s", fname, study.study_name, exc)


# -- publish ----------------------------------------------------------------------------------

def publish(cfg: ModelopsConfig, ctx: RunContext, results: list[dict[str, Any]], apply: bool = True) -> dict[str, Any]:
    """Replace a model's section of the live file only where its study beat the current parameters.

    Idempotent per DAG run: a retry finds its own version already live and reports it again.
    """
    active = H.load_active(cfg)
    version = storage.safe_key(ctx.run_key)
    parent = lifecycle.parent_run(cfg, ctx, KIND)
    client = registry.client()
    if active.tuned and active.meta.get("version") == version:
        log.info("hyperparameters version %s is already live (%s)", version, active.path)
        return {"version": version, "applied": True, "live_path": active.path, "decisions": active.meta.get("decisions", {}),
                "reused": True, "mlflow_run_id": parent}

    params = {m: dict(v) for m, v in active.params.items()}
    models_meta = {m: active.provenance(m) for m in H.MODELS}
    decisions: dict[str, dict[str, Any]] = {}
    for r in results:
        m = r["model"]
        summary = {"metric": r["metric"], "best_value": r["best_value"], "current_value": r["baseline_value"], "study": r["study_name"],
                   "trial": r["best_trial"]}
        if not r["better"]:
            decisions[m] = {**summary, "applied": False, "reason": f"best trial does not beat the current parameters on validation "
                            f"{r['metric']} ({r['best_value']:.6g} vs {r['baseline_value']:.6g}, min_improvement {cfg.tuning.min_improvement:g})"}
        elif H.params_hash(active.params.get(m, {})) != r["baseline_params_hash"]:
            decisions[m] = {**summary, "applied": False, "reason": f"the current {m} parameters in {active.path} changed after the "
                            "study scored them; re-run tuning against the new ones"}
        else:
            params[m] = r["best_params"]
            models_meta[m] = {"source": "tuning", "study": r["study_name"], "trial": r["best_trial"],
                              "mlflow_run_id": r["best_trial_mlflow_run_id"], "study_mlflow_run_id": r["mlflow_run_id"],
                              "metric": r["metric"], "value": r["best_value"], "baseline_value": r["baseline_value"],
                              "from_version": version, "storage": r["storage"]}
            decisions[m] = {**summary, "applied": apply, "reason": "beats the current parameters" + ("" if apply else " (apply=false: not made live)")}
    better = [m for m, d in decisions.items() if d["reason"].startswith("beats")]
    meta = {"version": version, "created_at": H.now_iso(), "source": "tune_hyperparameters", "dag_id": ctx.dag_id, "run_id": ctx.run_id,
            "logical_date": ctx.logical_date, "tuning_mlflow_run_id": parent, "previous_file": active.path,
            "previous_version": active.meta.get("version") if active.tuned else None, "models": models_meta, "decisions": decisions}
    out: dict[str, Any] = {"version": version, "applied": bool(better) and apply, "decisions": decisions, "reused": False,
                           "mlflow_run_id": parent}
    if better:
        out.update(H.write_version(cfg, params, meta, make_live=apply))
        client.log_text(parent, json.dumps({"_meta": meta, **params}, indent=2, default=str), "hyperparameters/best_hyperparameters.json")
    tracking.log_json(parent, {"decisions": decisions, "results": results, "active_before": active.path}, "hyperparameters/decision.json")
    for k, v in {"modelops.tuning.applied": str(out["applied"]).lower(), "modelops.hyperparameters.version": version if better else "",
                 "modelops.tuning.models": ",".join(r["model"] for r in results)}.items():
        client.set_tag(parent, k, v)
    tracking.finish_run(parent)
    for m, d in decisions.items():
        log.info("%s: %s", m, d["reason"])
    if out["applied"]:
        log.info("new hyperparameters %s live at %s (copy %s)", version, out["live_path"], out["version_path"])
    return out
