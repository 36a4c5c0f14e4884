"""Process helpers shared by the benchmark children (standard library only: the Evidently
child runs in its own venv and imports this too).

Every approach runs in a fresh child process so its peak RSS is its own: the child loads
its inputs, resets the kernel's high-water mark (``/proc/self/clear_refs``), runs the
approach, and reports ``VmHWM`` -- the peak resident size *during* the approach, which
includes the inputs it holds in memory.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TMP = RESULTS / "tmp"
MARK = "@@BENCH-RESULT@@ "


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float:
    kb = _status_kb("VmRSS")
    return (kb or 0) / 1024


def reset_peak() -> bool:
    """Start a new peak-RSS window (Linux >= 4.0); False when the kernel does not allow it."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    """Peak RSS since the last reset_peak() (or since the start when resets are unavailable)."""
    kb = _status_kb("VmHWM")
    if kb is None:  # not Linux: lifetime peak from getrusage (KB on Linux, bytes on macOS)
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if sys.platform == "darwin":
            kb //= 1024
    return kb / 1024


def emit(result: dict[str, Any]) -> None:
    """The child's answer: one marked JSON line on stdout (anything else there is ignored)."""
    sys.stdout.write(MARK + json.dumps(result, default=float) + "\n")
    sys.stdout.flush()


def run_child(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 3600,
              log: Path | None = None) -> dict[str, Any]:
    """Run a child and return its emitted result ({"error": ...} when it failed)."""
    full_env = {**os.environ, **(env or {})}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {' '.join(argv)}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARK):
            out = json.loads(line[len(MARK):])
            out.setdefault("child_wall_s", wall)
            return out
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}


def timed(fn, repeat: int = 1) -> tuple[float, Any]:
    """(median wall seconds of ``repeat`` runs, last result): the machine is shared, medians resist its noise."""
    import statistics

    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out
