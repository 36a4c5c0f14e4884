"""Registry fixtures shared by the tests: a tiny logged model and versions walked through the gate."""

from __future__ import annotations

from modelops.governance import registry


def log_constant_model(experiment: str, tracking_uri: str | None = None) -> tuple[str, str]:
    """``(model_uri, run_id)`` of a pyfunc that predicts 1.0, logged to the configured (or given) server.

    Passes ``experiment_id`` instead of calling ``set_experiment()``: a process-wide active
    experiment would make later ``start_run(run_id=...)`` calls for other experiments refuse.
    """
    import mlflow
    from mlflow.pyfunc import PythonModel

    from modelops import settings

    class Const(PythonModel):
        def predict(self, context, model_input, params=None):  # noqa: ARG002
            return [1.0] * len(model_input)

    if tracking_uri is None:
        tracking_uri, exp_id = settings.tracking_uri(), registry.ensure_experiment(experiment)
    else:  # a server chooses the artifact root itself
        client = mlflow.MlflowClient(tracking_uri)
        exp = client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp else client.create_experiment(experiment)
    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(experiment_id=exp_id) as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=Const(), pip_requirements=["mlflow"])
    return info.model_uri, run.info.run_id


def staged_version(name: str, model: tuple[str, str], key: str) -> str:
    """Register ``model`` under run key ``key`` and pass the gate (RMSPE 0.05 < 0.10): now in staging."""
    uri, run_id = model
    mv, _ = registry.register_candidate(name, uri, run_id, key, {})
    v = str(mv.version)
    registry.apply_gate(name, v, registry.decide_gate("rmspe", 0.05, 0.1, False, None, None, 0.0))
    return v


def approved_version(name: str, model: tuple[str, str], key: str, at: str) -> str:
    """A staged version the reviewer approved at ``at``, ready to promote."""
    v = staged_version(name, model, key)
    registry.record_decision(name, v, True, "reviewer", at, "ok")
    return v
