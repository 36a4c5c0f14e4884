"""Plots logged to MLflow (PNG via the Agg backend: no display on workers)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def subplots(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (7, 4), **kw: Any) -> tuple[Any, Any]:
    """A Figure and its axes without pyplot: no global figure registry for long-lived workers to
    leak into, no GUI backend to select, and less to import in every task process. PNGs render
    through Agg; ``layout="tight"`` lays out once at draw time (``bbox_inches="tight"`` drew twice)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="tight")
    return fig, fig.subplots(nrows, ncols, **kw)


def pyplot() -> Any:
    """pyplot on the Agg backend, for third-party plotting that needs it (optuna's matplotlib plots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig: Any, dpi: int = 110) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _log_fig(run_id: str, fig: Any, artifact_path: str, name: str) -> None:
    from modelops.governance.registry import client

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / name
        p.write_bytes(png_bytes(fig))
        client().log_artifact(run_id, str(p), artifact_path)
    if "matplotlib.pyplot" in sys.modules:  # a pyplot-made figure stays registered until closed
        sys.modules["matplotlib.pyplot"].close(fig)


def log_feature_importance(run_id: str, importance: Any, title: str, top: int = 25) -> None:
    if importance is None or len(importance) == 0:
        return
    imp = importance.head(top)[::-1]
    fig, ax = subplots(figsize=(7, max(2.5, 0.28 * len(imp))))
    ax.barh(imp.index, imp.values, color="#3b7dd8")
    ax.set_xlabel("share of total importance")
    ax.set_title(title)
    _log_fig(run_id, fig, "plots", "feature_importance.png")


def log_residuals(run_id: str, y: np.ndarray, pred: np.ndarray, title: str, max_points: int = 20_000, seed: int = 0) -> None:
    """Scatter of a seeded sample of at most ``max_points`` (a PNG shows no more; drawing 1M costs seconds),
    histogram of all residuals."""
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    fig, axes = subplots(1, 2, figsize=(11, 4))
    pick = np.sort(np.random.default_rng(seed).choice(len(y), max_points, replace=False)) if len(y) > max_points else slice(None)
    axes[0].scatter(y[pick], pred[pick], s=4, alpha=0.35)
    if len(y) > max_points:
        axes[0].set_title(f"predicted vs actual ({max_points:,} of {len(y):,} rows)")
    lo, hi = float(np.nanmin([y.min(), pred.min()])), float(np.nanmax([y.max(), pred.max()]))
    axes[0].plot([lo, hi], [lo, hi], color="black", lw=1)
    axes[0].set_xlabel("actual")
    axes[0].set_ylabel("predicted")
    if len(y) <= max_points:
        axes[0].set_title("predicted vs actual")
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(y != 0, (pred - y) / y, np.nan)
    axes[1].hist(pct[np.isfinite(pct)], bins=60, color="#d8893b")
    axes[1].set_xlabel("relative error (pred - actual) / actual")
    axes[1].set_title("residuals")
    fig.suptitle(title)
    _log_fig(run_id, fig, "plots", "residuals.png")


def log_confusion_matrix(run_id: str, y: np.ndarray, proba: np.ndarray, threshold: float, title: str) -> None:
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(np.asarray(y).astype(int), (np.asarray(proba) >= threshold).astype(int), labels=[0, 1])
    fig, ax = subplots(figsize=(4.5, 4))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="black")
    ax.set_xticks([0, 1], ["pred 0", "pred 1"])
    ax.set_yticks([0, 1], ["true 0", "true 1"])
    ax.set_title(title)
    _log_fig(run_id, fig, "plots", "confusion_matrix.png")
