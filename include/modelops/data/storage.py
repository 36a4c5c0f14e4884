"""Reading date-partitioned source data and run-scoped intermediate files.

Data between tasks goes through storage (parquet under a run-scoped path), never
through XCom. Paths are plain strings understood by fsspec, so a local directory
and ``s3://bucket/prefix`` (MinIO or S3) work the same way.
"""

from __future__ import annotations

import hashlib
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterator

import fsspec

from modelops._memory import release_memory
from modelops.settings import resolve_path, work_root

if TYPE_CHECKING:
    import pandas as pd

    from modelops.config import ModelopsConfig


class DataError(ValueError):
    """Source data that cannot be read; the message names the file."""


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


@dataclass(frozen=True)
class Partition:
    day: date
    path: str


_PART_RE = re.compile(r"^(?P<key>[A-Za-z0-9_]+)=(?P<day>\d{4}-\d{2}-\d{2})$")


def list_partitions(cfg: ModelopsConfig, start: date | None = None, end: date | None = None) -> list[Partition]:
    """Partitions with start <= day < end, sorted by day."""
    root = resolve_path(cfg.data.path)
    fs, base = _fs(root)
    if not fs.exists(base):
        raise DataError(f"data path {root} does not exist (data.path in {cfg.source_path or 'the config'})")
    out: list[Partition] = []
    for entry in fs.ls(base, detail=False):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        m = _PART_RE.match(name)
        if not m or m.group("key") != cfg.data.partition_column:
            continue
        d = date.fromisoformat(m.group("day"))
        if (start is None or d >= start) and (end is None or d < end):
            out.append(Partition(d, entry if "://" not in root else f"{root.split('://')[0]}://{entry}"))
    return sorted(out, key=lambda p: p.day)


def partition_dir(cfg: ModelopsConfig, day: date) -> str:
    return join(resolve_path(cfg.data.path), f"{cfg.data.partition_column}={day.isoformat()}")


def _read_file(cfg: ModelopsConfig, path: str) -> pd.DataFrame:
    import pandas as pd

    try:
        with fsspec.open(path, "rb") as fh:
            if cfg.data.format == "parquet":
                return pd.read_parquet(fh)
            df = pd.read_csv(fh, sep=cfg.data.csv_delimiter, encoding=cfg.data.csv_encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: cannot decode as {cfg.data.csv_encoding} ({exc.reason} at byte {exc.start})") from None
    except Exception as exc:  # pyarrow/pandas raise many types for corrupt files
        raise DataError(f"{path}: cannot read as {cfg.data.format}: {type(exc).__name__}: {exc}") from None
    _check_delimiter(cfg, path, df)
    return df


def _check_delimiter(cfg: ModelopsConfig, path: str, df: pd.DataFrame) -> None:
    """A CSV read with the wrong delimiter has one column whose name is the whole header line."""
    if len(df.columns) != 1 or len(cfg.required_columns) < 2:
        return
    header = str(df.columns[0])
    counts = {d: header.count(d) for d in (";", "\t", "|", ",") if d != cfg.data.csv_delimiter}
    best = max(counts, key=counts.get)
    if counts[best]:
        raise DataError(f"{path}: the file has a single column {header[:80]!r}: data.csv_delimiter is "
                        f"{cfg.data.csv_delimiter!r} but the header looks {best!r}-separated")


def _window_files(cfg: ModelopsConfig, start: date, end: date) -> list[str]:
    ext = ".parquet" if cfg.data.format == "parquet" else ".csv"
    out = []
    for part in list_partitions(cfg, start, end):
        fs, base = _fs(part.path)
        for f in sorted(f for f in fs.ls(base, detail=False) if f.endswith(ext)):
            out.append(f if "://" not in part.path else f"{part.path.split('://')[0]}://{f}")
    return out


def _read_parquet_files(paths: list[str]) -> pd.DataFrame | None:
    """One Arrow table over all files, converted once; None when their schemas cannot be unified.

    Concatenating pandas frames holds every day twice (the parts and the result); Arrow
    concatenates without copying, and ``self_destruct`` + ``split_blocks`` let pandas take most
    columns over as they are (1M rows: 0.26 s and 1.3x the data resident, against 0.77 s and 2.1x).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for path in paths:
        try:
            with fsspec.open(path, "rb") as fh:
                tables.append(pq.read_table(fh))
        except Exception as exc:  # pyarrow raises many types for corrupt files
            raise DataError(f"{path}: cannot read as parquet: {type(exc).__name__}: {exc}") from None
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None  # e.g. a column that is text one day and numbers the next: pandas' concat decides
    del tables
    return _table_to_frame(table)


def read_window(cfg: ModelopsConfig, start: date, end: date) -> pd.DataFrame:
    """All rows of partitions in [start, end), with the timestamp column parsed."""
    import pandas as pd

    paths = _window_files(cfg, start, end)
    if not paths:
        return pd.DataFrame()
    df = _read_parquet_files(paths) if cfg.data.format == "parquet" else None
    if df is None:
        df = pd.concat([_read_file(cfg, p) for p in paths], ignore_index=True)
    elif not df.index.equals(pd.RangeIndex(len(df))):  # files that stored an index: rows numbered 0..n-1, as concat did
        df = df.reset_index(drop=True)
    ts = cfg.data.timestamp_column
    if ts in df.columns and not pd.api.types.is_datetime64_any_dtype(df[ts]):
        try:
            df[ts] = pd.to_datetime(df[ts])
        except (ValueError, TypeError) as exc:
            raise DataError(f"column '{ts}' (data.timestamp_column) cannot be parsed as timestamps: {exc}") from None
    if ts in df.columns and getattr(df[ts].dt, "tz", None) is not None:
        df[ts] = df[ts].dt.tz_convert("UTC").dt.tz_localize(None)
    return df


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
        with fsspec.open(tmp, "wb") as fh:
            df.to_parquet(fh, index=False, **parquet_options(df))
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
