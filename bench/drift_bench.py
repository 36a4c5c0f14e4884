"""Drift: ``modelops.drift.detect_drift`` vs a per-column scipy loop vs Evidently 0.7, same data, same run.

Data: 50 numeric features (normal and lognormal; the first 10 shift in location and/or
scale) and 5 categorical ones (3..50 categories; the first changes its mix), 1% nulls in
the current sample. ``mild`` data shifts the first 10 numeric features only slightly, so
their KS statistic lands where scipy's asymptotic p-value (``kstwo.sf`` -> ``smirnov``) is
slowest; both ours and scipy pay that, since ours calls the same function.

Every approach runs in its own child process (``python bench/drift_bench.py child ...``)
that loads the data from parquet, then is timed and its peak RSS taken:

* ours       : ``detect_drift(profile, current)`` with the reference profile loaded from
               its ``.npz`` (built once at training time and saved with the model; timed
               separately as ``profile``); all CPU threads, and once on a single thread
* scipy loop : per numeric column ``scipy.stats.ks_2samp`` + numpy PSI on the same
               reference-quantile bins, per categorical column PSI from value counts
* Evidently  : ``Report([DataDriftPreset(num_method="ks", cat_method="psi"),
               ValueDrift(column, method="psi") per numeric column])`` in its own venv
               (Evidently 0.7 needs pandas < 3)
* sort floor : ``np.sort`` of both samples of every numeric column once, what an exact KS
               without a cached reference must at least do
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import ROOT, TMP, emit, peak_mb, reset_peak, rss_mb, run_child, timed  # noqa: E402

N_NUMERIC, N_CATEGORICAL, N_SHIFTED = 50, 5, 10
CARDINALITIES = (3, 5, 10, 20, 50)
EVIDENTLY_PY = ROOT / ".bench-venv-evidently" / "bin" / "python"


def numeric_names() -> list[str]:
    return [f"f{i:02d}" for i in range(N_NUMERIC)]


def categorical_names() -> list[str]:
    return [f"c{i}" for i in range(N_CATEGORICAL)]


def make_frames(n: int, mild: bool = False, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    ref, cur = {}, {}
    for i, name in enumerate(numeric_names()):
        if i < N_SHIFTED:
            shift = (0.008 + 0.042 * i / (N_SHIFTED - 1)) if mild else (0.05 + 0.45 * i / (N_SHIFTED - 1))
            scale = 1.0 if mild else (1.2 if i % 3 == 0 else 1.0)
        else:
            shift, scale = 0.0, 1.0
        r, c = rng.normal(0.0, 1.0, n), rng.normal(shift, scale, n)
        if i % 2 == 1:
            r, c = np.exp(r), np.exp(c)
        c[rng.random(n) < 0.01] = np.nan
        ref[name], cur[name] = r, c
    for i, (name, k) in enumerate(zip(categorical_names(), CARDINALITIES)):
        labels = np.array([f"{name}_v{j}" for j in range(k)], dtype=object)
        p_ref = rng.dirichlet(np.full(k, 2.0))
        p_cur = rng.dirichlet(np.full(k, 2.0)) if i == 0 and not mild else p_ref
        r = labels[rng.choice(k, n, p=p_ref)]
        c = labels[rng.choice(k, n, p=p_cur)].astype(object)
        c[rng.random(n) < 0.01] = None
        ref[name], cur[name] = r, c
    return pd.DataFrame(ref), pd.DataFrame(cur)


def prepare(n: int, mild: bool) -> tuple[Path, dict[str, Any]]:
    """Write reference and current to parquet (once per size); returns the dir and data sizes."""
    d = TMP / f"drift-{n}{'-mild' if mild else ''}"
    meta_path = d / "meta.json"
    if meta_path.exists():
        return d, json.loads(meta_path.read_text())
    d.mkdir(parents=True, exist_ok=True)
    ref, cur = make_frames(n, mild)
    ref.to_parquet(d / "ref.parquet", index=False)
    cur.to_parquet(d / "cur.parquet", index=False)
    num = numeric_names()
    meta = {
        "rows": n, "mild": mild,
        "numeric_bytes": int(ref[num].memory_usage(index=False).sum() + cur[num].memory_usage(index=False).sum()),
        "data_bytes": int(ref.memory_usage(index=False, deep=True).sum() + cur.memory_usage(index=False, deep=True).sum()),
    }
    meta_path.write_text(json.dumps(meta))
    return d, meta


# -- children ---------------------------------------------------------------------------------

def _results_ours(report) -> dict[str, list]:
    return {f.feature: [f.ks_statistic, f.ks_pvalue, f.psi] for f in report.features}


def child(approach: str, d: Path, repeat: int, jobs: int | None) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from modelops.config import DriftConfig

    cfg = DriftConfig()
    num, cat = numeric_names(), categorical_names()
    out: dict[str, Any] = {"approach": approach}
    if approach == "profile":
        from modelops.monitoring.drift import ReferenceProfile

        ref = pd.read_parquet(d / "ref.parquet")
        out["rss_loaded_mb"] = rss_mb()
        reset_peak()
        seconds, profile = timed(lambda: ReferenceProfile.from_frame(ref, num, cat, cfg.psi_bins, n_jobs=jobs), repeat)
        profile.save(d / "profile.npz")
        out.update(seconds=seconds, peak_mb=peak_mb(), profile_bytes=(d / "profile.npz").stat().st_size)
        return out
    if approach == "ours":
        from modelops.monitoring.drift import ReferenceProfile, detect_drift

        profile = ReferenceProfile.load(d / "profile.npz")
        cur = pd.read_parquet(d / "cur.parquet")
        out["rss_loaded_mb"] = rss_mb()
        reset_peak()
        seconds, report = timed(lambda: detect_drift(profile, cur, cfg, num, cat, n_jobs=jobs), repeat)
        peak = peak_mb()
        # the share of KS p-value time (kstwo.sf, the same call scipy makes): identical in both
        from modelops.monitoring.drift import _ks_pvalue

        t0 = time.perf_counter()
        for f in report.features:
            if f.ks_statistic is not None:
                _ks_pvalue(f.ks_statistic, f.n_reference, f.n_current)
        out.update(seconds=seconds, peak_mb=peak, results=_results_ours(report), pvalue_s=time.perf_counter() - t0,
                   drifted=report.drifted_features, jobs=jobs)
        return out

    ref = pd.read_parquet(d / "ref.parquet")
    cur = pd.read_parquet(d / "cur.parquet")
    out["rss_loaded_mb"] = rss_mb()
    reset_peak()
    if approach == "floor":
        def sort_both():
            for col in num:
                np.sort(ref[col].to_numpy())
                np.sort(cur[col].to_numpy())
        seconds, _ = timed(sort_both, repeat)
        out.update(seconds=seconds, peak_mb=peak_mb())
        return out
    if approach == "scipy":
        seconds, results = timed(lambda: scipy_loop(ref, cur, num, cat, cfg.psi_bins, cfg.psi_epsilon), repeat)
        out.update(seconds=seconds, peak_mb=peak_mb(), results=results)
        return out
    raise SystemExit(f"unknown approach {approach}")


def scipy_loop(ref, cur, num, cat, bins: int, eps: float) -> dict[str, list]:
    """What a user writes without this library: scipy per column, PSI with numpy."""
    import numpy as np
    from scipy import stats

    def psi(rc, cc):
        rs, cs = rc / rc.sum(), cc / cc.sum()
        rs, cs = np.where(rc == 0, eps, rs), np.where(cc == 0, eps, cs)
        return float(np.sum((cs - rs) * np.log(cs / rs)))

    out = {}
    for col in num:
        r, c = ref[col].to_numpy(), cur[col].to_numpy()
        r, c = r[~np.isnan(r)], c[~np.isnan(c)]
        ks = stats.ks_2samp(r, c)
        edges = np.unique(np.quantile(r, np.linspace(0, 1, bins + 1)[1:-1]))
        rc = np.bincount(np.searchsorted(edges, r, side="left"), minlength=edges.size + 1)
        cc = np.bincount(np.searchsorted(edges, c, side="left"), minlength=edges.size + 1)
        out[col] = [float(ks.statistic), float(ks.pvalue), psi(rc, cc)]
    for col in cat:
        r, c = ref[col].value_counts(), cur[col].value_counts()
        keys = list(r.index)
        rc = np.array([r[k] for k in keys] + [0], dtype=float)
        cc = np.array([c.get(k, 0) for k in keys] + [sum(v for k, v in c.items() if k not in r.index)], dtype=float)
        out[col] = [None, None, psi(rc, cc)]
    return out


# -- comparison and orchestration ----------------------------------------------------------------

def _max_diffs(a: dict[str, list], b: dict[str, list]) -> dict[str, float | None]:
    """Largest |dD|, relative dp and |dPSI| over the features both report."""
    dd = dp = dpsi = None
    for f, (d1, p1, s1) in a.items():
        if f not in b:
            continue
        d2, p2, s2 = b[f]
        if d1 is not None and d2 is not None:
            dd = max(dd or 0.0, abs(d1 - d2))
        if p1 is not None and p2 is not None:
            rel = 0.0 if p1 == p2 else abs(p1 - p2) / max(abs(p2), 1e-300)
            dp = max(dp or 0.0, rel)
        if s1 is not None and s2 is not None:
            dpsi = max(dpsi or 0.0, abs(s1 - s2))
    return {"max_abs_dD": dd, "max_rel_dp": dp, "max_abs_dPSI": dpsi}


def run(sizes: list[int], evidently: bool, mild_sizes: list[int], logs: Path, repeat_small: int = 5,
        repeat_large: int = 5) -> dict[str, Any]:
    py = sys.executable
    me = str(Path(__file__).resolve())
    out: dict[str, Any] = {"sizes": {}}
    ev_ok = evidently and EVIDENTLY_PY.exists()
    if evidently and not ev_ok:
        out["evidently_note"] = f"Evidently venv missing ({EVIDENTLY_PY}); run `make bench-evidently-venv`"
    for n, mild in [(n, False) for n in sizes] + [(n, True) for n in mild_sizes]:
        key = f"{n}{'-mild' if mild else ''}"
        print(f"[drift] {key}: preparing data", flush=True)
        d, meta = prepare(n, mild)
        repeat = str(repeat_small if n <= 200_000 else repeat_large)
        res: dict[str, Any] = {"meta": meta}
        plan = [("profile", ["profile"]), ("ours", ["ours"]), ("ours_1thread", ["ours", "--jobs", "1"]),
                ("scipy", ["scipy"]), ("floor", ["floor"])]
        for name, args in plan:
            print(f"[drift] {key}: {name}", flush=True)
            res[name] = run_child([py, me, "child", *args, "--dir", str(d), "--repeat", repeat], log=logs / f"drift-{key}-{name}.log")
        if ev_ok and not mild:
            print(f"[drift] {key}: evidently", flush=True)
            res["evidently"] = run_child([str(EVIDENTLY_PY), str(ROOT / "bench" / "evidently_child.py"), "--dir", str(d)],
                                         log=logs / f"drift-{key}-evidently.log", timeout=3 * 3600)
        ours = res["ours"].get("results")
        if ours:
            for other in ("ours_1thread", "scipy", "evidently"):
                if res.get(other, {}).get("results"):
                    res[other]["vs_ours"] = _max_diffs(ours, res[other]["results"])
        for k in ("ours", "ours_1thread", "scipy", "evidently"):  # keep the JSON small: per-feature values dropped
            if k in res and "results" in res[k]:
                res[k]["n_features"] = len(res[k].pop("results"))
        out["sizes"][key] = res
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("child")
    c.add_argument("approach", choices=["profile", "ours", "scipy", "floor"])
    c.add_argument("--dir", type=Path, required=True)
    c.add_argument("--repeat", type=int, default=1)
    c.add_argument("--jobs", type=int, default=None)
    r = sub.add_parser("run")
    r.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    r.add_argument("--mild-rows", type=int, nargs="*", default=[1_000_000])
    r.add_argument("--no-evidently", action="store_true")
    args = ap.parse_args()
    if args.cmd == "child":
        t0 = time.perf_counter()
        res = child(args.approach, args.dir, args.repeat, args.jobs)
        res["child_total_s"] = time.perf_counter() - t0
        emit(res)
    else:
        print(json.dumps(run(args.rows, not args.no_evidently, args.mild_rows, TMP / "logs"), indent=1, default=str))


if __name__ == "__main__":
    main()
