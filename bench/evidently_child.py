"""Evidently 0.7 on the drift benchmark's data, forced to our methods (runs in .bench-venv-evidently).

KS for the numeric columns and PSI for the categorical ones through ``DataDriftPreset``, plus
``ValueDrift(method="psi")`` per numeric column, so every feature gets KS + PSI like ours.
Evidently's KS value is scipy's p-value; its PSI bins numeric columns by Sturges'
equal-width rule on the pooled data (ours: reference deciles), so PSI values differ by design.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import emit, peak_mb, reset_peak, rss_mb  # noqa: E402

import pandas as pd  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, required=True)
    args = ap.parse_args()
    import evidently
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    ref = pd.read_parquet(args.dir / "ref.parquet")
    cur = pd.read_parquet(args.dir / "cur.parquet")
    num = [c for c in ref.columns if c.startswith("f")]
    cat = [c for c in ref.columns if c.startswith("c")]
    loaded = rss_mb()
    reset_peak()
    t0 = time.perf_counter()
    dd = DataDefinition(numerical_columns=num, categorical_columns=cat)
    report = Report([DataDriftPreset(num_method="ks", cat_method="psi"), *[ValueDrift(column=c, method="psi") for c in num]])
    snapshot = report.run(current_data=Dataset.from_pandas(cur, data_definition=dd),
                          reference_data=Dataset.from_pandas(ref, data_definition=dd))
    values = snapshot.dict()
    seconds = time.perf_counter() - t0
    peak = peak_mb()
    results: dict[str, list] = {c: [None, None, None] for c in num + cat}
    for m in values["metrics"]:
        cfg = m.get("config", {})
        if cfg.get("type", "").endswith("ValueDrift"):
            slot = 1 if cfg.get("method") == "ks" else 2
            results[cfg["column"]][slot] = float(m["value"])
    emit({"approach": "evidently", "version": evidently.__version__, "pandas": pd.__version__, "seconds": seconds,
          "peak_mb": peak, "rss_loaded_mb": loaded, "results": results})


if __name__ == "__main__":
    main()
