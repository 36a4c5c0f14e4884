"""Retrain: the core library on the data directly vs the same through ``retrain_weekly`` (``dag.test()``).

Data: the store-sales generator, ``WINDOW_DAYS`` days x (rows / days) stores, written as
daily parquet partitions like a user's data. Both paths use the same fixed hyperparameters
(``FAST_HP``, the run tests' set) and read the same partitions.

* core : ``storage.read_window`` -> time split -> ``FeatureBuilder`` fit/transform ->
         ``train_xgboost`` + ``train_lightgbm`` -> ``fit_weights`` -> ensemble scores the test
         window. No Airflow, no MLflow: what a user would script with the library.
* dag  : ``retrain_weekly`` through ``dag.test()`` on SQLite (Airflow + MLflow stores made and
         migrated before timing; heavy libraries imported before timing, as a warm worker has
         them). The gate threshold is set out of reach so the run stops at the gate
         (approval, promote and smoke test are skipped: they wait on a human, not on us); so
         the DAG run also validates with GX, logs to MLflow, writes the drift profile and
         registers the candidate, which the core path does not do. Per-task durations show where.

``run_shipped`` repeats core vs DAG at one size with the hyperparameters the package ships
(``include/config/best_hyperparameters.json``: the trees a user's weekly retrain grows until
tuning replaces them), where the fits are several times longer than with ``FAST_HP``.

Boosters use one thread (``MODELOPS_TRAINING_THREADS=1``, override from the environment): with
two OpenMP threads on a shared 2-core machine the same fit took anywhere from 6 to 140 s.

Peak RSS per child (``VmHWM`` after loading the libraries), and the data's size in memory
(``DataFrame.memory_usage(deep=True)`` of the raw window).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import ROOT, TMP, emit, peak_mb, reset_peak, rss_mb, run_child  # noqa: E402

WINDOW_DAYS = 100
START = date(2025, 1, 1)
END = START + timedelta(days=WINDOW_DAYS)
FAST_HP = {
    "xgboost": {"n_estimators": 150, "max_depth": 6, "learning_rate": 0.15, "subsample": 0.9, "colsample_bytree": 0.9, "tree_method": "hist"},
    "lightgbm": {"n_estimators": 200, "num_leaves": 31, "learning_rate": 0.12, "subsample": 0.9, "subsample_freq": 1, "colsample_bytree": 0.9},
}


SHIPPED_HP = ROOT / "include" / "config" / "best_hyperparameters.json"


def _hp_set() -> str:
    """``fast`` (``FAST_HP``) or ``shipped`` (the package's own file); children learn it from the environment."""
    hp = os.environ.get("BENCH_HP", "fast")
    if hp not in ("fast", "shipped"):
        raise ValueError(f"BENCH_HP must be fast or shipped, got {hp!r}")
    return hp


def workdir(n: int, hp: str | None = None) -> Path:
    hp = hp or _hp_set()
    return TMP / (f"retrain-{n}" if hp == "fast" else f"retrain-{n}-{hp}")


def env_for(n: int, hp: str = "fast") -> dict[str, str]:
    d = workdir(n, hp)
    return {"BENCH_HP": hp,
        "MODELOPS_HOME": str(d / "home"), "MODELOPS_DATA_ROOT": str(d / "data"), "AIRFLOW_HOME": str(d / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{d / 'airflow' / 'airflow.db'}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,reviewer:user",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(d / "airflow" / "passwords.json"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(d / "airflow" / "logs"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{d / 'home' / 'mlflow.db'}",
        "MODELOPS_CONFIG": str(d / "config.yaml"), "GIT_PYTHON_REFRESH": "quiet", "MODELOPS_RETRY_DELAY_SECONDS": "1",
        # One booster thread in both paths: on a shared 2-core machine, OpenMP threads spinning
        # against other load made the same fit vary 10x between runs, drowning what is measured here.
        "MODELOPS_TRAINING_THREADS": os.environ.get("MODELOPS_TRAINING_THREADS", "1"),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT / "plugins")]),
    }


def prepare(n: int) -> dict[str, Any]:
    """Config + partitions for ``n`` rows (once per size)."""
    import yaml

    d = workdir(n)
    meta_path = d / "meta.json"
    for k, v in env_for(n, _hp_set()).items():
        os.environ[k] = v
    (d / "airflow").mkdir(parents=True, exist_ok=True)
    (d / "home").mkdir(parents=True, exist_ok=True)
    raw = yaml.safe_load((ROOT / "include" / "config" / "store_sales.yaml").read_text())
    if _hp_set() == "fast":
        hp = d / "hp.json"
        hp.write_text(json.dumps(FAST_HP))
    else:
        hp = SHIPPED_HP
    name = f"bench_sales_{n}"
    raw.update(model_name=name)
    raw["mlflow"] = {**raw.get("mlflow", {}), "experiment": name}
    raw["training"] = {**raw.get("training", {}), "window_days": WINDOW_DAYS, "hyperparameters_file": str(hp)}
    raw["evaluation"] = {**raw.get("evaluation", {}), "threshold": 1e-9}  # out of reach: the run stops at the gate
    # 10,000 generated stores reach further in the lognormal tail than the demo's range allows
    raw["validation"]["ranges"]["competition_distance"]["max"] = 10_000_000
    (d / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    if meta_path.exists():
        return json.loads(meta_path.read_text())

    from modelops.config import load_config
    from modelops.data.sample_data import generate_store_sales, write_dataset

    cfg = load_config(d / "config.yaml")
    stores = max(1, round(n / WINDOW_DAYS))
    df = generate_store_sales(START, END, n_stores=stores, seed=5)
    write_dataset(df, cfg)
    meta = {"rows": int(len(df)), "stores": stores, "days": WINDOW_DAYS, "data_bytes": int(df.memory_usage(index=True, deep=True).sum())}
    meta_path.write_text(json.dumps(meta))
    return meta


def core(n: int) -> dict[str, Any]:
    import lightgbm  # noqa: F401 - warm imports, like the DAG child
    import xgboost  # noqa: F401

    from modelops import metrics as M
    from modelops.data import storage
    from modelops.config import load_config, load_hyperparameters
    from modelops.training.ensemble import EnsembleModel, predict_raw
    from modelops.data.features import FeatureBuilder, take_rows
    from modelops.lifecycle import score_window
    from modelops.training.boosters import fit_weights, sort_by_time, time_split, train_lightgbm, train_xgboost, transform_target

    from modelops._memory import lean_memory

    cfg = load_config()
    hp = load_hyperparameters(cfg, None)
    base = rss_mb()
    reset_peak()
    stamps: dict[str, float] = {}
    c0 = time.process_time()
    t0 = time.perf_counter()
    raw = storage.read_window(cfg, START, END)
    data_bytes = int(raw.memory_usage(index=True, deep=True).sum())
    ts, ent, tgt = cfg.data.timestamp_column, cfg.data.entity_column, cfg.data.target_column
    with lean_memory():  # the allocator settings lifecycle.build_features uses, for the same step
        raw = sort_by_time(raw, ts, ent)
        tr, va, te, _ = time_split(raw, ts, cfg.training.split.train, cfg.training.split.validation)
        builder = FeatureBuilder.from_config(cfg).fit(raw)
        X = builder.transform(raw, use_history=False)
    y_raw = raw[tgt].to_numpy(dtype="float64")
    tt = cfg.training.target_transform
    y = transform_target(y_raw, tt)
    X_tr, X_va = take_rows(X, tr), take_rows(X, va)  # day splits of a sorted frame: slices, not copies
    stamps["features"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    m_x, i_x = train_xgboost(X_tr, y[tr], X_va, y[va], hp["xgboost"], cfg.task, cfg.training.early_stopping_rounds, cfg.training.seed)
    stamps["xgboost"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    m_l, i_l = train_lightgbm(X_tr, y[tr], X_va, y[va], hp["lightgbm"], cfg.task, cfg.training.early_stopping_rounds,
                            cfg.training.seed, builder.categorical_feature_names)
    stamps["lightgbm"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    model = EnsembleModel(builder, m_x, m_l, dict(cfg.training.ensemble.weights), cfg.task, tt)
    w = fit_weights(predict_raw(m_x, X_va, cfg.task), predict_raw(m_l, X_va, cfg.task), y_raw[va], cfg.task,
                    cfg.evaluation.metric, cfg.greater_is_better, model.inverse)
    model = EnsembleModel(builder, m_x, m_l, w, cfg.task, tt)
    pred = score_window(model, raw, cfg, te)
    test = M.compute(cfg.task, y_raw[te], pred)
    stamps["ensemble"] = time.perf_counter() - t1
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "cpu_s": time.process_time() - c0, "rows": int(len(raw)), "steps": stamps, "peak_mb": peak_mb(), "base_mb": base, "data_bytes": data_bytes,
            "features_bytes": int(X.memory_usage(index=True, deep=True).sum()), "test_metric": test[cfg.evaluation.metric],
            "weights": w, "fit_seconds": {"xgboost": i_x["fit_seconds"], "lightgbm": i_l["fit_seconds"]}}


def _fresh_stores() -> None:
    """A fresh MLflow store and work root per run: a second run of the same logical date would
    otherwise reuse the first one's ensemble and registered version (idempotency by design)."""
    import shutil

    home = Path(os.environ["MODELOPS_HOME"])
    for stale in ("mlflow.db", "mlartifacts", "work", "modelops.db"):
        target = home / stale
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def _warm_imports() -> None:
    """What a long-lived worker has loaded before a task starts."""
    import great_expectations  # noqa: F401
    import lightgbm  # noqa: F401
    import matplotlib  # noqa: F401
    import mlflow  # noqa: F401
    import xgboost  # noqa: F401


STEPS = ("validate_data", "build_features", "train_xgboost", "train_lightgbm", "build_ensemble", "evaluate", "register_candidate", "gate")


def steps(n: int) -> dict[str, Any]:
    """The DAG's steps without Airflow: ``modelops.lifecycle`` called in order in one process, as a
    notebook or a script would. Same functions, same files between them, same MLflow logging;
    what is left between this and the DAG run is Airflow itself."""
    from modelops import lifecycle
    from modelops.governance import registry
    from modelops.config import load_config
    from modelops.tracking import RunContext

    _fresh_stores()
    _warm_imports()
    cfg = load_config()
    registry.ensure_experiment(cfg.mlflow.experiment)
    day = END.isoformat() + "T00:00:00+00:00"
    ctx = RunContext("retrain_weekly", f"scripted__{day}", day, None, day, 1, "manual", {})
    base = rss_mb()
    reset_peak()
    stamps: dict[str, float] = {}
    c0 = time.process_time()
    t0 = time.perf_counter()

    def timed(name: str, fn: Any, *args: Any) -> Any:
        t = time.perf_counter()
        out = fn(*args)
        stamps[name] = time.perf_counter() - t
        return out

    parent = lifecycle.parent_run(cfg, ctx)
    val = timed("validate_data", lifecycle.validate_data, cfg, ctx, START, END, "raw.parquet", parent)
    feats = timed("build_features", lifecycle.build_features, cfg, ctx, val["path"])
    (workdir(n) / "features_xcom.json").write_text(json.dumps({**feats, "_raw_path": val["path"]}))
    xgb = timed("train_xgboost", lifecycle.train_model, cfg, ctx, "xgboost", feats)
    lgbm = timed("train_lightgbm", lifecycle.train_model, cfg, ctx, "lightgbm", feats)
    ens = timed("build_ensemble", lifecycle.build_ensemble, cfg, ctx, feats, xgb, lgbm, val)
    ev = timed("evaluate", lifecycle.evaluate, cfg, ctx, feats, ens)
    reg = timed("register_candidate", lifecycle.register_candidate, cfg, ctx, ens, ev, val)
    timed("gate", lifecycle.gate, cfg, ctx, reg["version"], ev)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "cpu_s": time.process_time() - c0, "peak_mb": peak_mb(), "base_mb": base, "steps": stamps,
            "fit_seconds": {"xgboost": xgb["fit_seconds"], "lightgbm": lgbm["fit_seconds"]}}


def task(n: int, which: str) -> dict[str, Any]:
    """One training task alone in a fresh process, as an executor runs it: its peak RSS is the
    worker's memory need. Inputs are the files the last ``steps`` run left."""
    from modelops import lifecycle
    from modelops.config import load_config
    from modelops.tracking import RunContext

    _warm_imports()
    cfg = load_config()
    day = END.isoformat() + "T00:00:00+00:00"
    ctx = RunContext("retrain_weekly", f"scripted__{day}", day, None, day, 2, "manual", {})
    feats = json.loads((workdir(n) / "features_xcom.json").read_text())
    base = rss_mb()
    reset_peak()
    t0 = time.perf_counter()
    if which == "build_features":
        lifecycle.build_features(cfg, ctx, feats["_raw_path"])
    else:
        lifecycle.train_model(cfg, ctx, which, feats)
    return {"seconds": time.perf_counter() - t0, "peak_mb": peak_mb(), "base_mb": base}


def dag(n: int) -> dict[str, Any]:
    from datetime import datetime, timezone

    _fresh_stores()
    _warm_imports()
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db

    from modelops.governance import registry
    from modelops.config import load_config

    db.resetdb()
    cfg = load_config()
    registry.ensure_experiment(cfg.mlflow.experiment)  # MLflow store created and migrated before timing
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    if bag.import_errors:
        raise RuntimeError(bag.import_errors)
    d = bag.dags["retrain_weekly"]
    # dag.test() starts Airflow's execution API in-process and its first request builds the versioned
    # routers (Cadwyn: ~4.5 s of pydantic schema generation, seen with py-spy). A deployment pays that
    # once when its api-server boots, so one request goes through before timing.
    import httpx
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    with httpx.Client(transport=in_process_api_server().transport, base_url="http://in-process.invalid") as warm:
        warm.get("/execution/health")
    base = rss_mb()
    reset_peak()
    c0 = time.process_time()
    t0 = time.perf_counter()
    dr = d.test(logical_date=datetime.combine(END, datetime.min.time()).replace(tzinfo=timezone.utc),
                run_conf={"training_start": START.isoformat(), "training_end": END.isoformat()})
    seconds = time.perf_counter() - t0
    tis = {ti.task_id: {"state": str(ti.state),
                        "seconds": (ti.end_date - ti.start_date).total_seconds() if ti.start_date and ti.end_date else None}
           for ti in dr.get_task_instances()}
    # Each booster task logs its fit's own time to its MLflow run (the store is this round's alone).
    runs = registry.client().search_runs([registry.ensure_experiment(cfg.mlflow.experiment)], "metrics.fit_seconds > 0")
    fits = {r.data.tags.get("mlflow.runName"): r.data.metrics["fit_seconds"] for r in runs}
    return {"seconds": seconds, "cpu_s": time.process_time() - c0, "peak_mb": peak_mb(), "base_mb": base, "state": str(dr.state),
            "tasks": tis, "fit_seconds": fits}


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time (all runs' wall and CPU seconds kept)."""
    ok = sorted((r for r in runs if "seconds" in r), key=lambda r: r["seconds"])
    if not ok:
        return runs[-1]
    med = dict(ok[(len(ok) - 1) // 2])
    med["all_seconds"] = [r["seconds"] for r in runs if "seconds" in r]
    med["all_cpu_s"] = [r["cpu_s"] for r in runs if "cpu_s" in r]
    med["cpu_s"] = statistics.median(med["all_cpu_s"])
    return med


def _besides_fits(r: dict[str, Any]) -> float | None:
    """A run's wall seconds less its two booster fits (``fit_seconds``, timed around ``fit`` itself)."""
    fits = r.get("fit_seconds") or {}
    if "seconds" not in r or set(fits) != {"xgboost", "lightgbm"}:
        return None
    return r["seconds"] - sum(fits.values())


def _paired(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Round-by-round ratios between the paths that ran (each round's paths ran back to back).

    The two fits are the same work in every path, yet one-thread fits vary 10-20% between
    processes here. With each path's own fit seconds taken out, a round compares what two
    paths do besides fitting, over the wall time of the first (core, or steps for Airflow's
    share): the fit noise cancels.
    """
    out: dict[str, Any] = {}
    paired = [d["seconds"] / k["seconds"] - 1 for k, d in zip(runs.get("core", []), runs.get("dag", []))
              if "seconds" in k and "seconds" in d]
    if paired:
        out["overhead_total_paired"] = paired
    for name, a, b in (("total", "core", "dag"), ("orchestration", "steps", "dag"), ("steps", "core", "steps")):
        eq = [(_besides_fits(y) - _besides_fits(x)) / x["seconds"] for x, y in zip(runs.get(a, []), runs.get(b, []))
              if _besides_fits(x) is not None and _besides_fits(y) is not None]
        if eq:
            out[f"overhead_{name}_fits_equalised_paired"] = eq
            out[f"overhead_{name}_fits_equalised"] = statistics.median(eq)
    return out


def run_shipped(n: int, logs: Path, rounds: int = 3) -> dict[str, Any]:
    """Core vs DAG at ``n`` rows with the package's own hyperparameters, alternating ``rounds`` times.

    The fast set's fits are short, so what the DAG adds besides them (a few seconds, about the
    same whatever the trees) is a large share of its wall time; this is the share a user's
    weekly retrain sees with the trees it actually grows. Steps and the per-task peaks are left
    to ``run``: the work between the fits is the same code.
    """
    me = str(Path(__file__).resolve())
    env = env_for(n, "shipped")
    hp = json.loads(SHIPPED_HP.read_text())
    out: dict[str, Any] = {"rows": n, "rounds": rounds, "hyperparameters_file": str(SHIPPED_HP.relative_to(ROOT)),
                           "hyperparameters": {k: v for k, v in hp.items() if not k.startswith("_")}}
    print(f"[retrain-shipped] {n}: preparing data", flush=True)
    out["meta"] = run_child([sys.executable, me, "child", "prepare", str(n)], env=env, log=logs / f"retrain-shipped-{n}-prepare.log")
    runs: dict[str, list[dict[str, Any]]] = {"core": [], "dag": []}
    for i in range(rounds):
        for which in ("core", "dag"):
            print(f"[retrain-shipped] {n}: {which} ({i + 1}/{rounds})", flush=True)
            runs[which].append(run_child([sys.executable, me, "child", which, str(n)], env=env,
                                         log=logs / f"retrain-shipped-{n}-{which}-{i}.log", timeout=3 * 3600))
    out["core"], out["dag"] = _median_run(runs["core"]), _median_run(runs["dag"])
    c, g = out["core"], out["dag"]
    if "seconds" in c and "seconds" in g:
        out["overhead_total"] = g["seconds"] / c["seconds"] - 1
        out["overhead_total_cpu"] = g["cpu_s"] / c["cpu_s"] - 1
        out["added_seconds"] = g["seconds"] - c["seconds"]
    out.update(_paired(runs))
    return out


def run(sizes: list[int], logs: Path, repeat: int = 3, repeat_largest: int = 5) -> dict[str, Any]:
    """Core, steps and DAG children alternate ``repeat`` times per size (``repeat_largest`` at the
    largest, where the targets are judged), so other load hits all three alike; medians.

    On a shared 2-core machine the same one-thread booster fit varies by ~10% between processes
    (measured: 13.6-16.2 s for one LightGBM fit on the same data in one process), as much as the
    overhead being measured; the extra rounds and the paired ratios (each round's DAG over the
    core run just before it) show how far the median can be trusted.
    """
    out: dict[str, Any] = {"window_days": WINDOW_DAYS, "hyperparameters": FAST_HP, "repeat": repeat,
                           "repeat_largest": repeat_largest, "sizes": {}}
    me = str(Path(__file__).resolve())
    for n in sizes:
        rounds = repeat_largest if n == max(sizes) else repeat
        print(f"[retrain] {n}: preparing data", flush=True)
        meta = run_child([sys.executable, me, "child", "prepare", str(n)], env=env_for(n), log=logs / f"retrain-{n}-prepare.log")
        res: dict[str, Any] = {"meta": meta}
        runs: dict[str, list[dict[str, Any]]] = {"core": [], "steps": [], "dag": []}
        for i in range(rounds):
            for which in ("core", "steps", "dag"):
                print(f"[retrain] {n}: {which} ({i + 1}/{rounds})", flush=True)
                runs[which].append(run_child([sys.executable, me, "child", which, str(n)], env=env_for(n),
                                             log=logs / f"retrain-{n}-{which}-{i}.log", timeout=3600))
        res["core"], res["steps"], res["dag"] = _median_run(runs["core"]), _median_run(runs["steps"]), _median_run(runs["dag"])
        c, g, st = res["core"], res["dag"], res["steps"]
        # Each heavy task in its own fresh process (what a worker runs), after one more steps run
        # left its inputs: the peak a worker needs for that task.
        print(f"[retrain] {n}: steps for the per-task peaks", flush=True)
        run_child([sys.executable, me, "child", "steps", str(n)], env=env_for(n), log=logs / f"retrain-{n}-steps-tasks.log", timeout=3600)
        res["tasks"] = {}
        for which in ("build_features", "xgboost", "lightgbm"):
            print(f"[retrain] {n}: task {which} alone", flush=True)
            res["tasks"][which] = run_child([sys.executable, me, "child", "task", str(n), which], env=env_for(n),
                                            log=logs / f"retrain-{n}-task-{which}.log", timeout=3600)
        peaks = [t["peak_mb"] - t["base_mb"] for t in res["tasks"].values() if "peak_mb" in t]
        if peaks:
            res["task_peak_increment_over_data"] = max(peaks) * 2**20 / c["data_bytes"] if c.get("data_bytes") else None
        if "seconds" in st and "seconds" in g:
            res["overhead_orchestration"] = g["seconds"] / st["seconds"] - 1
            res["overhead_orchestration_cpu"] = g["cpu_s"] / st["cpu_s"] - 1
        res.update(_paired(runs))
        if "seconds" in c and "seconds" in g:
            train_tasks = ("build_features", "train_xgboost", "train_lightgbm", "build_ensemble")
            tt = [g["tasks"].get(t, {}).get("seconds") for t in train_tasks]
            res["overhead_total"] = g["seconds"] / c["seconds"] - 1
            res["overhead_total_cpu"] = g["cpu_s"] / c["cpu_s"] - 1
            if all(v is not None for v in tt):
                res["training_tasks_s"] = sum(tt)
                res["overhead_training_tasks"] = sum(tt) / c["seconds"] - 1
            res["core_peak_over_data"] = (c["peak_mb"] * 2**20) / c["data_bytes"]
            res["core_peak_increment_over_data"] = ((c["peak_mb"] - c["base_mb"]) * 2**20) / c["data_bytes"]
            res["dag_peak_increment_over_data"] = ((g["peak_mb"] - g["base_mb"]) * 2**20) / c["data_bytes"]
        out["sizes"][str(n)] = res
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("child")
    c.add_argument("what", choices=["prepare", "core", "steps", "dag", "task"])
    c.add_argument("rows", type=int)
    c.add_argument("which", nargs="?")
    r = sub.add_parser("run")
    r.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    r.add_argument("--shipped", action="store_true", help="core vs DAG with the shipped hyperparameters, at the largest --rows")
    a = ap.parse_args()
    if a.cmd == "child":
        emit(task(a.rows, a.which) if a.what == "task" else {"prepare": prepare, "core": core, "steps": steps, "dag": dag}[a.what](a.rows))
    elif a.shipped:
        print(json.dumps(run_shipped(max(a.rows), TMP / "logs"), indent=1, default=str))
    else:
        print(json.dumps(run(a.rows, TMP / "logs"), indent=1, default=str))
