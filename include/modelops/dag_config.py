"""The config as DAG files see it at parse time: fully validated, without pydantic on re-parses.

The dag-processor re-imports every DAG file every ``min_file_process_interval`` (30 s by
default), and building the 18 pydantic models of :mod:`modelops.config` costs ~15 ms of
each parse. The validated result depends only on the file's content after ``${VAR}``
expansion, on the schema (``config.py``) and on pydantic's version, so it is kept in a small
cache keyed by a hash of exactly those, the way Python keeps bytecode keyed by source. A hit
skips pydantic; any change to the file, to a referenced environment variable or to the schema
misses and goes through full validation again, so a bad config still fails the parse with
the same sentence. This module imports only the standard library and PyYAML.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from modelops.config_io import (  # noqa: F401 - re-exported: DAG files import these from here
    CLASSIFICATION_METRICS,
    CONFIG_ENV,
    DEFAULT_CONFIG,
    HP_TYPES,
    METRICS,
    REGRESSION_METRICS,
    ConfigError,
    config_path,
    expand_env,
    hyperparameter_overrides_schema,
    read_raw,
)

CACHE_ENV = "MODELOPS_CACHE_DIR"
_SCHEMA_SOURCE = Path(__file__).with_name("config.py")
_CACHE_FORMAT = "1"
_CACHE_KEEP = 64  # entries kept per cache directory (each is a few KB)

# Derived values of ModelopsConfig that DAG files read; stored next to the validated fields.
_DERIVED = ("greater_is_better", "feature_columns", "drift_features", "tuning_metric")


class ConfigView:
    """Read-only attribute access to a validated config's JSON form (what DAG files need)."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        object.__setattr__(self, "_data", data)

    def __getattr__(self, name: str) -> Any:
        try:
            value = self._data[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}") from None
        return ConfigView(value) if isinstance(value, dict) else value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the config is read-only")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self._data))

    def __repr__(self) -> str:
        return f"ConfigView({self._data.get('model_name', '?')!r})"


def cache_dir() -> Path:
    base = os.environ.get(CACHE_ENV)
    if base:
        return Path(base) / "dag-config"
    import tempfile

    return Path(tempfile.gettempdir()) / f"modelops-{os.getuid()}" / "dag-config"


def _key(source: str, expanded: Any) -> str:
    from pydantic.version import VERSION

    h = hashlib.sha256()
    for part in (_CACHE_FORMAT, VERSION, source, json.dumps(expanded, sort_keys=True, default=str)):
        h.update(part.encode())
        h.update(b"\0")
    h.update(_SCHEMA_SOURCE.read_bytes())
    return h.hexdigest()


def _private_dir(d: Path) -> bool:
    """Only trust a cache directory this user owns and nobody else can write to."""
    try:
        st = d.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _read_cache(d: Path, key: str) -> dict[str, Any] | None:
    if not _private_dir(d):
        return None
    try:
        entry = json.loads((d / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != key or not isinstance(entry.get("config"), dict):
        return None
    return entry["config"]


def _write_cache(d: Path, key: str, data: dict[str, Any]) -> None:
    """Best effort: a read-only or foreign cache directory only costs the next parse its speed."""
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _private_dir(d):
            return
        tmp = d / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"key": key, "config": data}), encoding="utf-8")
        os.replace(tmp, d / f"{key}.json")
        entries = sorted(d.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[_CACHE_KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass


def load_dag_config(path: str | os.PathLike[str] | None = None) -> ConfigView:
    """The validated config for a DAG file; raises :class:`ConfigError` exactly like ``load_config``."""
    p = config_path(path).resolve()
    raw = read_raw(p)
    key = _key(str(p), expand_env(raw))
    d = cache_dir()
    data = _read_cache(d, key)
    if data is None:
        from modelops.config import parse_config

        cfg = parse_config(raw, source=str(p))
        data = cfg.model_dump(mode="json")
        data.update({name: getattr(cfg, name) for name in _DERIVED})
        _write_cache(d, key, data)
    return ConfigView(data)


