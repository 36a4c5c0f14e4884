"""What explanations look like to people: plots, HTML sections and the approval form's Markdown.

Pure rendering from the summaries ``modelops.monitoring.explanations`` computes (plain dicts and
frames), so the same pieces serve the version's MLflow page, the drift run, the monitoring report
and the Airflow approval form.
"""

from __future__ import annotations

import base64
import html
import math
from typing import Any

import numpy as np
import pandas as pd

from modelops import plots


def _f(v: Any, spec: str = ".4g") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return format(float(v), spec)


def _move(change: int | None) -> str:
    if change is None:
        return "new"
    return "=" if change == 0 else (f"▲{change}" if change > 0 else f"▼{-change}")


# -- plots ---------------------------------------------------------------------------------------

def plot_importance(summary: dict[str, Any], top: int) -> bytes:
    """Mean |SHAP| per feature (candidate, and production on the same rows when there is one) beside
    permutation importance of the whole ensemble per raw column."""
    feats = summary["importance"][:top][::-1]
    prod = {r["feature"]: r["mean_abs_shap"] for r in (summary.get("production") or {}).get("importance", [])}
    perm = summary.get("permutation", [])[:top][::-1]
    fig, (ax1, ax2) = plots.subplots(1, 2, figsize=(12, max(3.0, 0.32 * max(len(feats), len(perm), 1) + 1.2)))
    y = np.arange(len(feats))
    h = 0.4 if prod else 0.8
    ax1.barh(y + (h / 2 if prod else 0), [r["mean_abs_shap"] for r in feats], height=h, color="#3b7dd8", label="candidate")
    if prod:
        ax1.barh(y - h / 2, [prod.get(r["feature"], 0.0) for r in feats], height=h, color="#9e9e9e",
                 label=f"production v{summary['production']['version']}")
        ax1.legend(fontsize=8)
    ax1.set_yticks(y, [r["feature"] for r in feats], fontsize=8)
    ax1.set_xlabel(f"mean |SHAP| ({summary['space']})")
    ax1.set_title(f"TreeSHAP on {summary['rows']:,} test-window rows", fontsize=10)
    yp = np.arange(len(perm))
    ax2.barh(yp, [r["importance"] for r in perm], xerr=[r["std"] for r in perm], color="#e07b00")
    ax2.set_yticks(yp, [r["column"] for r in perm], fontsize=8)
    ax2.axvline(0, color="black", lw=0.8)
    ax2.set_xlabel(f"{summary['metric']} lost when the column is shuffled")
    ax2.set_title("permutation importance of the whole ensemble", fontsize=10)
    return plots.png_bytes(fig)


def plot_attribution(features: list[dict[str, Any]], rho: float | None, top: int) -> bytes:
    """Reference (test window) vs the day's mean |SHAP| per feature, in the reference's order."""
    rows = sorted(features, key=lambda r: r["reference_rank"])[:top][::-1]
    fig, ax = plots.subplots(figsize=(8, max(3.0, 0.3 * len(rows) + 1.2)))
    y = np.arange(len(rows))
    ax.barh(y + 0.2, [r["reference"] for r in rows], height=0.4, color="#9e9e9e", label="test window (reference)")
    ax.barh(y - 0.2, [r["current"] for r in rows], height=0.4, color="#3b7dd8", label="the day")
    ax.set_yticks(y, [f"{r['feature']} ({_move(r['rank_change'])})" for r in rows], fontsize=8)
    ax.set_xlabel("mean |SHAP|")
    ax.set_title(f"attribution: the day vs the version's test window (rank correlation {_f(rho, '.2f')})", fontsize=10)
    ax.legend(fontsize=8)
    return plots.png_bytes(fig)


def plot_attribution_history(df: pd.DataFrame, threshold: float, start: Any, end: Any) -> bytes | None:
    """Rank correlation per day, with the threshold, days flagged in red (monitoring report)."""
    if df.empty:
        return None
    days = df.drop_duplicates("logical_date")
    fig, ax = plots.subplots(figsize=(12, 3.2))
    ax.plot(days["logical_date"], days["rank_correlation"], ".-", color="#3b7dd8", lw=1.6, label="rank correlation of mean |SHAP|")
    bad = days[days["attribution_drift"]]
    ax.scatter(bad["logical_date"], bad["rank_correlation"], s=80, facecolors="none", edgecolors="#c62828", lw=2,
               label="attribution drift", zorder=5)
    ax.axhline(threshold, color="#c62828", ls="--", lw=1.2, label=f"threshold {threshold:g}")
    ax.set_ylim(min(-0.05, float(np.nanmin(days["rank_correlation"].to_numpy(dtype=float), initial=0.0)) - 0.05), 1.05)
    ax.set_xlim(pd.Timestamp(start) - pd.Timedelta(hours=12), pd.Timestamp(end) - pd.Timedelta(hours=12))
    ax.grid(True, alpha=0.3)
    ax.set_title("attribution drift: does the production model use the features as on its test window?", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    return plots.png_bytes(fig)


# -- HTML ----------------------------------------------------------------------------------------

def importance_rows_html(summary: dict[str, Any], top: int) -> str:
    """Candidate's top features with production's rank and the move, then permutation importance."""
    e = html.escape
    vs = summary.get("vs_production") or {}
    prod_rank = {r["feature"]: r for r in vs.get("features", [])}
    has_prod = bool(vs)
    head = ("<tr><th>rank</th><th>feature</th><th>raw column</th><th>mean |SHAP|</th><th>share</th>"
            + (f"<th>production v{e(str(vs.get('version')))} rank</th><th>move</th>" if has_prod else "") + "</tr>")
    rows = []
    for r in summary["importance"][:top]:
        p = prod_rank.get(r["feature"])
        extra = (f"<td>{p['reference_rank'] if p else '–'}</td><td>{_move(p['rank_change'] if p else None)}</td>"
                 if has_prod else "")
        rows.append(f"<tr><td>{r['rank']}</td><td class=l>{e(r['feature'])}</td><td class=l>{e(r.get('column', ''))}</td>"
                    f"<td>{_f(r['mean_abs_shap'])}</td><td>{_f(100 * r['share'], '.1f')}%</td>{extra}</tr>")
    perm = "".join(f"<tr><td>{r['rank']}</td><td class=l>{e(r['column'])}</td><td>{_f(r['importance'])}</td>"
                   f"<td>{_f(r['std'])}</td></tr>" for r in summary.get("permutation", [])[:top])
    changes = ""
    if has_prod:
        changes = (f"<p>vs production v{e(str(vs['version']))} on the same rows: rank correlation "
                   f"<b>{_f(vs.get('rank_correlation'), '.3f')}</b>, top-{vs.get('top')} overlap {_f(vs.get('top_overlap'), '.0%')}"
                   f"{'; new in the top: ' + e(', '.join(vs['entered_top'])) if vs.get('entered_top') else ''}"
                   f"{'; left the top: ' + e(', '.join(vs['left_top'])) if vs.get('left_top') else ''}.</p>")
    return (f"{changes}<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"
            f"<h3>Permutation importance (test {e(summary['metric'])} lost when shuffled, mean of "
            f"{summary.get('permutation_repeats', '?')})</h3>"
            f"<table><thead><tr><th>rank</th><th>raw column</th><th>importance</th><th>std</th></tr></thead><tbody>{perm}</tbody></table>")


_CSS = """body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;font-size:12px} th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f2f2f2} td.l{text-align:left} img{max-width:100%} .small{color:#666;font-size:12px}
tr.drift td{background:#fdecea}"""


def version_page(title: str, summary: dict[str, Any], image: str, top: int, space_note: str) -> str:
    """The version's explanation page (MLflow artifact ``explain/explanation.html``)."""
    e = html.escape
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{e(title)}</h1><p class=small>{summary['rows']:,} rows of the test window {e(str(summary['test_window']))}; "
            f"values in {e(summary['space'])}. {e(space_note)}</p><img src=\"{e(image)}\" alt=\"importance\">"
            f"{importance_rows_html(summary, top)}</body></html>")


def attribution_table_html(result: dict[str, Any], top: int) -> str:
    e = html.escape
    rows = []
    for r in sorted(result["features"], key=lambda r: r["current_rank"])[:top]:
        cls = "drift" if abs(r["rank_change"]) >= 3 else ""
        rows.append(f'<tr class="{cls}"><td class=l>{e(r["feature"])}</td><td>{r["reference_rank"]}</td><td>{r["current_rank"]}</td>'
                    f"<td>{_move(r['rank_change'])}</td><td>{_f(r['reference'])}</td><td>{_f(r['current'])}</td></tr>")
    return ("<table><thead><tr><th>feature</th><th>test-window rank</th><th>rank on the day</th><th>move</th>"
            "<th>test-window mean |SHAP|</th><th>mean |SHAP| on the day</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def attribution_page(title: str, result: dict[str, Any], image: str, top: int) -> str:
    """``drift_report/attribution/attribution_drift.html`` in the drift run, beside the feature drift report."""
    e = html.escape
    verdict = "ATTRIBUTION DRIFT" if result["attribution_drift"] else "no attribution drift"
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{e(title)}</h1><p><b>{verdict}</b>: rank correlation of mean |SHAP| {_f(result['rank_correlation'], '.3f')} "
            f"(flagged below {result['min_rank_correlation']:g}), top-{result['top']} overlap {_f(result['top_overlap'], '.0%')}, "
            f"{result['rows']:,} rows explained with production v{e(str(result['model_version']))}.</p>"
            "<p class=small>For a fixed model SHAP values depend on the inputs only: a change in the order means the inputs changed "
            "together (interactions, dependence between features, a different mix of segments) even where each feature's own "
            "distribution (KS/PSI) did not.</p>"
            f"<img src=\"{e(image)}\" alt=\"attribution\">{attribution_table_html(result, max(top, 25))}</body></html>")


# -- the approval form ---------------------------------------------------------------------------

def approval_markdown(summary: dict[str, Any] | None, version: str, top: int = 8) -> list[str]:
    """Markdown lines for the HITL form: what drives the candidate, and what changed vs production."""
    if not summary:
        return []
    vs = summary.get("vs_production") or {}
    prod = {r["feature"]: r for r in vs.get("features", [])}
    lines = ["", f"**What drives v{version}'s predictions** (mean |SHAP| on {summary['rows']:,} test-window rows, "
                 f"{summary['space']}; permutation importance: test {summary['metric']} lost when the raw column is shuffled):", ""]
    if vs:
        lines += [f"| rank | feature | mean abs SHAP | production v{vs['version']} rank | move |", "|---|---|---|---|---|"]
    else:
        lines += ["| rank | feature | mean abs SHAP |", "|---|---|---|"]
    for r in summary["importance"][:top]:
        row = f"| {r['rank']} | {r['feature']} | {_f(r['mean_abs_shap'])} |"
        if vs:
            p = prod.get(r["feature"])
            row += f" {p['reference_rank'] if p else '–'} | {_move(p['rank_change'] if p else None)} |"
        lines.append(row)
    perm = summary.get("permutation", [])[:5]
    if perm:
        lines += ["", "Permutation importance: " + ", ".join(f"{r['column']} {_f(r['importance'], '+.3g')}" for r in perm) + "."]
    if vs:
        txt = f"vs production v{vs['version']}: rank correlation {_f(vs.get('rank_correlation'), '.2f')}"
        if vs.get("entered_top"):
            txt += f"; new in the top {vs['top']}: {', '.join(vs['entered_top'])}"
        if vs.get("left_top"):
            txt += f"; left the top {vs['top']}: {', '.join(vs['left_top'])}"
        lines += ["", txt + "."]
    return lines


# -- the monitoring report -----------------------------------------------------------------------

def report_sections(data: dict[str, Any], start: Any, end: Any) -> dict[str, tuple[str, str]]:
    """``{section id: (heading, html)}`` for the monitoring report; each says why when it is empty."""
    e = html.escape
    top = data.get("top", 10)
    parts = []
    for v in data.get("versions", []):
        s = v["summary"]
        head = f"<h3>{e(v['alias'])} v{e(str(v['version']))}</h3>"
        if not s:
            parts.append(head + '<p class="empty">No explanation logged with this version (registered before explanations, '
                                'or with explain.enabled: false).</p>')
            continue
        parts.append(f"{head}<p class=small>mean |SHAP| on {s['rows']:,} rows of its test window {e(str(s['test_window']))}, "
                     f"in {e(s['space'])}</p>{importance_rows_html(s, top)}")
    if data.get("error"):
        parts.append(f'<p class="empty">Versions not read from the registry: {e(data["error"])}</p>')
    versions = "".join(parts) or '<p class="empty">No production or staging version.</p>'

    att = data.get("attribution")
    if att is None or att.empty:
        attribution = ('<p class="empty">No attribution drift stored for this range (the drift DAG computes it each day '
                       'for a production version logged with explanations).</p>')
    else:
        img = plot_attribution_history(att, data.get("threshold", 0.8), start, end)
        last_day = att["logical_date"].max()
        last = att[att["logical_date"] == last_day]
        result = {"features": [{"feature": r.feature, "reference_rank": int(r.reference_rank), "current_rank": int(r.current_rank),
                                "rank_change": int(r.rank_change), "reference": float(r.reference_mean_abs),
                                "current": float(r.current_mean_abs)} for r in last.itertuples()]}
        b64 = base64.b64encode(img).decode("ascii") if img else None
        attribution = ((f'<img src="data:image/png;base64,{b64}" alt="attribution drift">' if b64 else "")
                       + f"<h3>{last_day.date()}: ranks on the day vs the test window</h3>" + attribution_table_html(result, top))
    return {"attribution-drift": ("Attribution drift (beside feature drift)", attribution),
            "explanations": ("What drives the model (production, staging)", versions)}
