"""Run one lifecycle step in this process and SIGKILL it at a chosen point: a worker dying mid-task.

    python -m tests.killer '<json spec>'

spec: {"step": "train" | "promote", "args": {...}, "kill": {...} | null}
kill: {"mlflow": "<MlflowClient method>", "after": N}  -> SIGKILL right after the N-th call returned
      {"xgboost_iteration": N}                         -> SIGKILL inside the booster, after iteration N

The environment (MLflow store, work root, package DB) is inherited from the test process;
this module must not import tests.conftest (that would start a new state directory).
"""

from __future__ import annotations

import json
import os
import signal
import sys


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _arm_mlflow(method: str, after: int) -> None:
    from mlflow.tracking import MlflowClient

    original = getattr(MlflowClient, method)
    calls = [0]

    def wrapper(self, *a, **kw):
        out = original(self, *a, **kw)
        calls[0] += 1
        if calls[0] >= after:
            _die()
        return out

    setattr(MlflowClient, method, wrapper)


def _arm_xgboost(iteration: int) -> None:
    import xgboost
    import xgboost.sklearn as xsk

    class KillAt(xgboost.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):  # noqa: ARG002
            if epoch >= iteration:
                _die()
            return False

    original = xsk.train

    def train(*a, **kw):
        kw["callbacks"] = [*(kw.get("callbacks") or []), KillAt()]
        return original(*a, **kw)

    xsk.train = train


def main(spec: dict) -> None:
    for p in ("include", "plugins"):
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), p))
    kill = spec.get("kill") or {}
    if "mlflow" in kill:
        _arm_mlflow(kill["mlflow"], int(kill.get("after", 1)))
    if "xgboost_iteration" in kill:
        _arm_xgboost(int(kill["xgboost_iteration"]))
    args = spec["args"]
    if spec["step"] == "train":
        from modelops import lifecycle
        from modelops.config import load_config
        from modelops.tracking import RunContext

        cfg = load_config(args["config"])
        out = lifecycle.train_model(cfg, RunContext(**args["ctx"]), args["which"], args["features"])
    elif spec["step"] == "promote":
        from modelops.governance import registry

        out = {"previous": registry.promote(args["name"], args["version"], by=args.get("by", "reviewer"))}
    else:
        raise SystemExit(f"unknown step {spec['step']!r}")
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
