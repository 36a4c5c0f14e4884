"""
### tune_hyperparameters

Searches XGBoost and LightGBM hyperparameters with Optuna for the model described by the
problem config, and makes the result the `best_hyperparameters.json` that `retrain_weekly`
trains with, **only where it beats the current parameters** on the same validation split.
Manual trigger only (UI "Trigger DAG w/ config", `airflow dags trigger -c '{...}'`).

check_request -> validate_data -> build_features -> tune_xgboost / tune_lightgbm -> publish_hyperparameters

* **check_request** validates the params (models, n_trials, timeout_minutes, metric, search_space)
  against the config's `tuning:` section before any data is read.
* **tune_<model>**: one Optuna study per booster (TPE, seeded; median or successive-halving
  pruning on the booster's per-round validation curve) on the same window, features and
  time-aware split as training. Studies live in the package database; a retried task continues
  its study and runs only the trials still missing. Every trial is an MLflow child run of the
  study's run, which holds the best parameters and the history/importance plots.
* **publish_hyperparameters** writes a new version under `$MODELOPS_HOME/hyperparameters/<model>/`
  and makes it live when a study beat the current parameters (and `apply` is true).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG
from modelops.dag_config import CLASSIFICATION_METRICS, REGRESSION_METRICS, load_dag_config
from modelops_airflow.dag_support import TRAINING_POOL, default_args, param
from modelops_airflow.operators import (
    BuildFeaturesOperator,
    CheckTuningRequestOperator,
    PublishHyperparametersOperator,
    TuneModelOperator,
    ValidateDataOperator,
)

cfg = load_dag_config()
METRIC_CHOICES = list(REGRESSION_METRICS if cfg.task == "regression" else CLASSIFICATION_METRICS)
SPACE_DOC = ('{"xgboost": {"max_depth": {"type": "int", "low": 3, "high": 8}}, '
             '"lightgbm": {"learning_rate": {"type": "float", "low": 0.02, "high": 0.2, "log": true}, "reg_alpha": null}}')

with DAG(
    dag_id="tune_hyperparameters",
    description=f"Optuna search for {cfg.model_name}; feeds best_hyperparameters.json of retrain_weekly",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2023, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["modelops", "tuning", cfg.model_name],
    params={
        "models": param(["xgboost", "lightgbm"], type="array", items={"type": "string", "enum": ["xgboost", "lightgbm"]},
                        minItems=1, uniqueItems=True, description="Boosters to tune"),
        "n_trials": param(cfg.tuning.n_trials, type="integer", minimum=1, maximum=10000,
                          description="Finished (complete or pruned) trials per booster"),
        "timeout_minutes": param(cfg.tuning.timeout_minutes, type="number", exclusiveMinimum=0, maximum=7 * 24 * 60,
                                 description="Time budget per booster's study (trial time, summed over retries)"),
        "metric": param(None, type=["null", "string"], enum=[None, *METRIC_CHOICES],
                        description=f"Objective on the validation split; default {cfg.tuning_metric}"),
        "search_space": param({}, type="object", properties={"xgboost": {"type": "object"}, "lightgbm": {"type": "object"}},
                              additionalProperties=False,
                              description=f"Overrides of the config's tuning.search_space, e.g. {SPACE_DOC}"),
        "apply": param(True, type="boolean", description="Make better parameters live (false: only write a version)"),
        "training_start": param(None, type=["null", "string"], format="date",
                                description="First day of the window (YYYY-MM-DD); default: end - training.window_days"),
        "training_end": param(None, type=["null", "string"], format="date",
                              description="Day after the last day (YYYY-MM-DD); default: the run's date"),
        "note": param("", type="string", maxLength=500, description="Why this run"),
    },
) as dag:
    check = CheckTuningRequestOperator(task_id="check_request", retries=0)
    validate = ValidateDataOperator(task_id="validate_data", window="training", mlflow_parent_kind="tune")
    features = BuildFeaturesOperator(task_id="build_features")
    tune = [TuneModelOperator(task_id=f"tune_{m}", model=m, pool=TRAINING_POOL) for m in ("xgboost", "lightgbm")]
    publish = PublishHyperparametersOperator(task_id="publish_hyperparameters", tune_task_ids=[t.task_id for t in tune],
                                             trigger_rule="none_failed_min_one_success")

    check >> validate >> features >> tune >> publish
