"""Handing freed memory back to the OS.

glibc keeps freed heap memory for reuse and Arrow's pool keeps its own cache: a task's
resident size then stays at its peak. The steps that build the big frames call this
between phases, so the next phase's allocations do not stack on top of the last one's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def trim_heap() -> None:
    """``malloc_trim(0)``; a no-op where the C library is not glibc."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def release_memory() -> None:
    """Arrow's unused pool memory, then the C heap's."""
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except ImportError:  # the model's own environment may score without pyarrow
        pass
    trim_heap()


_M_TRIM_THRESHOLD = -1  # glibc mallopt parameters
_M_MMAP_THRESHOLD = -3
# Where glibc's own heuristic ends up once big arrays have come and gone (its 64-bit maximum):
# what a scope hands back, since mallopt cannot switch the heuristic on again.
_SETTLED_MMAP, _SETTLED_TRIM = 32 << 20, 64 << 20
_depth = 0


def _mallopt(param: int, value: int) -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(param, int(value))
    except (OSError, AttributeError):  # not glibc
        pass


@contextmanager
def lean_memory(mmap_threshold: int = 1 << 20) -> Iterator[bool]:
    """Within the block, large buffers come straight from the OS and go straight back to it.

    A step's big arrays come and go in phases; with the allocators' defaults their freed memory
    stays resident and the next phase stacks on it. glibc raises its mmap threshold each time a
    large block is freed (up to 32 MB), so later arrays land in the heap and stay; Arrow's mimalloc
    pool keeps its own pages. A fixed 1 MB threshold and Arrow's system pool took the feature
    step's peak at 1M rows from ~300 to ~250 MB. It is not free: every large array then costs
    fresh pages, which doubled the time of the GX suite (0.65 -> 1.3 s) and slowed each booster's
    fit by 0.2-0.4 s, while the boosters' peaks moved by 10-15 MB. So it is scoped to the step that needs it
    (``lifecycle.build_features``), and the block hands back the settled thresholds of glibc's own
    heuristic (32 MB mmap, 64 MB trim) and the previous Arrow pool.

    Settings a deployment already made win: ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` /
    ``ARROW_DEFAULT_MEMORY_POOL`` in the environment are left alone, and
    ``MODELOPS_LEAN_ALLOCATORS=0`` turns this off. Yields whether this block applied the settings
    (an inner block of a lean one does not).
    """
    import os

    global _depth
    if _depth or os.environ.get("MODELOPS_LEAN_ALLOCATORS", "1").strip().lower() in ("0", "false", "no"):
        yield False
        return
    _depth += 1
    glibc = "MALLOC_MMAP_THRESHOLD_" not in os.environ
    previous_pool = None
    try:
        if glibc:
            _mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
        if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
            try:
                import pyarrow as pa

                previous_pool = pa.default_memory_pool()
                pa.set_memory_pool(pa.system_memory_pool())
            except ImportError:
                pass
        yield True
    finally:
        _depth -= 1
        if previous_pool is not None:
            import pyarrow as pa

            pa.set_memory_pool(previous_pool)
        if glibc:
            _mallopt(_M_MMAP_THRESHOLD, _SETTLED_MMAP)
            if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
                _mallopt(_M_TRIM_THRESHOLD, _SETTLED_TRIM)
