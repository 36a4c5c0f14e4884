"""Whole tune_hyperparameters runs: tune -> live params -> retrain uses them; worse params refused; resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelops.governance import registry
from tests.runs.conftest import load_dag, states, utc

pytestmark = pytest.mark.dagrun

ROOT = Path(__file__).resolve().parents[2]
TUNE_DAY, RETRAIN_DAY, TUNE_DAY_2 = "2025-05-01", "2025-05-04", "2025-05-08"

# Deliberately weak current parameters (tiny learning rate, stumps): a sane search beats them for sure.
WEAK_HP = {
    "xgboost": {"n_estimators": 120, "max_depth": 1, "learning_rate": 0.005, "tree_method": "hist"},
    "lightgbm": {"n_estimators": 120, "num_leaves": 2, "learning_rate": 0.005, "subsample_freq": 1},
}
GOOD_SPACE = {
    "xgboost": {"max_depth": {"type": "int", "low": 4, "high": 8}, "learning_rate": {"type": "float", "low": 0.1, "high": 0.3}},
    "lightgbm": {"num_leaves": {"type": "int", "low": 15, "high": 63}, "learning_rate": {"type": "float", "low": 0.1, "high": 0.3}},
}
# A space that can only produce worse models than tuned ones: stumps with a tiny learning rate.
BAD_SPACE = {"xgboost": {"max_depth": {"type": "int", "low": 1, "high": 2},
                         "learning_rate": {"type": "float", "low": 0.001, "high": 0.002}}}
TUNING = {"training.window_days": 90, "training.early_stopping_rounds": 20, "tuning.pruner_startup_trials": 1,
          "tuning.pruner_warmup_steps": 10, "tuning.report_every": 5, "tuning.sampler_startup_trials": 2}


@pytest.fixture
def tune_problem(problem, tmp_path):
    def make(hp: dict | None = None, **overrides):
        extra = {}
        if hp is not None:
            path = tmp_path / "current_hyperparameters.json"
            path.write_text(json.dumps(hp))
            extra["training.hyperparameters_file"] = str(path)
        return problem(**{**TUNING, **extra, **overrides})

    return make


def study(name: str):
    import optuna

    from modelops.training.tuning import open_storage

    return optuna.load_study(study_name=name, storage=open_storage())


def runs_of(cfg, kind: str, run_key: str | None = None):
    exp = registry.client().get_experiment_by_name(cfg.mlflow.experiment)
    flt = f"tags.`modelops.kind` = '{kind}'" + (f" and tags.`modelops.run_key` = '{run_key}'" if run_key else "")
    return registry.client().search_runs([exp.experiment_id], filter_string=flt, max_results=1000)


def run_tune(day: str, conf: dict):
    dag = load_dag("tune_hyperparameters")
    return dag.test(logical_date=utc(day), run_conf=conf)


def test_tuned_parameters_go_live_retrain_uses_them_and_worse_ones_are_refused(api_app, tune_problem):
    from modelops.training import hyperparameters as H

    cfg = tune_problem(WEAK_HP, **{"evaluation.threshold": 0.0001})  # the retrain stops at the gate: no approval wait
    assert H.load_active(cfg).tuned is False

    # 1. tune both boosters: three trials each, pruned or complete, every trial an MLflow child run
    dr = run_tune(TUNE_DAY, {"n_trials": 3, "search_space": GOOD_SPACE, "note": "first study"})
    st = states(dr)
    assert str(dr.state) == "success" and set(st.values()) == {"success"}, st
    active = H.load_active(cfg)
    assert active.tuned and active.path == H.live_path(cfg)
    meta = active.meta
    assert Path(H.version_path(cfg, meta["version"])).read_text() == Path(active.path).read_text()
    run_key = f"tune_hyperparameters/{utc(TUNE_DAY).isoformat()}"
    for model in ("xgboost", "lightgbm"):
        prov = meta["models"][model]
        assert prov["source"] == "tuning" and prov["study"] == f"{cfg.model_name}.{model}.{run_key}"
        assert prov["value"] < prov["baseline_value"]  # rmspe: lower is better
        s = study(prov["study"])
        finished = [t for t in s.trials if t.state.name in ("COMPLETE", "PRUNED")]
        assert len(finished) == 3 and len(s.trials) == 3
        assert all(t.intermediate_values for t in s.trials)  # the per-round validation curve reached the pruner
        assert prov["trial"] == s.best_trial.number and active.params[model] == {**WEAK_HP[model], **s.best_trial.params}
        # MLflow: study run (parent of the trials) with plots and best params; one child run per trial
        (study_run,) = runs_of(cfg, f"tune_{model}", run_key)
        trial_runs = runs_of(cfg, f"tune_{model}_trial", run_key)
        assert sorted(int(r.data.tags["optuna.trial_number"]) for r in trial_runs) == [0, 1, 2]
        for r in trial_runs:
            t = s.trials[int(r.data.tags["optuna.trial_number"])]
            assert r.data.tags["mlflow.parentRunId"] == study_run.info.run_id and r.info.status == "FINISHED"
            assert r.data.tags["optuna.state"] == t.state.name
            assert float(r.data.params["learning_rate"]) == pytest.approx(t.params["learning_rate"])
            if t.state.name == "COMPLETE":
                assert r.data.metrics["validation_rmspe"] == pytest.approx(t.value)
        assert prov["mlflow_run_id"] == t_run_id(trial_runs, prov["trial"])
        arts = {a.path for a in registry.client().list_artifacts(study_run.info.run_id, "plots")}
        assert arts == {"plots/optimization_history.png", "plots/param_importances.png"}
        assert study_run.data.metrics["best_validation_rmspe"] == pytest.approx(prov["value"])
    (parent,) = runs_of(cfg, "tune", run_key)
    assert parent.data.tags["modelops.tuning.applied"] == "true" and parent.data.tags["modelops.note"] == "first study"
    files = {a.path for a in registry.client().list_artifacts(parent.info.run_id, "hyperparameters")}
    assert files == {"hyperparameters/best_hyperparameters.json", "hyperparameters/decision.json"}

    # 2. retrain_weekly trains with the tuned file and says so in each booster's lineage tags
    retrain = load_dag("retrain_weekly")
    dr = retrain.test(logical_date=utc(RETRAIN_DAY), run_conf={})
    assert states(dr)["build_ensemble"] == "success", states(dr)
    for model in ("xgboost", "lightgbm"):
        (run,) = runs_of(cfg, f"train_{model}")
        tags, prov = run.data.tags, meta["models"][model]
        assert tags["modelops.hyperparameters.source"] == "tuning"
        assert tags["modelops.hyperparameters.study"] == prov["study"]
        assert tags["modelops.hyperparameters.trial"] == str(prov["trial"])
        assert tags["modelops.hyperparameters.mlflow_run_id"] == prov["mlflow_run_id"]
        assert tags["modelops.hyperparameters.file"] == H.live_path(cfg)
        assert tags["modelops.hyperparameters.file_version"] == meta["version"]
        for k, v in active.params[model].items():
            assert run.data.params[k] == str(v), k

    # 3. a study that can only find worse parameters leaves the live file alone
    before = Path(H.live_path(cfg)).read_bytes()
    dr = run_tune(TUNE_DAY_2, {"models": ["xgboost"], "n_trials": 2, "search_space": BAD_SPACE})
    st = states(dr)
    assert str(dr.state) == "success" and st["tune_lightgbm"] == "skipped", st
    assert Path(H.live_path(cfg)).read_bytes() == before
    assert len(list(Path(H.model_dir(cfg), "versions").iterdir())) == 1
    run_key_2 = f"tune_hyperparameters/{utc(TUNE_DAY_2).isoformat()}"
    (parent,) = runs_of(cfg, "tune", run_key_2)
    assert parent.data.tags["modelops.tuning.applied"] == "false"
    decision = json.loads(Path(registry.client().download_artifacts(parent.info.run_id, "hyperparameters/decision.json")).read_text())
    d = decision["decisions"]["xgboost"]
    assert d["applied"] is False and "does not beat the current parameters" in d["reason"]
    assert d["best_value"] > d["current_value"]
    # the baseline of the second study is the tuned (live) xgboost parameters, not the shipped ones
    assert study(f"{cfg.model_name}.xgboost.{run_key_2}").user_attrs["base_params"] == active.params["xgboost"]


def t_run_id(trial_runs, number: int) -> str:
    return next(r.info.run_id for r in trial_runs if r.data.tags["optuna.trial_number"] == str(number))


def test_a_killed_study_resumes_without_repeating_finished_trials(tune_problem, airflow_db):
    """Kill the whole process running the DAG mid-trial, then run the same logical date again."""
    import optuna
    from optuna.trial import TrialState

    cfg = tune_problem(WEAK_HP)
    conf = {"models": ["xgboost"], "n_trials": 4, "search_space": {"xgboost": GOOD_SPACE["xgboost"]}}
    day = "2025-05-15"
    name = f"{cfg.model_name}.xgboost.tune_hyperparameters/{utc(day).isoformat()}"
    script = (
        "import json, sys; sys.path[:0] = [sys.argv[1] + '/include', sys.argv[1] + '/plugins'];"
        "from datetime import datetime; from airflow.dag_processing.dagbag import DagBag;"
        "dag = DagBag(dag_folder=sys.argv[1] + '/dags').dags['tune_hyperparameters'];"
        "dag.test(logical_date=datetime.fromisoformat(sys.argv[2]), run_conf=json.loads(sys.argv[3]))"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(ROOT), utc(day).isoformat(), json.dumps(conf)],
                            env=dict(os.environ), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    from modelops.training.tuning import open_storage

    storage = open_storage()
    deadline = time.monotonic() + 600
    try:
        while True:  # wait for the condition, not for a time: two finished trials and one in flight
            assert proc.poll() is None, f"the DAG run ended before it could be interrupted: {proc.stderr.read().decode()[-3000:]}"
            assert time.monotonic() < deadline, "no interruptible state within 600 s"
            try:
                trials = optuna.load_study(study_name=name, storage=storage).trials
            except KeyError:
                trials = []
            # in flight = RUNNING with its parameters drawn: a trial killed before its first suggest has
            # nothing to retry (a kill in that window made this test fail once)
            if sum(t.state.is_finished() for t in trials) >= 2 and any(t.state == TrialState.RUNNING and t.params for t in trials):
                break
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the process group we started: the DAG run and nothing else
        proc.wait(timeout=60)

    before = optuna.load_study(study_name=name, storage=open_storage()).trials
    finished_before = {t.number: t for t in before if t.state.is_finished()}
    running_before = [t for t in before if t.state == TrialState.RUNNING]
    assert 2 <= len(finished_before) < 4
    assert running_before, "the kill landed between two trials"  # polled every 0.2 s against trials of seconds

    # What the scheduler does for a task whose worker died (heartbeat timeout): the task instance fails.
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        for ti in session.scalars(select(TI).where(TI.dag_id == "tune_hyperparameters", TI.state == "running")):
            ti.state = "failed"

    dr = run_tune(day, conf)
    st = states(dr)
    assert str(dr.state) == "success" and st["tune_xgboost"] == "success", st

    s = study(name)
    assert [n for n in optuna.get_all_study_names(open_storage()) if n.startswith(f"{cfg.model_name}.")] == [name]
    after = {t.number: t for t in s.trials}
    done = [t for t in after.values() if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(done) == 4  # exactly n_trials finished: the earlier ones counted, only the remainder ran
    for number, t in finished_before.items():  # finished trials were kept, not repeated
        a = after[number]
        assert (a.state, a.params, a.value, a.datetime_complete) == (t.state, t.params, t.value, t.datetime_complete)
    new = [t for t in after.values() if t.number not in finished_before and t.number not in {r.number for r in running_before}]
    assert len(new) == 4 - len(finished_before)
    for r in running_before:  # the trial the kill interrupted: failed, its parameters tried again first
        assert after[r.number].state == TrialState.FAIL and after[r.number].user_attrs["interrupted"] is True
        retry = [t for t in new if t.user_attrs.get("retry_of") == r.number]
        assert len(retry) == 1 and retry[0].params == r.params
    run_key = f"tune_hyperparameters/{utc(day).isoformat()}"
    trial_runs = runs_of(cfg, "tune_xgboost_trial", run_key)
    status = {int(r.data.tags["optuna.trial_number"]): r.info.status for r in trial_runs}
    assert sorted(n for n, v in status.items() if v == "FINISHED") == sorted(t.number for t in done)
    assert all(status[r.number] == "KILLED" for r in running_before if r.number in status)
    assert len(runs_of(cfg, "tune_xgboost", run_key)) == 1  # the study's MLflow run was reused, not duplicated
