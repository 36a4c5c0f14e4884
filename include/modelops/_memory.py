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
