"""Run-scoped intermediate files (and, re-exported from ``sources``, reading the user's data).

Data between tasks goes through storage (parquet under a run-scoped path), never
through XCom. Paths are plain strings understood by fsspec, so a local directory
and ``s3://bucket/prefix`` (MinIO or S3) work the same way.
"""

from __future__ import annotations

import hashlib
import re
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterator

import fsspec

from modelops._memory import release_memory
# Reading the user's data (layouts, formats, hostile paths) lives in sources; its names stay importable from here.
from modelops.data.sources import DataError, Partition, describe_window, list_partitions, partition_dir, read_window  # noqa: F401
from modelops.settings import resolve_path, work_root

if TYPE_CHECKING:
    import pandas as pd

    from modelops.config import ModelopsConfig


def _fs(path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, _, paths = fsspec.get_fs_token_paths(path)
    return fs, paths[0]


def join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *[p.strip("/") for p in parts]])


def as_day(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def days(start: date, end: date) -> Iterator[date]:
    """Days in the half-open interval [start, end)."""
    d = start
    while d < end:
        yield d
        d += timedelta(days=1)


def write_partition(df: pd.DataFrame, root: str, partition_column: str, day: date, fmt: str = "parquet") -> str:
    """Write one day's rows; overwrites the day's file so a re-run never duplicates."""
    d = join(resolve_path(root), f"{partition_column}={day.isoformat()}")
    fs, base = _fs(d)
    fs.makedirs(base, exist_ok=True)
    path = join(d, f"part-0.{fmt}")
    with fsspec.open(path, "wb") as fh:
        if fmt == "parquet":
            df.to_parquet(fh, index=False)
        else:
            df.to_csv(fh, index=False)
    return path


# -- run-scoped intermediates ----------------------------------------------------------

def safe_key(value: str) -> str:
    """A path segment from an Airflow run id (which contains ':' and '+')."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", value)


def run_dir(dag_id: str, run_id: str, root: str | None = None) -> str:
    return join(root or work_root(), safe_key(dag_id), safe_key(run_id))


class StorageError(OSError):
    """The object store / file system failed while writing or reading a run file; the message names the path."""


@contextmanager
def io_errors(op: str, path: str) -> Iterator[None]:
    """Turn the many exception types of s3fs/botocore/aiohttp/local IO into one sentence naming the path."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised with the path; the cause stays chained
        raise StorageError(f"cannot {op} {path}: {type(exc).__name__}: {exc}. A retry rewrites the same run-scoped path.") from exc


def write_frame(df: pd.DataFrame, path: str) -> str:
    """Write atomically enough for retries: same path, full overwrite (via ``<path>.tmp``)."""
    return commit_staged(stage_frame(df, path), path)


def stage_frame(df: pd.DataFrame, path: str) -> str:
    """The first half of ``write_frame``: ``df`` in ``<path>.tmp``, nothing at ``path`` yet."""
    with io_errors("write", path):
        fs, p = _fs(path)
        fs.makedirs(p.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{path}.tmp"
        try:
            with fsspec.open(tmp, "wb") as fh:
                df.to_parquet(fh, index=False, **parquet_options(df))
        except BaseException:
            _, ptmp = _fs(tmp)
            if fs.exists(ptmp):  # a half-written file is no snapshot: nothing is left behind
                fs.rm(ptmp)
            raise
    return tmp


def parquet_options(df: pd.DataFrame) -> dict[str, Any]:
    """Encodings for run files, which are written once and read a few times within the hour.

    Float columns (every feature) go byte-stream-split instead of dictionary-encoded: dictionary
    encoding was 0.4 of the 0.57 s it took to write the 1M-row feature file, and splitting the
    bytes compresses better than a dictionary of mostly distinct values. With LZ4 (written as
    Parquet's LZ4_RAW) the file writes in 0.2 s, reads faster and is smaller (28 MB against 30).
    Other columns keep dictionaries (strings, codes), where they pay. All of it is standard Parquet.
    """
    kinds = {str(c): getattr(dt, "kind", "") for c, dt in df.dtypes.items()}
    floats = [c for c, k in kinds.items() if k == "f"]
    others = [c for c, k in kinds.items() if k != "f"]
    return {"compression": "lz4", "use_dictionary": others, "column_encoding": dict.fromkeys(floats, "BYTE_STREAM_SPLIT")}


def commit_staged(tmp: str, path: str) -> str:
    """The second half: the staged file replaces whatever ``path`` held."""
    with io_errors("write", path):
        fs, p = _fs(path)
        _, ptmp = _fs(tmp)
        if fs.exists(p):
            fs.rm(p)
        fs.mv(ptmp, p)
    return path


def discard_staged(tmp: str) -> None:
    """A staged file whose data was refused: removed, so no snapshot of it is left anywhere."""
    with io_errors("remove", tmp):
        fs, ptmp = _fs(tmp)
        if fs.exists(ptmp):
            fs.rm(ptmp)


def _table_to_frame(table: Any) -> pd.DataFrame:
    """Arrow -> pandas without holding both: columns move over as they convert (most without a copy),
    then Arrow's pool gives back what it no longer uses. ``pd.read_parquet`` kept both and the pool's
    cache: 250 MB resident for an 88 MB feature frame, against about 100 MB this way."""

    df = table.to_pandas(self_destruct=True, split_blocks=True)
    del table
    release_memory()
    return df


def read_frame(path: str) -> pd.DataFrame:
    import pyarrow.parquet as pq

    with io_errors("read", path), fsspec.open(path, "rb") as fh:
        table = pq.read_table(fh)
    return _table_to_frame(table)


def write_text(path: str, text: str) -> str:
    with io_errors("write", path):
        fs, p = _fs(path)
        fs.makedirs(p.rsplit("/", 1)[0], exist_ok=True)
        with fsspec.open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    return path


def write_bytes(path: str, data: bytes) -> str:
    with io_errors("write", path):
        fs, p = _fs(path)
        fs.makedirs(p.rsplit("/", 1)[0], exist_ok=True)
        with fsspec.open(path, "wb") as fh:
            fh.write(data)
    return path


def read_text(path: str) -> str:
    with fsspec.open(path, "r", encoding="utf-8") as fh:
        return fh.read()


def exists(path: str) -> bool:
    fs, p = _fs(path)
    return fs.exists(p)


def fingerprint(df: pd.DataFrame) -> str:
    """Content hash of a frame (order-sensitive), for lineage and idempotency checks."""
    import pandas as pd

    h = hashlib.sha256()
    h.update(",".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).values.tobytes())
    return h.hexdigest()[:16]
