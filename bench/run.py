"""``make bench``: drift, DAG parse cost, retrain overhead and batch scoring, one table.

    .venv/bin/python bench/run.py [--sizes 10000,100000,1000000] [--only drift,parse,retrain,retrain-shipped,scoring]
                                  [--no-evidently] [--readme]

Writes ``bench/results/latest.json`` (all figures) and ``bench/results/latest.md`` (the table,
also printed); ``--readme`` puts the table into README.md between the bench markers. Every
approach runs in its own child process (peak RSS is its own); see each module's docstring
for what exactly is timed. No thresholds are asserted: targets are reported as met/missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import RESULTS, ROOT, TMP  # noqa: E402

START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def machine() -> dict[str, Any]:
    model = platform.processor() or ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": model, "cores": os.cpu_count(), "memory": mem, "python": platform.python_version(),
            "loadavg_at_start": load, "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for p in ("numpy", "scipy", "pandas", "xgboost", "lightgbm", "mlflow", "apache-airflow"):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            pass
    return out


# -- formatting ----------------------------------------------------------------------------------

def _s(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def _x(a: float | None, b: float | None) -> str:
    return "–" if not a or not b else f"{b / a:.1f}x"


def _e(v: float | None) -> str:
    return "–" if v is None else ("0" if v == 0 else f"{v:.1e}")


def _mb(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f}"


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    parts = res.get("parts_measured_at") or {}
    when = m["when"] if len(set(parts.values())) <= 1 else "; ".join(f"{k} {v}" for k, v in parts.items())
    out = [f"Measured {when} on {m['cpu']}, {m['cores']} cores, {m['memory']} "
           f"(load average at start {', '.join(f'{x:.1f}' for x in (m.get('loadavg_at_start') or []))}; the machine was shared "
           "with other work, so figures are medians of repeated runs and still carry noise). "
           f"Python {m['python']}, " + ", ".join(f"{k} {v}" for k, v in res.get("versions", {}).items()) + "."]
    d = res.get("drift")
    if d:
        out += ["", "**Drift** (50 numeric + 5 categorical features, reference vs current, KS + PSI per feature; seconds, "
                "median of 5 runs, Evidently once). `ours` uses the reference profile "
                "cached with the model (sorted reference, built once at training: `profile`); `floor` sorts both samples "
                "once. Differences are against the scipy loop (D and PSI absolute, p relative). Up to 10,000 rows scipy's "
                "exact p-value (`method='auto'`) dominates both ours and the scipy loop.", "",
                "| rows | ours | its KS p-values alone (scipy code, 1 thread) | ours 1 thread | profile (once) | scipy loop | Evidently | sort floor "
                "| vs scipy | vs Evidently | ours / floor | peak RSS MB ours / scipy / Evidently | ours peak / 2 samples "
                "| max ΔD | max Δp | max ΔPSI | Evidently ΔPSI |",
                "|" + "---|" * 17]
        for key, r in d["sizes"].items():
            o, s, e, f = r.get("ours", {}), r.get("scipy", {}), r.get("evidently", {}), r.get("floor", {})
            o1, p = r.get("ours_1thread", {}), r.get("profile", {})
            vs = s.get("vs_ours", {})
            two = r["meta"]["numeric_bytes"] / 2**20
            label = f"{r['meta']['rows']:,}" + (" (mild shift)" if r["meta"].get("mild") else "")
            out.append(
                f"| {label} | {_s(o.get('seconds'))} | {_s(o.get('pvalue_s'))} | {_s(o1.get('seconds'))} | {_s(p.get('seconds'))} "
                f"| {_s(s.get('seconds'))} | {_s(e.get('seconds')) if e else 'not run'} | {_s(f.get('seconds'))} "
                f"| {_x(o.get('seconds'), s.get('seconds'))} | {_x(o.get('seconds'), e.get('seconds'))} "
                f"| {(o.get('seconds') or 0) / f['seconds']:.2f} | "
                f"{_mb(o.get('peak_mb'))} / {_mb(s.get('peak_mb'))} / {_mb(e.get('peak_mb')) if e else '–'} "
                f"| {(o.get('peak_mb') or 0) / two:.2f}x | {_e(vs.get('max_abs_dD'))} | {_e(vs.get('max_rel_dp'))} "
                f"| {_e(vs.get('max_abs_dPSI'))} | {_e((e.get('vs_ours') or {}).get('max_abs_dPSI')) if e else '–'} |")
            errs = [f"{k}: {v['error']}" for k, v in r.items() if isinstance(v, dict) and "error" in v]
            if errs:
                out.append(f"| {label} errors: {'; '.join(errs)} |")
    pa = res.get("parse")
    if pa:
        out += ["", f"**DAG parse cost**: importing each DAG file in a fresh interpreter, on top of `import airflow.sdk` "
                f"(itself {pa.get('import_airflow_sdk_s_median', 0):.2f} s here); median of {pa['samples']} interpreters. "
                "`adds` is every re-parse: our modules have bytecode and the config cache holds the validated config. "
                f"`first parse` (median of {pa.get('cold_samples', '?')}): our modules compiled from source, empty config "
                "cache, full pydantic validation.", "",
                "| DAG file | adds (ms, median) | min – max | first parse (ms) | modules pulled in | heavy libraries imported | packages pulled in |",
                "|---|---|---|---|---|---|---|"]
        for name, r in pa["files"].items():
            if "error" in r:
                out.append(f"| {name} | error: {r['error']} | | | | | |")
                continue
            pk = ", ".join(f"{k} {v}" for k, v in r["new_packages"].items() if not k.startswith("unusual_prefix"))
            first = r.get("first_parse_ms_median")
            out.append(f"| {name} | {r['added_ms_median']:.1f} | {r['added_ms_min']:.1f} – {r['added_ms_max']:.1f} "
                       f"| {'–' if first is None else f'{first:.1f}'} | {r['new_modules']} "
                       f"| {', '.join(r['heavy_imported']) or 'none'} | {pk} |")
    rt = res.get("retrain")
    if rt:
        out += ["", f"**Retrain** (store sales, {rt['window_days']} days x rows/{rt['window_days']} stores, same fixed "
                f"hyperparameters, one booster thread; seconds are medians of {rt.get('repeat', 3)} rounds"
                + (f", {rt['repeat_largest']} at the largest size" if rt.get("repeat_largest") else "")
                + "). Three ways to the same candidate: `core` = the library on the data "
                "directly (read, features, XGBoost, LightGBM, ensemble weights and test scores; no validation, no MLflow); "
                "`steps` = the DAG's own steps (`modelops.lifecycle`: GX validation, files between steps, MLflow runs, "
                "plots, model logging, registration, gate) called in order in one process; `DAG` = `retrain_weekly` through "
                "`dag.test()`, stopped at the gate (approval waits on a human). Orchestration overhead is DAG vs steps: "
                "what Airflow adds to the same work. Task peaks: each heavy task alone in a fresh process, as a worker runs it.", "",
                "| rows | data in memory MB | core s | steps s | DAG s | orchestration: DAG vs steps, wall (CPU) "
                "| DAG vs core, wall (CPU) | task peak over base MB: features / XGBoost / LightGBM | largest task peak / data "
                "| core peak increment / data |",
                "|" + "---|" * 10]
        detail = []
        for key, r in rt["sizes"].items():
            c, g, st = r.get("core", {}), r.get("dag", {}), r.get("steps", {})
            if "error" in c or "error" in g or "error" in st:
                out.append(f"| {key} | error: {c.get('error') or st.get('error') or g.get('error')} |" + " |" * 8)
                continue
            tk = r.get("tasks", {})
            tp = " / ".join(_mb(tk[t]["peak_mb"] - tk[t]["base_mb"]) if "peak_mb" in tk.get(t, {}) else "–"
                            for t in ("build_features", "xgboost", "lightgbm"))
            out.append(f"| {c.get('rows', int(key)):,} | {c['data_bytes'] / 2**20:.1f} | {_s(c['seconds'])} | {_s(st.get('seconds'))} "
                       f"| {_s(g['seconds'])} | {100 * r.get('overhead_orchestration', 0):+.0f}% ({100 * r.get('overhead_orchestration_cpu', 0):+.0f}%) "
                       f"| {100 * r['overhead_total']:+.0f}% ({100 * r.get('overhead_total_cpu', 0):+.0f}%) | {tp} "
                       f"| {r.get('task_peak_increment_over_data') or 0:.1f}x | {r['core_peak_increment_over_data']:.1f}x |")
            cs, ss, gt = c.get("steps", {}), st.get("steps", {}), g.get("tasks", {})
            core_of = {"build_features": cs.get("features"), "train_xgboost": cs.get("xgboost"), "train_lightgbm": cs.get("lightgbm"),
                       "build_ensemble": cs.get("ensemble")}
            rows = [(t, core_of.get(t), ss.get(t), (gt.get(t) or {}).get("seconds")) for t in ss]
            fc, fst, fg = ((x.get("fit_seconds") or {}) for x in (c, st, g))
            rows += [(f"of which the {b} fit alone", fc.get(b), fst.get(b), fg.get(b)) for b in ("xgboost", "lightgbm") if b in fc or b in fg]
            detail.append((key, rows))
        if detail:
            key, rows = detail[-1]
            out += ["", f"Where the time goes at {int(key):,} rows (seconds; `core` has no validation step, and its `features` "
                    "includes reading the window):", "", "| step | core | steps | DAG task |", "|---|---|---|---|"]
            out += [f"| {t} | {_s(a) if a is not None else '–'} | {_s(b)} | {_s(c) if c is not None else '–'} |" for t, a, b, c in rows]
    rs = res.get("retrain_shipped")
    if rs:
        c, g = rs.get("core", {}), rs.get("dag", {})
        hp = rs.get("hyperparameters", {})
        xg, lg = hp.get("xgboost", {}), hp.get("lightgbm", {})
        out += ["", f"**Retrain with the shipped hyperparameters** (`{rs.get('hyperparameters_file')}`: XGBoost "
                f"{xg.get('n_estimators')} trees of depth {xg.get('max_depth')}, LightGBM {lg.get('n_estimators')} trees of "
                f"{lg.get('num_leaves')} leaves, early stopping as configured): what a weekly retrain grows until tuning "
                f"replaces them. Core vs DAG only, {rs['rows']:,} rows, medians of {rs['rounds']} alternating rounds; the "
                "steps between the fits are the same code as above.", "",
                "| rows | core s | DAG s | DAG adds s | DAG vs core, wall (CPU) | round by round | fits out, round by round "
                "| XGBoost fit s (core / DAG) | LightGBM fit s (core / DAG) |", "|" + "---|" * 9]
        if "error" in c or "error" in g:
            out.append(f"| {rs['rows']:,} | error: {c.get('error') or g.get('error')} |" + " |" * 7)
        elif "seconds" in c and "seconds" in g:
            fc, fg = c.get("fit_seconds") or {}, g.get("fit_seconds") or {}
            pr, eq = rs.get("overhead_total_paired") or [], rs.get("overhead_total_fits_equalised_paired") or []
            out.append(f"| {rs['rows']:,} | {_s(c['seconds'])} | {_s(g['seconds'])} | {_s(rs.get('added_seconds'))} "
                       f"| {100 * rs['overhead_total']:+.1f}% ({100 * rs.get('overhead_total_cpu', 0):+.1f}%) "
                       f"| {', '.join(f'{100 * v:+.1f}%' for v in pr)} | {', '.join(f'{100 * v:+.1f}%' for v in eq)} "
                       f"| {_s(fc.get('xgboost'))} / {_s(fg.get('xgboost'))} | {_s(fc.get('lightgbm'))} / {_s(fg.get('lightgbm'))} |")
    sc = res.get("scoring")
    if sc and "sizes" in sc:
        out += ["", f"**Batch scoring** through `models:/NAME@production` (`mlflow.pyfunc.load_model`, features built inside; "
                f"model trained on {sc['model'].get('train_rows', 0):,} rows; load {sc.get('load_s', 0):.1f} s).", "",
                "| rows | seconds | rows/s | features s | XGBoost s | LightGBM s | peak RSS MB |", "|---|---|---|---|---|---|---|"]
        for key, r in sc["sizes"].items():
            st = r["stages_s"]
            out.append(f"| {r['rows']:,} | {_s(r['seconds'])} | {r['rows_per_s']:,.0f} | {_s(st['features'])} | {_s(st['xgboost'])} "
                       f"| {_s(st['lightgbm'])} | {_mb(r['peak_mb'])} |")
        explained = {k: r["explain"] for k, r in sc["sizes"].items() if r.get("explain")}
        if explained:
            out += ["", "**Batch scoring with explanations** (`explain.per_prediction`: the same rows, one feature build, both "
                    "boosters' predictions and exact TreeSHAP, top 5 per row; once per size).", "",
                    "| rows | seconds | vs scoring alone | rows/s | XGBoost TreeSHAP s | LightGBM TreeSHAP s | peak RSS MB | same predictions |",
                    "|---|---|---|---|---|---|---|---|"]
            for key, e in explained.items():
                out.append(f"| {int(key):,} | {_s(e['seconds'])} | {e['ratio']:.1f}x | {e['rows_per_s']:,.0f} "
                           f"| {_s(e['treeshap_s']['xgboost'])} | {_s(e['treeshap_s']['lightgbm'])} | {_mb(e['peak_mb'])} "
                           f"| {'yes' if e['same_predictions'] else 'NO'} |")
    elif sc:
        out += ["", f"**Batch scoring**: error: {sc.get('error')}"]
    t = targets(res)
    if t:
        out += ["", "**Targets** (at the largest size measured)", "", "| target | measured | |", "|---|---|---|"]
        out += [f"| {a} | {b} | {'met' if ok else 'missed'} |" for a, b, ok in t]
    return "\n".join(out)


def targets(res: dict[str, Any]) -> list[tuple[str, str, bool]]:
    out: list[tuple[str, str, bool]] = []
    d = res.get("drift")
    if d and d["sizes"]:
        plain = [k for k, v in d["sizes"].items() if not v["meta"].get("mild")]
        if plain:
            r = d["sizes"][plain[-1]]
            o, s, e, f = r.get("ours", {}), r.get("scipy", {}), r.get("evidently", {}), r.get("floor", {})
            n = f"{r['meta']['rows']:,} rows"
            if o.get("seconds") and e.get("seconds"):
                out.append((f"drift {n}: ≥ 100x faster than Evidently", f"{e['seconds'] / o['seconds']:.0f}x", e["seconds"] / o["seconds"] >= 100))
            if o.get("seconds") and s.get("seconds"):
                out.append((f"drift {n}: ≥ 5x faster than the scipy loop", f"{s['seconds'] / o['seconds']:.1f}x", s["seconds"] / o["seconds"] >= 5))
                vs = s.get("vs_ours", {})
                same = (vs.get("max_abs_dD") or 0) <= 1e-12 and (vs.get("max_rel_dp") or 0) == 0
                out.append((f"drift {n}: KS statistic (to 1e-12) and p-values identical to scipy",
                            f"max ΔD {_e(vs.get('max_abs_dD'))}, max Δp {_e(vs.get('max_rel_dp'))}", same))
            if o.get("seconds") and f.get("seconds"):
                out.append((f"drift {n}: within 1.5x of the sort floor", f"{o['seconds'] / f['seconds']:.2f}x", o["seconds"] <= 1.5 * f["seconds"]))
            if o.get("peak_mb"):
                ratio = o["peak_mb"] * 2**20 / r["meta"]["numeric_bytes"]
                out.append((f"drift {n}: peak RSS ≤ 2.5x the two samples", f"{ratio:.2f}x (whole process)", ratio <= 2.5))
        mild = [k for k, v in d["sizes"].items() if v["meta"].get("mild")]
        if mild:
            r = d["sizes"][mild[-1]]
            o, s, f = r.get("ours", {}), r.get("scipy", {}), r.get("floor", {})
            if o.get("seconds") and s.get("seconds") and f.get("seconds"):
                out.append((f"drift {r['meta']['rows']:,} rows, mild shift: ≥ 5x scipy loop, ≤ 1.5x floor",
                            f"{s['seconds'] / o['seconds']:.1f}x scipy, {o['seconds'] / f['seconds']:.1f}x floor "
                            f"({o.get('pvalue_s', 0):.1f} s of it in scipy's own p-value code)",
                            s["seconds"] / o["seconds"] >= 5 and o["seconds"] <= 1.5 * f["seconds"]))
    pa = res.get("parse")
    if pa:
        for name, r in pa["files"].items():
            if "added_ms_median" in r:
                out.append((f"parse: {name} adds < 50 ms", f"{r['added_ms_median']:.0f} ms", r["added_ms_median"] < 50))
    rt = res.get("retrain")
    if rt and rt["sizes"]:
        key = list(rt["sizes"])[-1]
        r = rt["sizes"][key]
        if "overhead_orchestration" in r:
            o, oc = r["overhead_orchestration"], r.get("overhead_orchestration_cpu", r["overhead_orchestration"])
            out.append((f"retrain {int(key):,} rows: orchestration overhead ≤ 10% (DAG vs the same steps without Airflow)",
                        f"{100 * o:+.0f}% wall ({100 * oc:+.0f}% CPU)", o <= 0.10))
        if "overhead_total" in r:
            pr = r.get("overhead_total_paired") or []
            spread = f"; round by round {100 * min(pr):+.0f}% to {100 * max(pr):+.0f}%" if len(pr) > 1 else ""
            out.append((f"retrain {int(key):,} rows: DAG (with validation, MLflow logging, registration) vs bare training ≤ 10%",
                        f"{100 * r['overhead_total']:+.0f}% wall ({100 * r.get('overhead_total_cpu', 0):+.0f}% CPU){spread}",
                        r["overhead_total"] <= 0.10))
        if "overhead_total_fits_equalised" in r:
            eq = r.get("overhead_total_fits_equalised_paired") or []
            spread = f"; round by round {100 * min(eq):+.0f}% to {100 * max(eq):+.0f}%" if len(eq) > 1 else ""
            out.append((f"retrain {int(key):,} rows: the same with each path's own booster fit seconds taken out "
                        "(what the DAG adds besides fitting, over bare training's wall time)",
                        f"{100 * r['overhead_total_fits_equalised']:+.1f}% median{spread}", r["overhead_total_fits_equalised"] <= 0.10))
        tk, data = r.get("tasks", {}), (r.get("core") or {}).get("data_bytes")
        if data and all("peak_mb" in tk.get(t, {}) for t in ("xgboost", "lightgbm")):
            train = max((tk[t]["peak_mb"] - tk[t]["base_mb"]) * 2**20 / data for t in ("xgboost", "lightgbm"))
            out.append((f"retrain {int(key):,} rows: training peak RSS ≤ 3x data in memory (each training task alone, as a worker runs it)",
                        f"{train:.2f}x (XGBoost {(tk['xgboost']['peak_mb'] - tk['xgboost']['base_mb']) * 2**20 / data:.2f}x, "
                        f"LightGBM {(tk['lightgbm']['peak_mb'] - tk['lightgbm']['base_mb']) * 2**20 / data:.2f}x)", train <= 3))
        if data and "peak_mb" in tk.get("build_features", {}):
            feat = (tk["build_features"]["peak_mb"] - tk["build_features"]["base_mb"]) * 2**20 / data
            out.append((f"retrain {int(key):,} rows: the same for the feature-building task", f"{feat:.2f}x", feat <= 3))
        if "core_peak_increment_over_data" in r:
            out.append((f"retrain {int(key):,} rows: the same, core path in one process (raw, features and models all held)",
                        f"{r['core_peak_increment_over_data']:.1f}x", r["core_peak_increment_over_data"] <= 3))
    rs = res.get("retrain_shipped")
    if rs and "overhead_total" in rs:
        pr = rs.get("overhead_total_paired") or []
        spread = f"; round by round {100 * min(pr):+.1f}% to {100 * max(pr):+.1f}%" if len(pr) > 1 else ""
        out.append((f"retrain {rs['rows']:,} rows, shipped hyperparameters: DAG (with validation, MLflow logging, registration) "
                    "vs bare training ≤ 10%", f"{100 * rs['overhead_total']:+.1f}% wall ({100 * rs.get('overhead_total_cpu', 0):+.1f}% CPU)"
                    f"{spread}", rs["overhead_total"] <= 0.10))
    sc = res.get("scoring")
    if sc and sc.get("sizes"):
        key = list(sc["sizes"])[-1]
        rps = sc["sizes"][key]["rows_per_s"]
        out.append((f"batch scoring {int(key):,} rows ≥ 200k rows/s", f"{rps:,.0f} rows/s", rps >= 200_000))
        e = sc["sizes"][key].get("explain")
        if e:
            out.append((f"batch scoring {int(key):,} rows with the top-5 SHAP contributions per row ≤ 2x scoring alone",
                        f"{e['ratio']:.1f}x ({_s(e['seconds'])} s vs {_s(sc['sizes'][key]['seconds'])} s)", e["ratio"] <= 2))
    return out


def update_readme(table: str) -> None:
    p = ROOT / "README.md"
    text = p.read_text()
    block = f"{START}\n{table}\n{END}"
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n## Benchmarks\n\n`make bench` (quick: `make bench BENCH_SIZES=10000,100000`).\n\n" + block + "\n"
    p.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--only", default="drift,parse,retrain,retrain-shipped,scoring")
    ap.add_argument("--shipped-rounds", type=int, default=3, help="rounds of the shipped-hyperparameters retrain (largest size only)")
    ap.add_argument("--no-evidently", action="store_true")
    ap.add_argument("--no-mild", action="store_true", help="skip the mild-shift drift case at the largest size")
    ap.add_argument("--parse-samples", type=int, default=7)
    ap.add_argument("--readme", action="store_true", help="write the table into README.md")
    ap.add_argument("--render", type=Path, help="only render an earlier results JSON")
    ap.add_argument("--merge", action="store_true", help="update only the parts run in the previous latest.json")
    a = ap.parse_args()
    if a.render:
        res = json.loads(a.render.read_text())
        table = render(res)
        print(table)
        if a.readme:
            update_readme(table)
        return
    sizes = [int(x) for x in a.sizes.split(",") if x]
    only = set(a.only.split(","))
    logs = TMP / "logs"
    res: dict[str, Any] = {}
    if a.merge and (RESULTS / "latest.json").exists():  # keep the other parts of the previous run
        res = json.loads((RESULTS / "latest.json").read_text())
    res.update(machine=machine(), versions=versions(), sizes=sizes)
    res.setdefault("parts_measured_at", {}).update({p: res["machine"]["when"] for p in only})
    t0 = time.perf_counter()
    if "parse" in only:
        import parse_bench

        res["parse"] = parse_bench.run(a.parse_samples)
    if "drift" in only:
        import drift_bench

        res["drift"] = drift_bench.run(sizes, not a.no_evidently, [] if a.no_mild else [max(sizes)], logs)
    if "scoring" in only:
        import scoring_bench

        res["scoring"] = scoring_bench.run(sizes, logs)
    if "retrain" in only:
        import retrain_bench

        res["retrain"] = retrain_bench.run(sizes, logs)
    if "retrain-shipped" in only:
        import retrain_bench

        res["retrain_shipped"] = retrain_bench.run_shipped(max(sizes), logs, a.shipped_rounds)
    res["total_s"] = time.perf_counter() - t0
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    for name in ("latest.json", f"run-{stamp}.json"):
        (RESULTS / name).write_text(json.dumps(res, indent=1, default=str))
    table = render(res)
    (RESULTS / "latest.md").write_text(table + "\n")
    print("\n" + table)
    print(f"\nwritten: {RESULTS / 'latest.json'}, {RESULTS / 'latest.md'}")
    if a.readme:
        update_readme(table)
        print("README.md updated")


if __name__ == "__main__":
    main()
