"""Where things live at run time, read from the environment.

The embedded default keeps every piece of state under ``.demo/`` in the project
(SQLite, a local MLflow store, local files). On a real stack the Airflow hooks in
``plugins/`` export the same variables from Airflow connections before calling
into the core, so the core never needs to know about Airflow.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def home() -> Path:
    """Root of the embedded default's state (``$MODELOPS_HOME``, else ``<project>/.demo``)."""
    return Path(os.environ.get("MODELOPS_HOME") or PROJECT_ROOT / ".demo").resolve()


def resolve_path(path: str) -> str:
    """Relative local paths are relative to the project, not to whatever cwd a worker has."""
    if "://" in path or os.path.isabs(path):
        return path
    return str((PROJECT_ROOT / path).resolve())


def work_root() -> str:
    """Run-scoped intermediate data (features, splits): local dir or ``s3://``."""
    return resolve_path(os.environ.get("MODELOPS_WORK_ROOT") or str(home() / "work"))


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home() / 'mlflow.db'}"


def registry_uri() -> str:
    return os.environ.get("MLFLOW_REGISTRY_URI") or tracking_uri()


def artifact_root() -> str | None:
    """Artifact location for experiments we create; None lets an MLflow server decide."""
    explicit = os.environ.get("MODELOPS_ARTIFACT_ROOT")
    if explicit:
        return resolve_path(explicit)
    if tracking_uri().startswith(("http://", "https://", "databricks")):
        return None
    return (home() / "mlartifacts").as_uri()


def database_url() -> str:
    """The package's own tables (drift reports): SQLite by default, PostgreSQL in the real stack."""
    return os.environ.get("MODELOPS_DB_URL") or f"sqlite:///{home() / 'modelops.db'}"


def hyperparameters_root() -> str:
    """Where tuned ``best_hyperparameters.json`` files live (writable; the shipped file in include/ may not be).

    ``$MODELOPS_HYPERPARAMETERS_ROOT`` (local dir or ``s3://``), else ``$MODELOPS_HOME/hyperparameters``.
    """
    return resolve_path(os.environ.get("MODELOPS_HYPERPARAMETERS_ROOT") or str(home() / "hyperparameters"))


def optuna_storage_url() -> str:
    """Optuna study storage: ``$MODELOPS_OPTUNA_STORAGE``, else the package database (SQLite or PostgreSQL)."""
    return os.environ.get("MODELOPS_OPTUNA_STORAGE") or database_url()


def airflow_api_url() -> str:
    return (os.environ.get("MODELOPS_AIRFLOW_API_URL") or "http://127.0.0.1:8080").rstrip("/")
