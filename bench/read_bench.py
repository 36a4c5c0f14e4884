"""Reading a window of event data: the layouts and formats of ``data.layout`` side by side.

    PYTHONPATH=include .venv/bin/python bench/read_bench.py [--stations 100] [--rounds 5]

A year of bike-share trips (``generate_trips``, 2013) is written four ways: day folders (parquet),
one parquet file per month and one for the whole year (``layout: files``, a row group per day),
and one CSV file per month. For a one-day and a 30-day window it prints the median wall time of
``storage.read_window`` (the timestamp filter pushed down to pyarrow for parquet files) next to
what reading the whole file(s) and filtering in pandas costs. Local disk, warm page cache; no
thresholds, figures only (they move with the machine's load).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

import pandas as pd  # noqa: E402

from modelops.config import parse_config, read_raw  # noqa: E402
from modelops.data import sources, storage  # noqa: E402
from modelops.data.sample_data import generate_trips, write_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WINDOWS = {"1 day": (date(2013, 6, 10), date(2013, 6, 11)), "30 days": (date(2013, 6, 1), date(2013, 7, 1))}


def _cfg(tmp: Path, layout: str, path: str, fmt: str = "parquet"):
    raw = read_raw(ROOT / "include" / "config" / "trips.yaml")
    raw["data"].update(layout=layout, path=str(tmp / path), format=fmt)
    return parse_config(raw, "bench")


def _median(fn, rounds: int) -> tuple[float, int]:
    times, n = [], 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        n = len(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times), n


def _naive(cfg, start: date, end: date) -> pd.DataFrame:
    """Every file read whole, then filtered: what a reader without pushdown does."""
    paths = sources.match_files(cfg)
    df = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    ts = df[cfg.data.timestamp_column]
    return df[(ts >= pd.Timestamp(start)) & (ts < pd.Timestamp(end))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stations", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    trips = generate_trips(date(2013, 1, 1), date(2014, 1, 1), n_stations=a.stations, seed=1)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        layouts = {
            "day folders, parquet": _cfg(tmp, "partitioned", "days"),
            "files, parquet per month": _cfg(tmp, "files", "monthly/trips-*.parquet"),
            "files, one parquet for the year": _cfg(tmp, "files", "year/trips.parquet"),
            "files, CSV per month": _cfg(tmp, "files", "csv/trips-*.csv", "csv"),
        }
        for cfg in layouts.values():
            write_dataset(trips, cfg)
        print(f"{len(trips):,} trips in 2013 ({a.stations} stations); median of {a.rounds} reads\n")
        print("| layout | window | rows | read_window (s) | whole files + filter (s) |")
        print("|---|---|---|---|---|")
        for name, cfg in layouts.items():
            for wname, (s, e) in WINDOWS.items():
                t, n = _median(lambda: storage.read_window(cfg, s, e), a.rounds)
                naive = "–"
                if cfg.data.layout == "files" and cfg.data.format == "parquet":
                    naive = f"{_median(lambda: _naive(cfg, s, e), a.rounds)[0]:.3f}"
                print(f"| {name} | {wname} | {n:,} | {t:.3f} | {naive} |")


if __name__ == "__main__":
    main()
