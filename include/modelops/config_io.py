"""What every reader of a config file shares: the file's raw YAML, ``${VAR}`` expansion, the metric
table, the hyperparameter types and the error type.

Imported by the full schema (``config.py``) and by the parse-time loader (``dag_config.py``); it
imports only the standard library and PyYAML, so neither of them has to import the other to get it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from modelops.errors import UserInputError

CONFIG_ENV = "MODELOPS_CONFIG"
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "config" / "store_sales.yaml"

# Metrics and whether larger is better; the gate and the drift-triggered
# comparison both read this table.
METRICS: dict[str, bool] = {
    "rmspe": False,
    "mape": False,
    "rmse": False,
    "mae": False,
    "r2": True,
    "accuracy": True,
    "f1": True,
    "precision": True,
    "recall": True,
    "roc_auc": True,
    "log_loss": False,
}
REGRESSION_METRICS = ("rmspe", "mape", "rmse", "mae", "r2")
CLASSIFICATION_METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc", "log_loss")
# Metrics that divide by the actual: undefined at zero, meaningless across it.
PERCENTAGE_METRICS = ("rmspe", "mape")



class ConfigError(UserInputError):
    """A config file that cannot be used; the message names file and key."""


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    return Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def read_raw(path: Path) -> Any:
    """The YAML document of a config file (libyaml's C loader when present)."""
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist (set ${CONFIG_ENV} or pass --config)")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` so one file serves laptop and cluster."""
    if isinstance(value, str):
        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"environment variable {name} is referenced in the config but not set")
        return _ENV_RE.sub(repl, value)
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    return value


HP_TYPES: dict[str, dict[str, type | tuple[type, ...]]] = {
    "xgboost": {
        "n_estimators": int, "max_depth": int, "learning_rate": (int, float), "subsample": (int, float),
        "colsample_bytree": (int, float), "min_child_weight": (int, float), "reg_alpha": (int, float),
        "reg_lambda": (int, float), "gamma": (int, float), "max_bin": int, "tree_method": str,
    },
    "lightgbm": {
        "n_estimators": int, "num_leaves": int, "max_depth": int, "learning_rate": (int, float),
        "subsample": (int, float), "subsample_freq": int, "colsample_bytree": (int, float),
        "min_child_samples": int, "reg_alpha": (int, float), "reg_lambda": (int, float), "max_bin": int,
    },
}


def hyperparameter_overrides_schema() -> dict[str, Any]:
    """JSON schema of the ``hyperparameter_overrides`` run param, from the same type table.

    Airflow validates trigger params against it before the run is created, so a UI
    trigger with ``"max_depth": "6"`` is refused at the form instead of failing a task.
    """
    def prop(t: type | tuple[type, ...]) -> dict[str, Any]:
        if t is str:
            return {"type": "string"}
        return {"type": "integer" if t is int else "number", "minimum": 0}

    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {m: {"type": "object", "properties": {k: prop(t) for k, t in model_types.items()}}
                       for m, model_types in HP_TYPES.items()},
    }
