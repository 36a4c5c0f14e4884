"""A drift report a human can read: one HTML file plus per-feature PNGs next to it.

The HTML carries its own CSS and references the plots by relative path, so the folder
can be logged as an MLflow artifact directory (or zipped) and opened anywhere offline.
"""

from __future__ import annotations

import html
import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelops.monitoring.drift import DriftReport, FeatureDrift, ReferenceProfile

if TYPE_CHECKING:
    from matplotlib.figure import Figure

HTML_NAME = "drift_report.html"
_MAX_BARS = 25  # categorical plots: the most frequent reference categories, then "other"
_ECDF_POINTS = 400  # quantiles plotted per ECDF: enough to see the shape, cheap at 1M rows


def _fmt(v: Any, spec: str = ".4f") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "&ndash;"
    return format(v, spec)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80] or "feature"


def _ecdf_points(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, F(x)) at evenly spaced ranks: an ECDF curve without drawing a million steps."""
    n = sorted_values.size
    if n <= _ECDF_POINTS:
        return sorted_values, np.arange(1, n + 1) / n
    idx = np.unique(np.linspace(0, n - 1, _ECDF_POINTS).astype(np.int64))
    return sorted_values[idx], (idx + 1) / n


def _reference_sorted(reference: ReferenceProfile | pd.DataFrame | None, feature: str) -> np.ndarray | None:
    if isinstance(reference, ReferenceProfile):
        ref = reference.numeric.get(feature)
        return None if ref is None else ref.values
    if isinstance(reference, pd.DataFrame) and feature in reference.columns:
        return _sorted_numeric(reference[feature])
    return None


def _sorted_numeric(s: pd.Series) -> np.ndarray | None:
    try:
        x = pd.to_numeric(s, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        return None
    x = x[~np.isnan(x)]
    return np.sort(x)


def _plot_feature(fig: Figure, f: FeatureDrift, ref_sorted: np.ndarray | None, cur_sorted: np.ndarray | None) -> None:
    fig.clf()
    with_ecdf = f.kind == "numeric" and ref_sorted is not None and cur_sorted is not None and ref_sorted.size and cur_sorted.size
    axes = fig.subplots(1, 2 if with_ecdf else 1, squeeze=False)[0]
    ax = axes[0]
    labels, ref_sh, cur_sh = list(f.bin_labels), list(f.reference_shares), list(f.current_shares)
    if f.kind == "categorical" and len(labels) > _MAX_BARS + 1:
        # keep the top reference categories and the unseen bucket; fold the rest into "other"
        keep = _MAX_BARS
        labels = [*labels[:keep], "<other>", labels[-1]]
        ref_sh = [*ref_sh[:keep], float(sum(ref_sh[keep:-1])), ref_sh[-1]]
        cur_sh = [*cur_sh[:keep], float(sum(cur_sh[keep:-1])), cur_sh[-1]]
    x = np.arange(len(labels))
    ax.bar(x - 0.2, ref_sh, width=0.4, label="reference", color="#4C72B0")
    ax.bar(x + 0.2, cur_sh, width=0.4, label="current", color="#DD8452")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("share of rows")
    ax.set_title("PSI bins" if f.kind == "numeric" else "category shares", fontsize=9)
    ax.legend(fontsize=7)
    if with_ecdf:
        ax2 = axes[1]
        for arr, label, color in ((ref_sorted, "reference", "#4C72B0"), (cur_sorted, "current", "#DD8452")):
            xs, ys = _ecdf_points(arr)
            ax2.step(xs, ys, where="post", label=label, color=color)
        ax2.set_title("ECDF", fontsize=9)
        ax2.set_ylim(0, 1)
        ax2.legend(fontsize=7)
    verdict = "DRIFT" if f.drifted else ("not testable" if not f.testable else "no drift")
    stats = f"PSI {_fmt(f.psi, '.3f').replace('&ndash;', '-')}"
    if f.kind == "numeric":
        stats = f"KS D {_fmt(f.ks_statistic, '.3f').replace('&ndash;', '-')}, p {_fmt(f.ks_pvalue, '.2g').replace('&ndash;', '-')}, " + stats
    fig.suptitle(f"{f.feature} ({f.kind}): {verdict} - {stats}", fontsize=10, color="#B00020" if f.drifted else "black")
    # fixed margins: tight_layout measures every text artist and costs more than the drawing
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.30, top=0.85, wspace=0.18)


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222}
h1{font-size:20px} h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-size:13px} th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3} td.l{text-align:left}
tr.drift td{background:#fde2e2;font-weight:600} tr.untestable td{color:#888;background:#f7f7f7}
.banner{padding:10px 14px;border-radius:6px;font-weight:600;display:inline-block}
.banner.drift{background:#fde2e2;color:#8a0010} .banner.ok{background:#e3f5e6;color:#1b5e20}
.feature{margin:18px 0} .feature img{max-width:100%;border:1px solid #eee}
.small{color:#666;font-size:12px}
"""


def render_drift_report(report: DriftReport, out_dir: str | Path, title: str,
                        reference_frame_or_profile: ReferenceProfile | pd.DataFrame | None = None,
                        current: pd.DataFrame | None = None) -> Path:
    """Write ``out_dir/drift_report.html`` and ``out_dir/plots/*.png``; returns the HTML path.

    With the reference (profile or frame) and the current frame, numeric plots add ECDFs;
    without them the PSI bin shares stored in the report are plotted.
    """
    from matplotlib.figure import Figure  # no pyplot: see modelops.plots.subplots

    out = Path(out_dir)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)

    fig = Figure(figsize=(10, 3.6), dpi=80)  # one figure reused: creating figures dominates the time
    images: dict[str, str] = {}
    for i, f in enumerate(report.features):
        if not f.bin_labels:
            continue
        ref_sorted = cur_sorted = None
        if f.kind == "numeric":
            ref_sorted = _reference_sorted(reference_frame_or_profile, f.feature)
            if current is not None and f.feature in current.columns:
                cur_sorted = _sorted_numeric(current[f.feature])
        _plot_feature(fig, f, ref_sorted, cur_sorted)
        name = f"{i:03d}_{_safe(f.feature)}.png"
        fig.savefig(plots / name)
        images[f.feature] = f"plots/{name}"

    path = out / HTML_NAME
    path.write_text(_html(report, title, images), encoding="utf-8")
    return path


def _html(report: DriftReport, title: str, images: dict[str, str]) -> str:
    e = html.escape
    cfg = report.config
    verdict = "DATASET DRIFT" if report.dataset_drift else "no dataset drift"
    banner = (f'<div class="banner {"drift" if report.dataset_drift else "ok"}">{verdict}: '
              f'{len(report.drifted_features)} of {report.n_tested} tested features drifted '
              f'(ratio {report.drift_ratio:.2f}, threshold {cfg.get("drift_ratio_threshold", float("nan")):g})</div>')
    rows = []
    for f in report.features:
        cls = "drift" if f.drifted else ("untestable" if not f.testable else "")
        name = f'<a href="#f-{e(_safe(f.feature))}">{e(f.feature)}</a>' if f.feature in images else e(f.feature)
        rows.append(
            f'<tr class="{cls}"><td class="l">{name}</td><td class="l">{e(f.kind)}</td>'
            f"<td>{_fmt(f.ks_statistic)}</td><td>{_fmt(f.ks_pvalue, '.3g')}</td><td>{_fmt(f.psi)}</td>"
            f"<td class=\"l\">{'YES' if f.drifted else ('n/a' if not f.testable else 'no')}</td>"
            f"<td>{f.n_reference:,}</td><td>{f.n_current:,}</td><td>{f.null_share_current:.1%}</td>"
            f'<td class="l">{e(f.reason)}</td></tr>')
    thresholds = (
        f"rule <b>{e(str(cfg.get('rule')))}</b>; KS drifts when p &lt; {cfg.get('ks_pvalue')} and D &ge; "
        f"{cfg.get('ks_statistic_min')}; PSI drifts when PSI &ge; {cfg.get('psi_threshold')} "
        f"({cfg.get('psi_bins')} reference-quantile bins, epsilon {cfg.get('psi_epsilon')}); categorical features use PSI only; "
        f"dataset drift when drifted/tested &ge; {cfg.get('drift_ratio_threshold')}.")
    sections = [f'<div class="feature" id="f-{e(_safe(f.feature))}"><h3>{e(f.feature)}</h3>'
                f'<img src="{e(images[f.feature])}" alt="{e(f.feature)} drift plot"></div>'
                for f in report.features if f.feature in images]
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{e(title)}</h1>
{banner}
<p class="small">reference rows {report.n_reference:,}, current rows {report.n_current:,};
reference fingerprint {e(str(report.reference_fingerprint or '-'))}; generated {generated}</p>
<p>{thresholds}</p>
<h2>Features</h2>
<table>
<thead><tr><th>feature</th><th>kind</th><th>KS D</th><th>KS p-value</th><th>PSI</th><th>drifted</th>
<th>n reference</th><th>n current</th><th>null share (current)</th><th>reason</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<h2>Plots</h2>
{chr(10).join(sections) or '<p>No plots (no testable features).</p>'}
</body></html>
"""
