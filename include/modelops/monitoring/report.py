"""The monitoring report people look at: one self-contained HTML file for a model and a date range.

Sections: summary, metric over time (daily and rolling, baseline and degradation limit),
predicted vs actual, drift history per feature, PSI heat map, shadow vs production, alerts,
and a per-day table. Plots are PNGs embedded as base64, so the file opens anywhere offline,
as an MLflow artifact or as the output of ``python -m modelops report``.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelops.monitoring import alerts as A
from modelops import plots
from modelops.monitoring import drift_store
from modelops.monitoring.explain_report import report_sections
from modelops.monitoring import performance
from modelops.data import storage
from modelops.config import ModelopsConfig
from modelops.monitoring.predictions import PRODUCTION_ROLE, SHADOW_ROLE, load_predictions

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

SECTIONS = ("summary", "metric-over-time", "predicted-vs-actual", "drift-history", "psi-heatmap", "attribution-drift",
            "explanations", "shadow", "alerts", "days")
_COLORS = {PRODUCTION_ROLE: "#1f5fbf", SHADOW_ROLE: "#e07b00"}


@dataclass
class ReportData:
    """Everything the report shows, read once from the package DB (and the source for actuals)."""

    cfg: ModelopsConfig
    model_name: str
    start: date
    end: date  # exclusive
    drift: pd.DataFrame
    performance: pd.DataFrame
    joined: pd.DataFrame  # predictions with actuals (labelled rows only)
    counts: pd.DataFrame  # predictions per day and role (labelled or not)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    explain: dict[str, Any] = field(default_factory=dict)  # attribution drift + version explanations (explanations.report_data)


def collect(engine: Engine, cfg: ModelopsConfig, start: date, end: date, model_name: str | None = None) -> ReportData:
    """Read drift rows, performance rows, predictions (+ actuals from the source) and alerts for [start, end)."""
    if start >= end:
        raise ValueError(f"empty report range: start {start} is not before end {end}")
    name = model_name or cfg.model_name
    drift = drift_store.load_reports(engine, name, start, end - timedelta(days=1))
    perf = performance.load_performance(engine, name, start, end)
    preds = load_predictions(engine, name, start, end)
    counts = (preds.groupby([preds["logical_date"].dt.date, "model_role"]).size().rename("n").reset_index()
              if len(preds) else pd.DataFrame(columns=["logical_date", "model_role", "n"]))
    joined = preds.iloc[0:0].assign(actual=pd.Series(dtype="float64"))
    if len(preds):
        try:
            source = storage.read_window(cfg, start, end)
        except storage.DataError:
            source = pd.DataFrame()
        joined = performance.join_actuals(cfg, preds, source)
    from modelops.monitoring.explanations import report_data

    return ReportData(cfg, name, start, end, drift, perf, joined, counts, A.load_alerts(engine, name, start, end),
                      report_data(engine, cfg, name, start, end))


# -- plots ------------------------------------------------------------------------------------------

def _png(fig: Any) -> str:
    return base64.b64encode(plots.png_bytes(fig, dpi=100)).decode("ascii")


def _date_axis(ax: Any, start: date, end: date) -> None:
    import matplotlib.dates as mdates

    ax.set_xlim(pd.Timestamp(start) - pd.Timedelta(hours=12), pd.Timestamp(end) - pd.Timedelta(hours=12))
    loc = mdates.AutoDateLocator(minticks=3, maxticks=10)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    ax.grid(True, alpha=0.3)


def plot_metric(d: ReportData) -> str | None:
    perf = d.performance
    if perf.empty:
        return None
    metric = d.cfg.evaluation.metric
    fig, ax = plots.subplots(figsize=(12, 4.2))
    for role, grp in perf.groupby("model_role"):
        c = _COLORS.get(str(role), "gray")
        vers = ", ".join(f"v{v}" for v in dict.fromkeys(grp["model_version"]))
        ax.plot(grp["logical_date"], grp["value"], "o", color=c, alpha=0.45, ms=4, label=f"{role} ({vers}) daily")
        ax.plot(grp["logical_date"], grp["rolling_value"], ".-", color=c, lw=2, ms=5,
                label=f"{role} rolling {d.cfg.monitoring.rolling_window_days} d")
    prod = perf[perf["model_role"] == PRODUCTION_ROLE]
    if prod["baseline"].notna().any():
        ax.step(prod["logical_date"], prod["baseline"], where="mid", color="black", ls="--", lw=1.2, label="test-set baseline")
        ax.step(prod["logical_date"], prod["limit_value"], where="mid", color="#c62828", ls="--", lw=1.6,
                label="degradation limit")
    bad = prod[prod["degraded"]]
    if len(bad):
        ax.scatter(bad["logical_date"], bad["rolling_value"], s=90, facecolors="none", edgecolors="#c62828", lw=2,
                   label="degraded", zorder=5)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} over time ({'higher' if d.cfg.greater_is_better else 'lower'} is better)")
    _date_axis(ax, d.start, d.end)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    return _png(fig)


def plot_predicted_vs_actual(d: ReportData) -> str | None:
    j = d.joined
    if j.empty:
        return None
    fig, axes = plots.subplots(1, 2, figsize=(12, 4.4), gridspec_kw={"width_ratios": [1, 1.6]})
    ax = axes[0]
    if d.cfg.task == "regression":
        for role, grp in j.groupby("model_role"):
            ax.scatter(grp["actual"], grp["prediction"], s=6, alpha=0.35, color=_COLORS.get(str(role), "gray"), label=str(role))
        lo = float(min(j["actual"].min(), j["prediction"].min()))
        hi = float(max(j["actual"].max(), j["prediction"].max()))
        ax.plot([lo, hi], [lo, hi], color="black", lw=1, label="y = x")
        ax.set_xlabel("actual")
        ax.set_ylabel("predicted")
        ax.set_title("predicted vs actual (each labelled row)")
    else:
        bins = np.linspace(0, 1, 11)
        for role, grp in j.groupby("model_role"):
            idx = np.clip(np.digitize(grp["prediction"], bins) - 1, 0, 9)
            rate = pd.Series(grp["actual"].to_numpy()).groupby(idx).mean()
            mean_p = pd.Series(grp["prediction"].to_numpy()).groupby(idx).mean()
            ax.plot(mean_p, rate, "o-", color=_COLORS.get(str(role), "gray"), label=str(role))
        ax.plot([0, 1], [0, 1], color="black", lw=1, label="perfect calibration")
        ax.set_xlabel("mean predicted probability")
        ax.set_ylabel("observed positive rate")
        ax.set_title("calibration (labelled rows)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[1]
    by_day = j.assign(day=j["logical_date"]).groupby(["day", "model_role"])
    agg = by_day.agg(pred=("prediction", "mean"), act=("actual", "mean")).reset_index()
    actual = agg.drop_duplicates("day")
    ax.plot(actual["day"], actual["act"], ".-", color="black", lw=2, ms=5, label="actual (mean per row)")
    for role, grp in agg.groupby("model_role"):
        ax.plot(grp["day"], grp["pred"], ".--", color=_COLORS.get(str(role), "gray"), lw=1.6, ms=5, label=f"{role} predicted")
    ax.set_title("daily mean: predicted vs actual")
    _date_axis(ax, d.start, d.end)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _psi_matrix(d: ReportData) -> pd.DataFrame:
    dr = d.drift
    if dr.empty:
        return pd.DataFrame()
    m = dr.pivot_table(index="feature", columns="logical_date", values="psi", aggfunc="last")
    days = pd.date_range(pd.Timestamp(d.start), pd.Timestamp(d.end) - pd.Timedelta(days=1), freq="D")
    return m.reindex(columns=days)


def plot_drift_history(d: ReportData) -> str | None:
    dr = d.drift
    if dr.empty:
        return None
    import matplotlib

    fig, (ax1, ax2) = plots.subplots(2, 1, figsize=(12, 6.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    cmap = matplotlib.colormaps["tab10"]
    for i, (feat, grp) in enumerate(dr.groupby("feature", sort=True)):
        c = cmap(i % 10)
        ax1.plot(grp["logical_date"], grp["psi"], ".-", color=c, lw=1.6, ms=4, label=str(feat))
        hit = grp[grp["drifted"]]
        ax1.plot(hit["logical_date"], hit["psi"], "X", color=c, ms=8)
    thr = d.cfg.drift.psi_threshold
    ax1.axhline(thr, color="#c62828", ls="--", lw=1.4, label=f"PSI threshold {thr:g}")
    if dr["psi"].max() > 5 * max(thr, 1e-9):
        # linear up to the threshold, log above: a feature at PSI 8 must not flatten the ones near 0.2
        ax1.set_yscale("symlog", linthresh=max(thr, 1e-3), linscale=1.5)
        ax1.set_ylim(0, float(dr["psi"].max()) * 1.6)
    ax1.set_ylabel("PSI")
    ax1.set_title("drift per feature over time (X = feature drifted that day)")
    ax1.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    ratio = dr.drop_duplicates("logical_date")[["logical_date", "drift_ratio", "dataset_drift"]]
    colors = np.where(ratio["dataset_drift"], "#c62828", "#7a9cc6")
    ax2.bar(ratio["logical_date"], ratio["drift_ratio"], width=0.8, color=colors)
    rt = d.cfg.drift.drift_ratio_threshold
    ax2.axhline(rt, color="#c62828", ls="--", lw=1.4, label=f"dataset drift threshold {rt:g}")
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("drift ratio")
    ax2.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    _date_axis(ax1, d.start, d.end)
    _date_axis(ax2, d.start, d.end)
    fig.tight_layout()
    return _png(fig)


def plot_psi_heatmap(d: ReportData) -> str | None:
    m = _psi_matrix(d)
    if m.empty:
        return None
    from matplotlib.colors import LinearSegmentedColormap

    thr = d.cfg.drift.psi_threshold
    # the scale tops out at 3x the threshold: one huge PSI must not wash out the cells near the threshold
    vmax = 3 * thr if thr > 0 else max(1e-3, float(np.nanmax(m.to_numpy())))
    cmap = LinearSegmentedColormap.from_list("psi", ["#f7fbff", "#fff3b0", "#f4a259", "#c62828"])
    cmap = cmap.with_extremes(bad="#e0e0e0")
    n_days = m.shape[1]
    fig, ax = plots.subplots(figsize=(min(16, max(7, 0.35 * n_days + 3)), max(2.4, 0.42 * len(m) + 1.3)))
    im = ax.imshow(np.ma.masked_invalid(m.to_numpy(dtype="float64")), aspect="auto", cmap=cmap, vmin=0, vmax=vmax,
                   interpolation="nearest")
    ax.set_yticks(range(len(m)), list(m.index))
    step = max(1, n_days // 15)
    ax.set_xticks(range(0, n_days, step), [c.strftime("%m-%d") for c in m.columns[::step]], rotation=45, ha="right")
    drifted = (d.drift.assign(flag=d.drift["drifted"].astype(float))
               .pivot_table(index="feature", columns="logical_date", values="flag", aggfunc="last")
               .reindex(index=m.index, columns=m.columns).fillna(0).to_numpy() > 0)
    if n_days <= 45 and len(m) <= 20:
        for (i, k), v in np.ndenumerate(m.to_numpy(dtype="float64")):
            if np.isfinite(v):
                label = f"{v:.2f}" if n_days <= 21 else ("●" if drifted[i, k] else "")
                ax.text(k, i, label, ha="center", va="center", fontsize=7, fontweight="bold" if drifted[i, k] else "normal",
                        color="white" if v >= vmax * 0.75 else "black")
    cb = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02, extend="max")
    cb.set_label("PSI")
    cb.ax.axhline(thr, color="black", lw=1.5)
    mark = "bold value" if n_days <= 21 else "●"
    ax.set_title(f"PSI heat map: feature x day (threshold {thr:g}; {mark} = feature drifted by the rule; grey = no check)",
                 fontsize=10)
    return _png(fig)


# -- HTML ------------------------------------------------------------------------------------------

def _fmt(v: Any, spec: str = ".4f") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "&ndash;"
    return format(float(v), spec)


def _img(b64: str | None, alt: str, empty: str) -> str:
    if b64 is None:
        return f'<p class="empty">{html.escape(empty)}</p>'
    return f'<img src="data:image/png;base64,{b64}" alt="{html.escape(alt)}">'


def _summary(d: ReportData) -> str:
    e = html.escape
    perf = d.performance
    prod = perf[perf["model_role"] == PRODUCTION_ROLE] if len(perf) else perf
    metric = d.cfg.evaluation.metric
    cards = []
    if len(prod):
        last = prod.iloc[-1]
        state = "bad" if last["degraded"] else "ok"
        cards.append((f"production v{e(str(last['model_version']))} rolling {metric}", _fmt(last["rolling_value"]),
                      f"on {int(last['rolling_n_rows'])} rows up to {last['logical_date'].date()}", state))
        cards.append(("test-set baseline / limit", f"{_fmt(last['baseline'])} / {_fmt(last['limit_value'])}",
                      f"{d.cfg.monitoring.tolerance_mode} tolerance {d.cfg.monitoring.tolerance:g}", ""))
        cards.append(("days degraded", f"{int(prod['degraded'].sum())} of {len(prod)}", "labelled days in range",
                      "bad" if prod["degraded"].any() else "ok"))
    else:
        cards.append((f"production {metric}", "&ndash;", "no labelled predictions in range", ""))
    if len(d.drift):
        days = d.drift.drop_duplicates("logical_date")
        cards.append(("days with dataset drift", f"{int(days['dataset_drift'].sum())} of {len(days)}",
                      f"last ratio {days['drift_ratio'].iloc[-1]:.2f}", "bad" if days["dataset_drift"].any() else "ok"))
    n_pred = int(d.counts.loc[d.counts["model_role"] == PRODUCTION_ROLE, "n"].sum()) if len(d.counts) else 0
    cards.append(("predictions logged", f"{n_pred:,}", f"{len(d.joined):,} labelled rows (all roles)", ""))
    n_open = sum(1 for a in d.alerts if a.get("resolved_at") is None)
    cards.append(("alerts", f"{len(d.alerts)}", f"{n_open} still open", "bad" if n_open else ""))
    return "".join(f'<div class="card {s}"><div class="k">{k}</div><div class="v">{v}</div><div class="s">{sub}</div></div>'
                   for k, v, sub, s in cards)


def _shadow_table(d: ReportData) -> str:
    perf = d.performance
    if perf.empty or not (perf["model_role"] == SHADOW_ROLE).any():
        return '<p class="empty">No shadow predictions in this range (no staging version was waiting for approval).</p>'
    p = perf.pivot_table(index="logical_date", columns="model_role", values=["value", "rolling_value", "n_rows"], aggfunc="last")
    vers = perf.pivot_table(index="logical_date", columns="model_role", values="model_version", aggfunc="last")
    metric = d.cfg.evaluation.metric
    better = d.cfg.greater_is_better
    rows = []
    for day in p.index:
        if pd.isna(p.get(("value", SHADOW_ROLE), pd.Series(dtype=float)).get(day, np.nan)):
            continue
        pv, sv = p.loc[day, ("rolling_value", PRODUCTION_ROLE)], p.loc[day, ("rolling_value", SHADOW_ROLE)]
        wins = (sv > pv) if better else (sv < pv)
        rows.append(f"<tr><td class=l>{day.date()}</td><td>v{html.escape(str(vers.loc[day, PRODUCTION_ROLE]))}</td>"
                    f"<td>v{html.escape(str(vers.loc[day, SHADOW_ROLE]))}</td><td>{int(p.loc[day, ('n_rows', SHADOW_ROLE)])}</td>"
                    f"<td>{_fmt(p.loc[day, ('value', PRODUCTION_ROLE)])}</td><td>{_fmt(p.loc[day, ('value', SHADOW_ROLE)])}</td>"
                    f"<td>{_fmt(pv)}</td><td class=\"{'good' if wins else 'bad'}\">{_fmt(sv)}</td></tr>")
    return (f"<table><thead><tr><th>day</th><th>production</th><th>shadow (staging)</th><th>rows</th><th>production {metric}</th>"
            f"<th>shadow {metric}</th><th>production rolling</th><th>shadow rolling</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _alerts_table(d: ReportData) -> str:
    if not d.alerts:
        return '<p class="empty">No alerts about days in this range.</p>'
    e = html.escape
    rows = []
    for a in d.alerts:
        link = f'<a href="{e(a["airflow_url"])}">Airflow</a>' if a.get("airflow_url") else ""
        ml = f' <a href="{e(a["mlflow_url"])}">MLflow</a>' if a.get("mlflow_url") else ""
        state = "open" if a.get("resolved_at") is None else f"closed: {e(a.get('resolution') or '')}"
        rows.append(f'<tr class="{e(a["severity"])}"><td class=l>{a.get("logical_date") or ""}</td><td class=l>{e(a["kind"])}</td>'
                    f'<td class=l>{e(a["title"])}</td><td class=l>{e(a.get("delivered") or "log only")}</td>'
                    f'<td class=l>{state}</td><td class=l>{link}{ml}</td></tr>')
    return ("<table><thead><tr><th>day</th><th>kind</th><th>what</th><th>delivered to</th><th>state</th><th>links</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _days_table(d: ReportData) -> str:
    days = pd.date_range(pd.Timestamp(d.start), pd.Timestamp(d.end) - pd.Timedelta(days=1), freq="D")
    perf = d.performance
    prod = perf[perf["model_role"] == PRODUCTION_ROLE].set_index("logical_date") if len(perf) else pd.DataFrame()
    ratio = d.drift.drop_duplicates("logical_date").set_index("logical_date") if len(d.drift) else pd.DataFrame()
    counts = d.counts[d.counts["model_role"] == PRODUCTION_ROLE].set_index("logical_date")["n"] if len(d.counts) else pd.Series(dtype=int)
    rows = []
    for day in days:
        n = counts.get(day.date(), 0)
        p = prod.loc[day] if day in prod.index else None
        r = ratio.loc[day] if day in ratio.index else None
        cls = "bad" if (p is not None and p["degraded"]) or (r is not None and r["dataset_drift"]) else ""
        rows.append(f'<tr class="{cls}"><td class=l>{day.date()}</td><td>{int(n):,}</td>'
                    f"<td>{'' if p is None else int(p['n_rows'])}</td><td>{_fmt(None if p is None else p['value'])}</td>"
                    f"<td>{_fmt(None if p is None else p['rolling_value'])}</td>"
                    f"<td>{'&ndash;' if r is None else format(r['drift_ratio'], '.2f')}</td>"
                    f"<td class=l>{'' if p is None else ('DEGRADED' if p['degraded'] else 'ok')}"
                    f"{'' if r is None or not r['dataset_drift'] else ' DRIFT'}</td></tr>")
    metric = d.cfg.evaluation.metric
    return (f"<table><thead><tr><th>day</th><th>predictions</th><th>labelled</th><th>{metric}</th><th>rolling {metric}</th>"
            f"<th>drift ratio</th><th>state</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1300px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:30px;border-bottom:1px solid #ddd;padding-bottom:4px}
.small{color:#666;font-size:12px} .empty{color:#777;font-style:italic}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:170px;background:#fafafa}
.card.ok{border-left:5px solid #2e7d32} .card.bad{border-left:5px solid #c62828;background:#fff5f5}
.card .k{font-size:12px;color:#555} .card .v{font-size:20px;font-weight:600} .card .s{font-size:11px;color:#777}
img{max-width:100%;border:1px solid #eee}
table{border-collapse:collapse;font-size:12px;margin-top:6px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right} th{background:#f2f2f2} td.l{text-align:left}
tr.bad td,tr.critical td{background:#fdecea} tr.warning td{background:#fff8e1} tr.action td{background:#e8f0fe}
td.good{color:#2e7d32;font-weight:600} td.bad{color:#c62828;font-weight:600}
nav a{margin-right:12px;font-size:13px}
"""


def render(d: ReportData, title: str | None = None) -> str:
    """The whole HTML page; every section is present even when its data is empty (it says so)."""
    e = html.escape
    title = title or f"{d.model_name} monitoring {d.start} to {d.end - timedelta(days=1)}"
    metric = d.cfg.evaluation.metric
    parts = {
        "summary": ("Summary", f'<div class="cards">{_summary(d)}</div>'),
        "metric-over-time": (f"{metric} over time", _img(plot_metric(d), f"{metric} over time",
                             "No labelled predictions in this range yet (actuals have not landed).")),
        "predicted-vs-actual": ("Predicted vs actual", _img(plot_predicted_vs_actual(d), "predicted vs actual",
                                "No predictions with actuals in this range.")),
        "drift-history": ("Drift history per feature", _img(plot_drift_history(d), "drift history",
                          "No drift checks stored for this range.")),
        "psi-heatmap": ("PSI heat map", _img(plot_psi_heatmap(d), "PSI heat map", "No drift checks stored for this range.")),
        **report_sections(d.explain, d.start, d.end),
        "shadow": ("Shadow challenger vs production", _shadow_table(d)),
        "alerts": ("Alerts", _alerts_table(d)),
        "days": ("Day by day", _days_table(d)),
    }
    nav = " ".join(f'<a href="#{k}">{e(v[0])}</a>' for k, v in parts.items())
    body = "\n".join(f'<section id="{k}"><h2>{e(h)}</h2>{content}</section>' for k, (h, content) in parts.items())
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mon = d.cfg.monitoring
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{e(title)}</h1>
<p class="small">task {e(d.cfg.task)}, metric {e(metric)}; degraded when the rolling {mon.rolling_window_days}-day {e(metric)}
is worse than the production version's test-set baseline by more than {mon.tolerance:g} ({e(mon.tolerance_mode)}) on at least
{mon.min_rows} labelled rows; generated {generated}</p>
<nav>{nav}</nav>
{body}
</body></html>
"""


def render_range(engine: Engine, cfg: ModelopsConfig, start: date, end: date, model_name: str | None = None) -> str:
    return render(collect(engine, cfg, start, end, model_name))


def log_daily_report(cfg: ModelopsConfig, ctx: Any, end: date, performance: dict[str, Any] | None = None) -> dict[str, Any]:
    """The last ``monitoring.report_days`` up to ``end`` as an HTML artifact of the day's MLflow monitoring run."""
    import tempfile
    import time
    from pathlib import Path

    from modelops import db, tracking
    from modelops.governance import registry

    start = end - timedelta(days=cfg.monitoring.report_days)
    engine = db.get_engine()
    db.migrate(engine)
    t0 = time.perf_counter()
    page = render_range(engine, cfg, start, end)
    seconds = time.perf_counter() - t0
    day = (end - timedelta(days=1)).isoformat()
    run_id = tracking.get_or_create_run(cfg.mlflow.experiment, ctx, "monitoring", f"monitoring-{day}",
                                        {"modelops.model_name": cfg.model_name, "modelops.monitoring_day": day})
    perf = performance or {}
    tracking.log_metrics(run_id, {k: perf.get(k) for k in ("value", "baseline", "limit", "daily_value") if perf.get(k) is not None},
                         prefix=f"{cfg.evaluation.metric}_")
    if perf.get("day"):
        registry.client().set_tag(run_id, "modelops.degraded", str(bool(perf.get("degraded"))).lower())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "monitoring_report.html"
        path.write_text(page, encoding="utf-8")
        registry.client().log_artifact(run_id, str(path), "monitoring_report")
    tracking.finish_run(run_id)
    return {"mlflow_run_id": run_id, "artifact": "monitoring_report/monitoring_report.html", "start": start.isoformat(),
            "end": end.isoformat(), "bytes": len(page), "render_seconds": round(seconds, 3)}
