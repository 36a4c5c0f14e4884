"""DAG parse cost: per DAG file, what importing it adds on top of ``import airflow.sdk``.

Each sample is a fresh interpreter (``python bench/parse_bench.py child FILE``) that times
``import airflow.sdk`` and then executing the DAG file the way the dag-processor does
(a module import of the file), and lists the top-level packages the DAG file pulled in
beyond what ``airflow.sdk`` had already loaded. Medians over ``--samples`` interpreters.

Two states per file. **Steady**: what the dag-processor pays on every re-parse (every
``min_file_process_interval``): our modules have bytecode (``compileall``, as the Docker
image does and as any interpreter allowed to write ``__pycache__`` does after its first
import) and the parse-time config cache holds the validated config. **First parse**: our
modules compiled from source (their ``__pycache__`` removed, ``PYTHONDONTWRITEBYTECODE=1``)
and an empty config cache, so the config goes through full pydantic validation.
"""

from __future__ import annotations

import argparse
import importlib.util
import compileall
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import ROOT, TMP, emit, run_child  # noqa: E402

HEAVY = ["pandas", "numpy", "mlflow", "xgboost", "lightgbm", "great_expectations", "sklearn", "scipy", "matplotlib",
         "boto3", "pyarrow", "sqlalchemy_utils", "fsspec"]


SOURCES = ("include", "plugins", "dags")


def env(cache: Path | None = None, bytecode: bool = True) -> dict[str, str]:
    home = TMP / "parse-airflow"
    home.mkdir(parents=True, exist_ok=True)
    extra = {"MODELOPS_CACHE_DIR": str(cache or TMP / "parse-config-cache")}
    if not bytecode:
        extra["PYTHONDONTWRITEBYTECODE"] = "1"
    return {**extra, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "MODELOPS_HOME": str(TMP / "parse-home"),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT / "plugins")])}


def child(path: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    import airflow.sdk  # noqa: F401

    t1 = time.perf_counter()
    before = set(sys.modules)
    spec = importlib.util.spec_from_file_location(f"unusual_prefix_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = mod  # type: ignore[union-attr]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    t2 = time.perf_counter()
    new = sorted(set(sys.modules) - before)
    tops: dict[str, int] = {}
    for m in new:
        top = m.split(".")[0]
        tops[top] = tops.get(top, 0) + 1
    return {"sdk_s": t1 - t0, "dag_s": t2 - t1, "new_modules": len(new), "new_packages": tops,
            "heavy": sorted(h for h in HEAVY if h in tops)}


def _drop_bytecode() -> None:
    for top in SOURCES:
        for d in (ROOT / top).rglob("__pycache__"):
            shutil.rmtree(d, ignore_errors=True)


def _samples(f: Path, n: int, cold: bool) -> list[dict[str, Any]]:
    runs = []
    for i in range(n):
        if cold:
            _drop_bytecode()
            cache = TMP / f"parse-config-cold-{i}"
            shutil.rmtree(cache, ignore_errors=True)
            runs.append(run_child([sys.executable, __file__, "child", str(f)], env=env(cache, bytecode=False)))
        else:
            runs.append(run_child([sys.executable, __file__, "child", str(f)], env=env()))
    return [r for r in runs if "error" not in r] or runs[:1]


def run(samples: int) -> dict[str, Any]:
    out: dict[str, Any] = {"samples": samples, "cold_samples": max(3, samples // 2), "files": {}}
    sdk_all: list[float] = []
    files = sorted((ROOT / "dags").glob("*.py"))
    cold: dict[str, list[dict[str, Any]]] = {f.name: _samples(f, out["cold_samples"], cold=True) for f in files}
    for top in SOURCES:
        compileall.compile_dir(str(ROOT / top), quiet=1)
    shutil.rmtree(TMP / "parse-config-cache", ignore_errors=True)
    for f in files:
        run_child([sys.executable, __file__, "child", str(f)], env=env())  # fills the config cache, as the first parse does
        ok = _samples(f, samples, cold=False)
        if "error" in ok[0]:
            out["files"][f.name] = {"error": ok[0].get("error")}
            continue
        sdk_all += [r["sdk_s"] for r in ok]
        last = ok[-1]
        first = [r["dag_s"] for r in cold[f.name] if "error" not in r]
        out["files"][f.name] = {
            "added_ms_median": 1000 * statistics.median(r["dag_s"] for r in ok),
            "added_ms_min": 1000 * min(r["dag_s"] for r in ok),
            "added_ms_max": 1000 * max(r["dag_s"] for r in ok),
            "first_parse_ms_median": 1000 * statistics.median(first) if first else None,
            "new_modules": last["new_modules"], "heavy_imported": last["heavy"],
            "new_packages": dict(sorted(last["new_packages"].items(), key=lambda kv: -kv[1])),
        }
        r = out["files"][f.name]
        print(f"[parse] {f.name}: +{r['added_ms_median']:.1f} ms (first parse +{r['first_parse_ms_median'] or float('nan'):.1f} ms)",
              flush=True)
    if sdk_all:
        out["import_airflow_sdk_s_median"] = statistics.median(sdk_all)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("child")
    c.add_argument("file", type=Path)
    r = sub.add_parser("run")
    r.add_argument("--samples", type=int, default=7)
    a = ap.parse_args()
    if a.cmd == "child":
        emit(child(a.file))
    else:
        import json

        print(json.dumps(run(a.samples), indent=1))
