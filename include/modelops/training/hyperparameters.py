"""Which ``best_hyperparameters.json`` training uses, and how a tuned one replaces it.

The repository ships ``include/config/best_hyperparameters.json`` (``training.hyperparameters_file``),
which is read-only inside an image. The tuning DAG therefore writes to a writable root
(``settings.hyperparameters_root()``: ``$MODELOPS_HYPERPARAMETERS_ROOT`` or
``$MODELOPS_HOME/hyperparameters``), one directory per model name::

    <root>/<model_name>/best_hyperparameters.json         the live file training prefers
    <root>/<model_name>/versions/<version>.json            every file the tuning DAG produced

Training reads the live file when it exists and falls back to the configured file, so a fresh
deployment trains with the shipped parameters and a tuned deployment with the tuned ones.
Each model section carries its provenance in ``_meta.models.<model>`` (study, trial, MLflow
runs), which training copies into its lineage tags.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from modelops import settings
from modelops.data import storage
from modelops.config import ModelopsConfig, apply_overrides, configured_hyperparameters_file, read_hyperparameters_file

log = logging.getLogger(__name__)

MODELS = ("xgboost", "lightgbm")
TAG_PREFIX = "modelops.hyperparameters."


@dataclass(frozen=True)
class ActiveHyperparameters:
    """Parameters training will use plus where they came from."""

    params: dict[str, dict[str, Any]]
    path: str
    tuned: bool  # True: the live tuned file; False: the configured (shipped) file
    meta: dict[str, Any] = field(default_factory=dict)

    def provenance(self, model: str) -> dict[str, Any]:
        """Where ``model``'s section came from: a study/trial, or the configured file."""
        found = (self.meta.get("models") or {}).get(model)
        if isinstance(found, dict) and found.get("source"):
            return dict(found)
        return {"source": "config", "file": self.path}

    def lineage_tags(self, model: str, overridden: bool = False) -> dict[str, str]:
        """Tags for the MLflow run that trained ``model`` (``modelops.hyperparameters.*``)."""
        prov = self.provenance(model)
        tags = {
            "source": str(prov.get("source", "config")),
            "file": self.path,
            "file_version": str(self.meta.get("version", "")) if self.tuned else "",
            "params_hash": params_hash(self.params.get(model, {})),
            "overrides": str(overridden).lower(),
        }
        for key in ("study", "trial", "mlflow_run_id", "study_mlflow_run_id", "metric", "value", "baseline_value", "from_version"):
            if prov.get(key) is not None:
                tags[key] = str(prov[key])
        return {f"{TAG_PREFIX}{k}": v for k, v in tags.items()}


def params_hash(params: dict[str, Any]) -> str:
    """Stable short hash of one model's parameters (detects a file that changed under a study)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def model_dir(cfg: ModelopsConfig) -> str:
    return storage.join(settings.hyperparameters_root(), storage.safe_key(cfg.model_name))


def live_path(cfg: ModelopsConfig) -> str:
    return storage.join(model_dir(cfg), "best_hyperparameters.json")


def version_path(cfg: ModelopsConfig, version: str) -> str:
    return storage.join(model_dir(cfg), "versions", f"{storage.safe_key(version)}.json")


def load_active(cfg: ModelopsConfig) -> ActiveHyperparameters:
    """The live tuned file when present, else the configured file; a broken live file is an error, not a fallback."""
    live = live_path(cfg)
    if storage.exists(live):
        params, meta = read_hyperparameters_file(live, storage.read_text(live))
        return ActiveHyperparameters(params, live, True, meta)
    path = configured_hyperparameters_file(cfg)
    params, meta = read_hyperparameters_file(path)
    return ActiveHyperparameters(params, str(path), False, meta)


def load_for_training(cfg: ModelopsConfig, model: str,
                      overrides: dict[str, dict[str, Any]] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """``(params, lineage tags)`` for one booster, run-param overrides applied on top."""
    active = load_active(cfg)
    params = apply_overrides(active.params, overrides)[model]
    overridden = bool(overrides and overrides.get(model))
    log.info("%s hyperparameters from %s (%s)%s", model, active.path, active.provenance(model).get("source"),
             " + run-param overrides" if overridden else "")
    return params, active.lineage_tags(model, overridden)


def write_version(cfg: ModelopsConfig, params: dict[str, dict[str, Any]], meta: dict[str, Any], make_live: bool) -> dict[str, str]:
    """Write ``versions/<version>.json`` and, when ``make_live``, replace the live file (write-then-rename)."""
    doc = {"_meta": meta, **{m: params[m] for m in MODELS if m in params}}
    read_hyperparameters_file("<new hyperparameters>", json.dumps(doc))  # never publish what training would reject
    text = json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n"
    vpath = storage.write_text(version_path(cfg, meta["version"]), text)
    out = {"version_path": vpath}
    if make_live:
        live = live_path(cfg)
        tmp = f"{live}.tmp"
        storage.write_text(tmp, text)
        fs, _ = storage._fs(live)
        _, p_tmp = storage._fs(tmp)
        _, p_live = storage._fs(live)
        fs.mv(p_tmp, p_live)  # a reader sees the old or the new file, never half of one
        out["live_path"] = live
    return out


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
