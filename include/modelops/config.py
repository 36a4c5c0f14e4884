"""The one YAML file that describes a supervised problem.

Pointing the package at another dataset means editing this file, never code.
Errors name the file and the key (with a "did you mean" for typos) so a bad
config fails at DAG parse time or task start with a sentence, not a stack trace.
"""

import difflib
import hashlib
import json
import logging
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# Shared with the parse-time loader (dag_config.py), which must not import pydantic models.
from modelops.config_io import (  # noqa: F401 - re-exported: callers import them from here
    CLASSIFICATION_METRICS,
    CONFIG_ENV,
    DEFAULT_CONFIG,
    METRICS,
    PERCENTAGE_METRICS,
    REGRESSION_METRICS,
    ConfigError,
    config_path,
    expand_env,
    hyperparameter_overrides_schema,
    read_raw,
)
from modelops.config_io import _ENV_RE

log = logging.getLogger(__name__)
from modelops.config_io import HP_TYPES as _HP_TYPES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Where the data is and what shape it has (README: "Bring your own data")."""

    # partitioned: <path>/<partition_column>=YYYY-MM-DD/*.<format> (one folder per day);
    # files: ``path`` is one file or a glob of files, rows picked by ``timestamp_column`` (pushed down).
    layout: Literal["partitioned", "files"] = "partitioned"
    path: str = Field(description="partitioned: root of the day folders; files: a file or a glob (*.parquet); local or s3://")
    format: Literal["parquet", "csv"] = "parquet"
    partition_column: str = Field("date", description="Hive-style partition key: <path>/<key>=YYYY-MM-DD/")
    timestamp_column: str
    # Optional: event data without an entity gets target history over all rows per day.
    entity_column: str | None = None
    target_column: str
    allow_extra_columns: bool = True
    csv_delimiter: str = ","
    csv_encoding: str = "utf-8"
    # CSV cells read as missing. Nothing else is: "n/a" or "unknown" stay strings and fail a numeric column.
    na_values: list[str] = Field(default_factory=lambda: [""])


class FeaturesConfig(_Strict):
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    calendar: bool = True
    # Target lags/rolling stats are per entity and shifted by at least
    # ``horizon_days`` so a row never sees its own or too-recent actuals.
    horizon_days: int = Field(7, ge=1)
    target_lags: list[int] = Field(default_factory=lambda: [7, 14, 28])
    target_rolling_windows: list[int] = Field(default_factory=lambda: [7, 28])
    entity_as_feature: bool = True
    # How the rows of one entity on one day become the one value a lag or rolling mean reads:
    # "last" (the latest row; needs one row per entity and timestamp) or an aggregate of the day's rows.
    target_aggregation: Literal["last", "mean", "sum", "count", "min", "max"] = "last"

    @model_validator(mode="after")
    def _lags_respect_horizon(self) -> "FeaturesConfig":
        bad = [lag for lag in self.target_lags if lag < self.horizon_days]
        if bad:
            raise ValueError(
                f"features.target_lags {bad} are shorter than features.horizon_days={self.horizon_days}: "
                "they would use actuals not yet known at prediction time"
            )
        if any(w < 1 for w in self.target_rolling_windows):
            raise ValueError("features.target_rolling_windows must be >= 1")
        overlap = set(self.numeric) & set(self.categorical)
        if overlap:
            raise ValueError(f"features {sorted(overlap)} are listed as both numeric and categorical")
        return self


class RangeRule(_Strict):
    min: float | None = None
    max: float | None = None


class TargetRule(_Strict):
    min: float | None = None
    max: float | None = None
    allow_null: bool = False


class ValidationConfig(_Strict):
    min_rows: int = Field(1, ge=0)
    ranges: dict[str, RangeRule] = Field(default_factory=dict)
    categories: dict[str, list[str]] = Field(default_factory=dict)
    target: TargetRule = TargetRule()
    non_null: list[str] = Field(default_factory=list, description="Feature columns that may not be null")
    max_failure_examples: int = Field(5, ge=1)
    # Columns whose combination must be unique (on top of what the features need, see ModelopsConfig.unique_key).
    unique_columns: list[str] = Field(default_factory=list)
    # Distinct values of a categorical feature (without a validation.categories list): warn above
    # warn_categories, fail above max_categories (each is a code the boosters must learn).
    warn_categories: int = Field(1000, ge=1)
    max_categories: int = Field(10000, ge=1)


class SplitConfig(_Strict):
    train: float = Field(0.70, gt=0, lt=1)
    validation: float = Field(0.15, gt=0, lt=1)
    test: float = Field(0.15, gt=0, lt=1)

    @model_validator(mode="after")
    def _sums_to_one(self) -> "SplitConfig":
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"training.split must sum to 1.0, got {total:.4f}")
        return self


class EnsembleConfig(_Strict):
    weights: dict[Literal["xgboost", "lightgbm"], float] = Field(
        default_factory=lambda: {"xgboost": 0.4, "lightgbm": 0.6}
    )
    fit_on_validation: bool = False

    @field_validator("weights")
    @classmethod
    def _weights_valid(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != {"xgboost", "lightgbm"}:
            raise ValueError("training.ensemble.weights needs exactly the keys xgboost and lightgbm")
        if any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError("training.ensemble.weights must be non-negative and not all zero")
        return v


class TrainingConfig(_Strict):
    window_days: int = Field(365, ge=7)
    split: SplitConfig = SplitConfig()
    early_stopping_rounds: int = Field(50, ge=1)
    target_transform: Literal["none", "log1p"] = "none"
    ensemble: EnsembleConfig = EnsembleConfig()
    hyperparameters_file: str = "best_hyperparameters.json"
    seed: int = 42
    use_float32: bool = True


class EvaluationConfig(_Strict):
    metric: str
    threshold: float
    # Candidate must beat production by at least this much (absolute, in metric units).
    min_improvement: float = Field(0.0, ge=0)
    positive_label: int = 1
    decision_threshold: float = Field(0.5, gt=0, lt=1)


class DriftConfig(_Strict):
    reference: Literal["production_training", "window"] = "production_training"
    reference_window_days: int = Field(90, ge=1)
    ks_pvalue: float = Field(0.01, gt=0, lt=1)
    # KS p-values flag negligible shifts at large n; a feature only drifts by KS
    # when the p-value is small AND the statistic (an effect size) is material.
    ks_statistic_min: float = Field(0.1, ge=0, le=1)
    psi_threshold: float = Field(0.2, ge=0)
    psi_bins: int = Field(10, ge=2)
    psi_epsilon: float = Field(1e-4, gt=0)
    rule: Literal["ks_and_psi", "ks_or_psi", "ks", "psi"] = "ks_or_psi"
    drift_ratio_threshold: float = Field(0.3, gt=0, le=1)
    features: list[str] | None = Field(None, description="Subset to monitor; default: all configured features")


class ApprovalConfig(_Strict):
    approvers: list[str] = Field(min_length=1)
    timeout_hours: float = Field(168.0, gt=0)


class AlertsConfig(_Strict):
    """Where alerts go: Airflow connection ids, so secrets stay in Airflow, not in this file.

    A connection that does not exist means "log only" for that channel, never a failure.
    """

    webhook_conn_id: str = "modelops_alerts_webhook"
    email_conn_id: str = "modelops_alerts_smtp"
    email_to: list[str] = Field(default_factory=list)
    email_from: str = "airflow-modelops@localhost"


class MonitoringConfig(_Strict):
    """Production monitoring: batch scoring, the shadow challenger and the degradation rule."""

    # Score the ``staging`` version on the same rows as production while it waits for approval.
    shadow: bool = True
    # The live metric that decides is pooled over the labelled rows of this many days.
    rolling_window_days: int = Field(7, ge=1)
    # How far back each run looks for actuals that landed since the predictions were made.
    ground_truth_lookback_days: int = Field(28, ge=1)
    # A window with fewer labelled rows is reported but never judged (too noisy to alert on).
    min_rows: int = Field(50, ge=1)
    # Degraded when the rolling metric is worse than the production version's test-set baseline
    # by more than ``tolerance``: relative (0.25 = 25 % worse) or absolute (metric units).
    tolerance: float = Field(0.25, ge=0)
    tolerance_mode: Literal["relative", "absolute"] = "relative"
    # Days shown in the daily HTML report logged to MLflow.
    report_days: int = Field(30, ge=1)
    alerts: AlertsConfig = AlertsConfig()
    # A day with no rows in drift_daily and batch_predict_daily: fail (no retries) or skip, both with the reason.
    on_empty_day: Literal["fail", "skip"] = "fail"


class PerPredictionExplainConfig(_Strict):
    """Opt-in: batch predictions store each row's largest SHAP contributions next to the prediction."""

    enabled: bool = False
    top_k: int = Field(5, ge=1, le=50)
    roles: list[Literal["production", "shadow"]] = Field(default_factory=lambda: ["production", "shadow"])
    # Exact TreeSHAP costs ~50-100x the scoring itself (README, Benchmarks): a bound for very large batches.
    # Rows past it (a seeded sample is kept) get their prediction with empty shap_* columns.
    max_rows: int | None = Field(None, ge=1, description="Rows explained per day and role; null: every row")


class AttributionDriftConfig(_Strict):
    """Each drift day: the order of mean |SHAP| on the day vs the production version's test window."""

    enabled: bool = True
    # Flagged when Spearman's rank correlation of the two importance vectors falls below this.
    min_rank_correlation: float = Field(0.8, ge=-1, le=1)
    max_rows: int = Field(20000, ge=10, description="Rows of the day explained (a seeded sample above this)")


class ExplainConfig(_Strict):
    """Explanations: per version at evaluate time, per prediction (opt-in), attribution drift per day."""

    enabled: bool = Field(True, description="SHAP + permutation importance of each candidate on its test window")
    max_rows: int = Field(20000, ge=10, description="Test-window rows explained (a seeded sample above this)")
    permutation_repeats: int = Field(3, ge=1, le=50)
    top_features: int = Field(10, ge=1, le=200, description="Features shown on the approval form and in reports")
    per_prediction: PerPredictionExplainConfig = PerPredictionExplainConfig()
    attribution_drift: AttributionDriftConfig = AttributionDriftConfig()


class MlflowConfig(_Strict):
    experiment: str


# -- tuning ---------------------------------------------------------------------------

class SearchParam(_Strict):
    """One dimension of an Optuna search space (``int``/``float`` range or ``categorical`` choices)."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(None, gt=0)
    choices: list[str | int | float | bool] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "SearchParam":
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("categorical needs a non-empty 'choices' list")
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                raise ValueError("categorical takes only 'choices' (no low/high/log/step)")
            return self
        if self.choices is not None:
            raise ValueError(f"{self.type} takes low/high, not 'choices'")
        if self.low is None or self.high is None:
            raise ValueError(f"{self.type} needs both 'low' and 'high'")
        if self.low >= self.high:
            raise ValueError(f"low must be below high, got low={self.low:g} high={self.high:g}")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0, got low={self.low:g}")
        if self.log and self.step is not None:
            raise ValueError("'log' and 'step' cannot be combined")
        if self.type == "int" and any(v is not None and float(v) != int(v) for v in (self.low, self.high, self.step)):
            raise ValueError("int ranges need whole-number low/high/step")
        return self


# What a search space may tune, and what type each parameter must be (mirrors the boosters).
_TUNABLE_INT = {"xgboost": {"n_estimators", "max_depth", "max_bin"},
                "lightgbm": {"n_estimators", "num_leaves", "max_depth", "subsample_freq", "min_child_samples", "max_bin"}}

SearchSpace = dict[str, SearchParam | None]

# Defaults per booster: wide but sane ranges; n_estimators stays fixed (early stopping trims it).
DEFAULT_SEARCH_SPACE: dict[str, dict[str, dict[str, Any]]] = {
    "xgboost": {
        "max_depth": {"type": "int", "low": 3, "high": 10},
        "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
        "subsample": {"type": "float", "low": 0.5, "high": 1.0},
        "colsample_bytree": {"type": "float", "low": 0.5, "high": 1.0},
        "min_child_weight": {"type": "float", "low": 1.0, "high": 20.0, "log": True},
        "reg_lambda": {"type": "float", "low": 0.001, "high": 10.0, "log": True},
        "reg_alpha": {"type": "float", "low": 0.001, "high": 10.0, "log": True},
    },
    "lightgbm": {
        "num_leaves": {"type": "int", "low": 15, "high": 255, "log": True},
        "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
        "min_child_samples": {"type": "int", "low": 5, "high": 100, "log": True},
        "subsample": {"type": "float", "low": 0.5, "high": 1.0},
        "colsample_bytree": {"type": "float", "low": 0.5, "high": 1.0},
        "reg_lambda": {"type": "float", "low": 0.001, "high": 10.0, "log": True},
        "reg_alpha": {"type": "float", "low": 0.001, "high": 10.0, "log": True},
    },
}


def check_search_space(model: str, space: dict[str, SearchParam | None], where: str) -> None:
    """Parameter names must be ones the booster takes, and int parameters need int ranges."""
    known = _HP_TYPES[model]
    for name, spec in space.items():
        if name not in known:
            hint = difflib.get_close_matches(name, list(known), n=1)
            raise ValueError(f"{where}.{model}.{name}: not a tunable {model} parameter"
                             + (f" (did you mean '{hint[0]}'?)" if hint else f" (known: {', '.join(sorted(known))})"))
        if spec is None:
            continue
        if known[name] is str and spec.type != "categorical":
            raise ValueError(f"{where}.{model}.{name}: a string parameter needs type categorical, got {spec.type}")
        if name in _TUNABLE_INT[model] and spec.type == "float":
            raise ValueError(f"{where}.{model}.{name}: an integer parameter needs type int or categorical, got float")
        if spec.type != "categorical" and spec.low is not None and spec.low < 0:
            raise ValueError(f"{where}.{model}.{name}: low must be >= 0, got {spec.low:g}")


class TuningConfig(_Strict):
    """Defaults of the ``tune_hyperparameters`` DAG; its run params override the first four."""

    n_trials: int = Field(30, ge=1, le=10000)
    timeout_minutes: float = Field(60.0, gt=0, le=7 * 24 * 60)
    metric: str | None = Field(None, description="Objective on the validation split; default evaluation.metric")
    # A tuned file replaces the current one only when better by at least this much (metric units).
    min_improvement: float = Field(0.0, ge=0)
    sampler_startup_trials: int = Field(10, ge=0, description="Random trials before TPE models the space")
    pruner: Literal["median", "successive_halving", "none"] = "median"
    pruner_startup_trials: int = Field(5, ge=0, description="Finished trials before the median pruner acts")
    pruner_warmup_steps: int = Field(50, ge=0, description="Boosting rounds a trial always gets before it can be pruned")
    report_every: int = Field(5, ge=1, description="Report the validation curve to the pruner every N rounds")
    search_space: dict[Literal["xgboost", "lightgbm"], SearchSpace] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _space_ok(self) -> "TuningConfig":
        for model, space in self.search_space.items():
            check_search_space(model, space, "tuning.search_space")
        return self


class ModelopsConfig(_Strict):
    model_name: str
    task: Literal["regression", "classification"]
    description: str = ""
    data: DataConfig
    features: FeaturesConfig
    validation: ValidationConfig = ValidationConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig
    drift: DriftConfig = DriftConfig()
    approval: ApprovalConfig
    mlflow: MlflowConfig
    tuning: TuningConfig = TuningConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    explain: ExplainConfig = ExplainConfig()

    # Filled by load_config, not by the YAML.
    source_path: str = ""
    config_hash: str = ""

    @field_validator("model_name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", v):
            raise ValueError("model_name may only contain letters, digits, '_', '.', '-'")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> "ModelopsConfig":
        metric = self.evaluation.metric
        allowed = REGRESSION_METRICS if self.task == "regression" else CLASSIFICATION_METRICS
        if metric not in allowed:
            raise ValueError(f"evaluation.metric '{metric}' does not fit task '{self.task}'; choose one of {list(allowed)}")
        cols = {c for c in (self.data.timestamp_column, self.data.entity_column, self.data.target_column) if c}
        clash = cols & (set(self.features.numeric) | set(self.features.categorical))
        if clash:
            raise ValueError(f"features may not include key/target columns {sorted(clash)}")
        known = set(self.features.numeric) | set(self.features.categorical) | cols
        for section, keys in (("validation.ranges", self.validation.ranges), ("validation.categories", self.validation.categories),
                              ("validation.unique_columns", self.validation.unique_columns)):
            unknown = set(keys) - known
            if unknown:
                raise ValueError(f"{section} names columns {sorted(unknown)} that are not features, keys or target")
        if self.drift.features:
            unknown = set(self.drift.features) - set(self.features.numeric) - set(self.features.categorical)
            if unknown:
                raise ValueError(f"drift.features names {sorted(unknown)} that are not configured features")
        if self.tuning.metric is not None and self.tuning.metric not in allowed:
            raise ValueError(f"tuning.metric '{self.tuning.metric}' does not fit task '{self.task}'; choose one of {list(allowed)}")
        if self.task == "classification" and self.training.target_transform != "none":
            raise ValueError("training.target_transform must be 'none' for classification")
        lo = self.validation.target.min
        if self.training.target_transform == "log1p" and lo is not None and lo < 0:
            raise ValueError(f"training.target_transform log1p needs a non-negative target, but validation.target.min is {lo:g}")
        if metric in PERCENTAGE_METRICS and lo is not None and lo < 0:
            raise ValueError(f"evaluation.metric {metric} divides by the target, but validation.target.min {lo:g} lets it cross zero; "
                             "use rmse or mae")
        return self

    # -- derived -----------------------------------------------------------------
    @property
    def greater_is_better(self) -> bool:
        return METRICS[self.evaluation.metric]

    @property
    def feature_columns(self) -> list[str]:
        return [*self.features.numeric, *self.features.categorical]

    @property
    def required_columns(self) -> list[str]:
        d = self.data
        return [c for c in (d.timestamp_column, d.entity_column, d.target_column) if c] + self.feature_columns

    @property
    def key_columns(self) -> list[str]:
        """Entity (when there is one) and timestamp: what identifies a row of a panel."""
        return [c for c in (self.data.entity_column, self.data.timestamp_column) if c]

    @property
    def unique_key(self) -> list[str] | None:
        """Columns that must be unique because a feature needs it: ``target_aggregation: last`` reads
        *the* value of an entity at a time, which is defined only with one row per entity and timestamp."""
        f = self.features
        if (f.target_lags or f.target_rolling_windows) and f.target_aggregation == "last":
            return self.key_columns
        return None

    @property
    def drift_features(self) -> list[str]:
        return list(self.drift.features or self.feature_columns)

    @property
    def config_dir(self) -> Path:
        return Path(self.source_path).parent if self.source_path else DEFAULT_CONFIG.parent

    @property
    def tuning_metric(self) -> str:
        return self.tuning.metric or self.evaluation.metric

    @property
    def hyperparameters_path(self) -> Path:
        """The configured file; a relative name resolves against the config's folder. Left at the default
        name and absent there (a config copied elsewhere), it is the package's shipped file instead."""
        p = Path(self.training.hyperparameters_file)
        p = p if p.is_absolute() else self.config_dir / p
        if not p.exists() and self.training.hyperparameters_file == DEFAULT_HYPERPARAMETERS_FILE:
            return SHIPPED_HYPERPARAMETERS
        return p


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names valid at ``loc`` (for 'did you mean' hints)."""
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        current = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


def _choice_hint(err: Any) -> str:
    """" (did you mean 'files'?)" for a value close to one of a Literal's choices (the value itself is not echoed)."""
    choices = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
    hint = difflib.get_close_matches(str(err.get("input")), choices, n=1, cutoff=0.5) if choices else []
    return f" (did you mean '{hint[0]}'?)" if hint else ""


def _format_errors(path: str, exc: ValidationError) -> str:
    lines = [f"invalid config file {path}:"]
    for err in exc.errors():
        loc = tuple(err["loc"])
        dotted = ".".join(str(p) for p in loc) or "<top level>"
        if err["type"] == "extra_forbidden":
            known = _known_keys(ModelopsConfig, loc[:-1])
            hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
            suffix = f" (did you mean '{hint[0]}'?)" if hint else f" (known keys: {', '.join(k for k in known if k not in ('source_path', 'config_hash'))})"
            lines.append(f"  - unknown key '{dotted}'{suffix}")
        elif err["type"] == "missing":
            lines.append(f"  - missing required key '{dotted}'")
        elif err["type"] == "literal_error":
            lines.append(f"  - {dotted}: {err['msg']}{_choice_hint(err)}")
        else:
            got = err.get("input")
            got_s = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"  - {dotted}: {err['msg']}{got_s}")
    return "\n".join(lines)


def parse_config(raw: dict[str, Any], source: str = "<dict>") -> "ModelopsConfig":
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid config file {source}: the top level must be a mapping of keys")
    expanded = expand_env(raw)
    canonical = json.dumps(expanded, sort_keys=True, default=str)
    try:
        cfg = ModelopsConfig(**expanded)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None
    except TypeError as exc:
        raise ConfigError(f"invalid config file {source}: {exc}") from None
    return cfg.model_copy(update={
        "source_path": source,
        "config_hash": hashlib.sha256(canonical.encode()).hexdigest()[:16],
    })


def load_config(path: str | os.PathLike[str] | None = None) -> "ModelopsConfig":
    """Load and validate; ``path`` falls back to $MODELOPS_CONFIG, then the demo config.

    Validated configs are kept per process, keyed by the file, its mtime and the values of the
    environment it can see (``MODELOPS_*`` and every ``${VAR}`` it references): a long-lived
    worker whose connections export new values gets a config built from them.
    """
    p = config_path(path).resolve()
    mtime = p.stat().st_mtime_ns if p.exists() else 0
    return _load_cached(str(p), mtime, _env_fingerprint(_referenced_variables(str(p), mtime)))


@lru_cache(maxsize=32)
def _referenced_variables(path: str, _mtime: int) -> frozenset[str]:
    """The ``${VAR}`` names in the file's text (unreadable: none; loading it reports why)."""
    try:
        return frozenset(m.group(1) for m in _ENV_RE.finditer(Path(path).read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        return frozenset()


def _env_fingerprint(names: frozenset[str] = frozenset()) -> str:
    seen = sorted((k, v) for k, v in os.environ.items() if k.startswith("MODELOPS_") or k in names)
    return hashlib.sha1(json.dumps(seen).encode()).hexdigest()


@lru_cache(maxsize=32)
def _load_cached(path: str, _mtime: int, _env: str) -> "ModelopsConfig":
    return parse_config(read_raw(Path(path)), source=path)


# -- hyperparameters ----------------------------------------------------------------

DEFAULT_HYPERPARAMETERS_FILE = "best_hyperparameters.json"
SHIPPED_HYPERPARAMETERS = DEFAULT_CONFIG.parent / DEFAULT_HYPERPARAMETERS_FILE


def configured_hyperparameters_file(cfg: "ModelopsConfig") -> Path:
    """``cfg.hyperparameters_path``, said out loud: a note when it is the shipped fallback, and an error
    naming the key, the file and where relative names resolve when it is missing."""
    path = cfg.hyperparameters_path
    configured = Path(cfg.training.hyperparameters_file)
    if path != (configured if configured.is_absolute() else cfg.config_dir / configured):
        log.warning("training.hyperparameters_file %s is not beside %s: training uses the package's shipped parameters %s "
                    "(tune them with the tune_hyperparameters DAG, or set an absolute path)",
                    cfg.training.hyperparameters_file, cfg.source_path or "the config", path)
    elif not path.exists():
        raise ConfigError(f"training.hyperparameters_file: {path} does not exist (relative names resolve against the folder of "
                          f"{cfg.source_path or 'the config'}); copy a best_hyperparameters.json there or give an absolute path")
    return path


def validate_hyperparameters(params: dict[str, Any], source: str = "<hyperparameters>") -> dict[str, dict[str, Any]]:
    """Check types before training starts, so a '0.1' string fails with its name, not deep in a booster."""
    if not isinstance(params, dict):
        raise ConfigError(f"{source}: top level must be a mapping with keys xgboost and lightgbm")
    out: dict[str, dict[str, Any]] = {}
    for model in ("xgboost", "lightgbm"):
        section = params.get(model, {})
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: '{model}' must be a mapping of parameter -> value")
        types = _HP_TYPES[model]
        for key, value in section.items():
            expected = types.get(key)
            if expected is None:
                continue  # booster-specific extras pass through untouched
            if isinstance(value, bool) or not isinstance(value, expected):
                exp = expected.__name__ if isinstance(expected, type) else "number"
                raise ConfigError(f"{source}: {model}.{key} must be {exp}, got {type(value).__name__} {value!r}")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ConfigError(f"{source}: {model}.{key} must be >= 0, got {value!r}")
        out[model] = dict(section)
    unknown = set(params) - {"xgboost", "lightgbm", "_meta"}
    if unknown:
        raise ConfigError(f"{source}: unknown model sections {sorted(unknown)} (expected xgboost, lightgbm)")
    return out


def read_hyperparameters_file(path: str | Path, text: str | None = None) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Validated ``(params, _meta)`` of a hyperparameters file (local path, or ``text`` already read)."""
    if text is None:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"hyperparameters file {path} does not exist (training.hyperparameters_file)")
        text = p.read_text(encoding="utf-8")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"hyperparameters file {path} is not valid JSON: {exc}") from None
    params = validate_hyperparameters(raw, str(path))
    meta = raw.get("_meta") if isinstance(raw, dict) else None
    return params, meta if isinstance(meta, dict) else {}


def apply_overrides(params: dict[str, dict[str, Any]], overrides: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Run-param overrides on top of file parameters (validated the same way)."""
    params = {k: dict(v) for k, v in params.items()}
    if overrides:
        checked = validate_hyperparameters({k: v for k, v in overrides.items() if v}, "hyperparameter overrides (run param)")
        for model, extra in checked.items():
            params[model] = {**params.get(model, {}), **extra}
    return params


def load_hyperparameters(cfg: ModelopsConfig, overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """The configured (shipped) file; training uses ``modelops.hyperparameters.load_active`` which prefers a tuned file."""
    params, _ = read_hyperparameters_file(configured_hyperparameters_file(cfg))
    return apply_overrides(params, overrides)
