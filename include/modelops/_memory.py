"""Handing freed memory back to the OS.

glibc keeps freed heap memory for reuse and Arrow's pool keeps its own cache: a task's
resident size then stays at its peak. The steps that build the big frames call this
between phases, so the next phase's allocations do not stack on top of the last one's.
"""

from __future__ import annotations


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


_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
_LEAN_DONE = False


def lean_allocators(mmap_threshold: int = 1 << 20) -> bool:
    """Large buffers straight from the OS and straight back to it, for the rest of this process.

    A step's big arrays come and go in phases; with the allocators' defaults their freed memory
    stays resident and the next phase stacks on it. glibc raises its mmap threshold each time a
    large block is freed (up to 32 MB), so later arrays land in the heap and stay; Arrow's mimalloc
    pool keeps its own pages. A fixed 1 MB threshold and Arrow's system pool took the feature task's
    peak at 1M rows from ~320 to ~256 MB and each training task's by ~25 MB, at the same speed
    (``bench/``). Airflow runs every task in its own process, so operators call this before a step.
    Settings a deployment already made win: ``MALLOC_MMAP_THRESHOLD_`` / ``ARROW_DEFAULT_MEMORY_POOL``
    in the environment are left alone, and ``MODELOPS_LEAN_ALLOCATORS=0`` turns this off.
    """
    import os

    global _LEAN_DONE
    if _LEAN_DONE or os.environ.get("MODELOPS_LEAN_ALLOCATORS", "1").strip().lower() in ("0", "false", "no"):
        return False
    _LEAN_DONE = True
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))
        except (OSError, AttributeError):  # not glibc
            pass
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        try:
            import pyarrow as pa

            pa.set_memory_pool(pa.system_memory_pool())
        except ImportError:
            pass
    return True
