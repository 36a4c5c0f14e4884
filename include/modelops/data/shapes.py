"""Row identity for the two data shapes, shared by batch scoring and the performance join.

A panel has one row per entity and timestamp, so the entity (with the timestamp) names a row.
Event data can have many rows per entity and timestamp (an hourly timestamp shared by every
event of that hour), or no entity at all. A prediction is stored under a *row key* and its
actual, when it lands, is found by the same key: the entity for the first row of an (entity,
timestamp) pair, ``<entity>#<n>`` for its n-th repeat, in the source's order (files sorted by
name, rows in file order). Panel keys are therefore exactly the entity, as before. When the
source rewrites repeated rows in another order, their actuals pair up in that order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from modelops.config import ModelopsConfig


def row_keys(df: pd.DataFrame, cfg: ModelopsConfig) -> np.ndarray:
    """One string per row of ``df`` (see the module docstring); ``df`` in source order or stably sorted by time."""
    ts, ent = cfg.data.timestamp_column, cfg.data.entity_column
    if not len(df):
        return np.array([], dtype=object)
    base = df[ent].astype(str).to_numpy(dtype=object) if ent else np.full(len(df), "", dtype=object)
    seq = pd.Series(base).groupby([base, pd.to_datetime(df[ts]).to_numpy()], sort=False).cumcount().to_numpy()
    plain = (seq == 0) & (base != "")
    if plain.all():
        return base
    out = base.copy()
    rep = ~plain
    out[rep] = [f"{b}#{n}" for b, n in zip(base[rep], seq[rep])]
    return out


def time_order(cfg: ModelopsConfig) -> list[str]:
    """Sort columns that put rows in time order (stable: repeated keys keep their source order)."""
    return [c for c in (cfg.data.timestamp_column, cfg.data.entity_column) if c]
