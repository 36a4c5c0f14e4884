"""The weighted XGBoost + LightGBM ensemble as one MLflow pyfunc.

One artifact carries the fitted feature builder, both boosters and the weights,
so ``models:/NAME@production`` scores raw rows with nothing else installed but
the pinned libraries (the ``modelops`` code travels along via ``code_paths``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

try:  # mlflow is only needed to log/load; the class is usable without it for tests
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover
    PythonModel = object  # type: ignore[misc,assignment]

from modelops.data.features import FeatureBuilder, take_rows


class EnsembleModel(PythonModel):
    """Raw rows in, predictions out (regression: target units; classification: P(positive))."""

    def __init__(self, builder: FeatureBuilder, xgb_model: Any, lgbm_model: Any, weights: dict[str, float],
                 task: str, target_transform: str = "none") -> None:
        self.builder = builder
        self.xgb_model = xgb_model
        self.lgbm_model = lgbm_model
        total = float(sum(weights.values()))
        self.weights = {k: float(v) / total for k, v in weights.items()}
        self.task = task
        self.target_transform = target_transform

    # -- prediction -------------------------------------------------------------------
    def component_predictions(self, df: pd.DataFrame, use_history: bool = True, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Each booster's raw output. ``rows`` (boolean mask) picks the rows to predict; the others
        only feed the history features, so scoring a window with its context predicts the window alone."""
        X = self.builder.transform(df, use_history=use_history)
        if rows is not None:
            X = take_rows(X, np.asarray(rows, dtype=bool))
        return {"xgboost": predict_raw(self.xgb_model, X, self.task), "lightgbm": predict_raw(self.lgbm_model, X, self.task)}

    def combine(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        raw = sum(self.weights[k] * parts[k] for k in ("xgboost", "lightgbm"))
        return self.inverse(raw)

    def inverse(self, raw: np.ndarray) -> np.ndarray:
        if self.task == "regression" and self.target_transform == "log1p":
            return np.expm1(raw)
        return np.asarray(raw, dtype="float64")

    def predict_frame(self, df: pd.DataFrame, rows: np.ndarray | None = None) -> np.ndarray:
        return self.combine(self.component_predictions(df, rows=rows))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> np.ndarray:  # noqa: ARG002
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        return self.predict_frame(model_input)


def predict_raw(model: Any, X: pd.DataFrame, task: str) -> np.ndarray:
    """Booster output on the training scale (transformed target or probability)."""
    if task == "classification":
        return np.asarray(model.predict_proba(X)[:, 1], dtype="float64")
    return np.asarray(model.predict(X), dtype="float64")


def code_path() -> str:
    """The ``modelops`` package directory, shipped inside each logged model."""
    return str(Path(__file__).resolve().parents[1])
