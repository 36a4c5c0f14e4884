"""Per-feature data drift: two-sample Kolmogorov-Smirnov (numeric) and PSI (numeric and categorical).

Design notes
------------
* KS reproduces ``scipy.stats.ks_2samp(ref, cur)`` (two-sided, ``method='auto'``): the same
  statistic and the same p-value logic (exact for max(n1, n2) <= 10000 via scipy's own
  ``_attempt_exact_2kssamp``, else ``kstwo.sf(d, round(n1*n2/(n1+n2)))``), so numbers in a
  report can be checked against scipy by anyone.
* The statistic is computed from sorted samples. The reference does not change between
  days, so a :class:`ReferenceProfile` keeps its sorted non-null values (saved with the
  model); each day only the current sample is sorted. The ECDF difference is evaluated
  at the distinct current values (and just below them), which attains exactly the same
  maximum as scipy's evaluation at every pooled point, in O(n_cur log n_ref) or an O(n)
  merge, instead of scipy's two binary searches of the pooled sample.
* KS p-values flag negligible shifts at large n, so KS only counts as drift when the
  p-value is small AND the statistic (an effect size) is material (``ks_statistic_min``).
* NaN is dropped per feature on both sides and its share reported; a side with no values
  left makes the feature "not testable" (with a reason) instead of failing the run.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Sequence, TypeVar

import numpy as np
import pandas as pd
from scipy.stats import distributions

try:  # scipy's exact small-sample path; private, so keep a public fallback
    from scipy.stats._stats_py import _attempt_exact_2kssamp
except ImportError:  # pragma: no cover - depends on the scipy version
    _attempt_exact_2kssamp = None

if TYPE_CHECKING:
    from modelops.config import DriftConfig

MAX_AUTO_N = 10000  # scipy ks_2samp(method='auto') is exact when max(n1, n2) <= this
UNSEEN = "<unseen>"
_FORMAT = "modelops.drift.ReferenceProfile"
_FORMAT_VERSION = 1

Kind = Literal["numeric", "categorical"]
_T = TypeVar("_T")
_MAX_THREADS = 8


def _threads(n_jobs: int | None, n_tasks: int) -> int:
    """Worker threads for per-feature work: ``n_jobs`` or the CPU count (at most 8)."""
    want = n_jobs if n_jobs is not None else min(os.cpu_count() or 1, _MAX_THREADS)
    return max(1, min(int(want), n_tasks))


def _map(fn: Callable[..., _T], items: Sequence[Any], n_jobs: int | None) -> list[_T]:
    """``[fn(*item) for item in items]``, on threads when that can help.

    The heavy parts (sorting, binary searches, bin counts) are numpy calls that release the
    GIL, so features run side by side on the cores; results keep the input order.
    """
    workers = _threads(n_jobs, len(items))
    if workers == 1:
        return [fn(*item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="modelops-drift") as pool:
        return list(pool.map(lambda item: fn(*item), items))


class DriftInputError(ValueError):
    """A configured feature that cannot be tested as asked (missing column, wrong type)."""


# -- Kolmogorov-Smirnov -----------------------------------------------------------------------

@dataclass(frozen=True)
class KSResult:
    statistic: float
    pvalue: float
    method: Literal["exact", "asymp"]


# Coarse-to-fine block sizes of the bounded search in _ks_statistic_sorted (distinct current values).
_KS_LEVELS = (4096, 512, 64, 8, 1)
_KS_DIRECT_MAX = 4096  # up to this many distinct current values, evaluate every candidate directly


def _distinct_sorted(cur: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(distinct values, index of each one's last occurrence or None when ``cur`` has no ties)."""
    n2 = cur.size
    if n2 > 1 and np.count_nonzero(cur[1:] == cur[:-1]):
        last = np.append(np.flatnonzero(cur[1:] != cur[:-1]), n2 - 1)
        return cur[last], last
    return cur, None


class _Candidates:
    """Exact ECDF differences at chosen distinct current values, as scipy computes them.

    For the k-th distinct current value u[k] with c_k = #cur <= u[k] (c_-1 = 0):
    ``below`` = #ref<u[k]/n1 - c_{k-1}/n2 (F_ref - F_cur just below u[k]) and
    ``at`` = c_k/n2 - #ref<=u[k]/n1 (F_cur - F_ref at u[k]). Between consecutive distinct
    current values F_cur is constant and F_ref non-decreasing, so these attain both one-sided
    suprema; every value is the same integer-over-n float expression scipy evaluates.
    """

    def __init__(self, ref: np.ndarray, u: np.ndarray, last: np.ndarray | None, n2: int) -> None:
        self.ref, self.u, self.last, self.n1, self.n2 = ref, u, last, ref.size, n2

    def count(self, k: np.ndarray) -> np.ndarray:
        """c_k = #cur <= u[k]."""
        return (k if self.last is None else self.last[k]) + 1

    def at(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(lo, hi, below, at) for the indices ``k`` (lo = #ref < u[k], hi = #ref <= u[k])."""
        uk = self.u[k]
        lo = np.searchsorted(self.ref, uk, side="left")
        hi = np.searchsorted(self.ref, uk, side="right")
        prev = np.where(k > 0, self.count(np.maximum(k - 1, 0)), 0)
        return lo, hi, lo / self.n1 - prev / self.n2, self.count(k) / self.n2 - hi / self.n1


def _ks_statistic_sorted(ref: np.ndarray, cur: np.ndarray) -> float:
    """sup |F_ref - F_cur| for two sorted, NaN-free, non-empty samples; bit-equal to scipy's.

    scipy evaluates |F_ref - F_cur| at every pooled value; the maximum is attained at one of
    the candidates of :class:`_Candidates` (every candidate is a value scipy also computes, and
    every value scipy computes is dominated by a candidate), so the maxima are equal.

    Few distinct current values: every candidate is evaluated. Many: a bounded search. The
    candidates are evaluated at the ends of blocks of consecutive distinct current values
    (binary search in the reference); inside a block #ref<u and c are bracketed by the ends'
    counts, so ``lo_end/n1 - c_start/n2`` and ``c_{end-1}/n2 - hi_start/n1`` bound every
    candidate inside it (float division and subtraction are monotone, so the bound holds for
    the rounded values too). Only blocks whose bound beats the best exact value found so far
    are split further, down to single values. The result is the exact maximum, at the cost
    of a few thousand binary searches instead of a full merge of the two samples.
    """
    u, last = _distinct_sorted(cur)
    cand = _Candidates(ref, u, last, cur.size)
    m = u.size
    if m <= _KS_DIRECT_MAX:
        _, _, below, at = cand.at(np.arange(m))
        best = 0.0
        for v in (float(below.max()), float(at.max())):
            if v > best:
                best = v
        return best
    n1, n2 = cand.n1, cand.n2
    step = _KS_LEVELS[0]
    starts = np.arange(0, m - 1, step)
    ends = np.minimum(starts + step, m - 1)
    best = 0.0
    for nxt in (*_KS_LEVELS[1:], 0):
        lo_s, hi_s, below_s, at_s = cand.at(starts)
        lo_e, _, below_e, at_e = cand.at(ends)
        for v in (float(below_s.max()), float(at_s.max()), float(below_e.max()), float(at_e.max())):
            if v > best:
                best = v
        if nxt == 0:
            break
        # bounds for the candidates strictly inside each block [start, end]
        ub_below = lo_e / n1 - cand.count(starts) / n2
        ub_at = cand.count(ends - 1) / n2 - hi_s / n1
        keep = (ends - starts > 1) & ((ub_below > best) | (ub_at > best))
        if not keep.any():
            break
        starts, ends = starts[keep], ends[keep]
        pieces = -(-(ends - starts) // nxt)  # ceil: sub-blocks per kept block
        first = np.repeat(np.cumsum(pieces) - pieces, pieces)
        sub = np.repeat(starts, pieces) + (np.arange(int(pieces.sum())) - first) * nxt
        ends = np.minimum(sub + nxt, np.repeat(ends, pieces))
        starts = sub
    return best


def _ks_pvalue(d: float, n1: int, n2: int) -> tuple[float, float, Literal["exact", "asymp"]]:
    """scipy's two-sided ks_2samp(method='auto') p-value; returns (statistic, p, method).

    Like scipy, the exact path reports d rounded to h/lcm(n1, n2), and a failed exact
    computation falls back to the asymptotic distribution with that rounded d.
    """
    if max(n1, n2) <= MAX_AUTO_N and _attempt_exact_2kssamp is not None:
        g = math.gcd(n1, n2)
        with np.errstate(all="ignore"):
            success, d, prob = _attempt_exact_2kssamp(n1, n2, g, d, "two-sided")
        if success:
            return float(d), float(np.clip(prob, 0, 1)), "exact"
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    prob = distributions.kstwo.sf(d, np.round(en))
    return float(d), float(np.clip(prob, 0, 1)), "asymp"


def _ks_sorted(ref: np.ndarray, cur: np.ndarray) -> KSResult:
    n1, n2 = ref.size, cur.size
    if _attempt_exact_2kssamp is None and max(n1, n2) <= MAX_AUTO_N:  # pragma: no cover
        from scipy.stats import ks_2samp

        r = ks_2samp(ref, cur)
        return KSResult(float(r.statistic), float(r.pvalue), "exact")
    d, p, method = _ks_pvalue(_ks_statistic_sorted(ref, cur), n1, n2)
    return KSResult(d, p, method)


def _finite_float_array(values: Any) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64).ravel()
    return a[~np.isnan(a)]


def ks_2samp_exact(a: Any, b: Any) -> KSResult:
    """Two-sided two-sample KS equal to ``scipy.stats.ks_2samp(a, b)`` (NaN dropped first).

    Raises ValueError for an empty sample, like scipy.
    """
    x, y = np.sort(_finite_float_array(a)), np.sort(_finite_float_array(b))
    if x.size == 0 or y.size == 0:
        raise ValueError("ks_2samp_exact needs two non-empty samples (after dropping NaN)")
    return _ks_sorted(x, y)


# -- PSI -----------------------------------------------------------------------------------------

def _shares(counts: np.ndarray, epsilon: float) -> np.ndarray:
    """Shares with empty cells set to ``epsilon``, so ln(cur/ref) stays finite."""
    total = counts.sum()
    shares = counts / total if total > 0 else np.zeros(counts.shape, dtype=np.float64)
    return np.where(counts == 0, epsilon, shares)


def psi_from_counts(reference_counts: Sequence[int], current_counts: Sequence[int], epsilon: float = 1e-4) -> float:
    """PSI = sum((cur - ref) * ln(cur / ref)) over smoothed shares; each term is >= 0."""
    r = _shares(np.asarray(reference_counts, dtype=np.float64), epsilon)
    c = _shares(np.asarray(current_counts, dtype=np.float64), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def quantile_edges(sorted_values: np.ndarray, bins: int) -> np.ndarray:
    """Interior PSI bin edges: reference quantiles, deduplicated for ties.

    Quantiles come from the finite values only (an infinite value would make the
    interpolation NaN); infinities still land in the open outer bins.
    """
    lo = int(np.searchsorted(sorted_values, -np.inf, side="right"))
    hi = int(np.searchsorted(sorted_values, np.inf, side="left"))
    finite = sorted_values[lo:hi]
    if finite.size == 0 or bins < 2:
        return np.empty(0, dtype=np.float64)
    return np.unique(np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)[1:-1]))


def bin_counts_sorted(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in (-inf, e0], (e0, e1], ..., (e_last, +inf) for a sorted sample.

    Right-closed bins: a quantile edge v satisfies P(X <= v) >= q, so a heavy tie at v
    stays in the bin the quantile put it in.
    """
    cuts = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(np.concatenate(([0], cuts, [sorted_values.size]))).astype(np.int64)


def psi_numeric(reference: Any, current: Any, bins: int = 10, epsilon: float = 1e-4) -> float:
    """PSI of a numeric feature with quantile bins of the reference (NaN dropped)."""
    ref = np.sort(_finite_float_array(reference))
    cur = np.sort(_finite_float_array(current))
    if ref.size == 0 or cur.size == 0:
        raise ValueError("psi_numeric needs two non-empty samples (after dropping NaN)")
    edges = quantile_edges(ref, bins)
    return psi_from_counts(bin_counts_sorted(ref, edges), bin_counts_sorted(cur, edges), epsilon)


def _category_key(value: Any) -> str:
    """One spelling per category across frames: 3, 3.0 and '3' are the same store type."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def category_counts(values: pd.Series | Iterable[Any]) -> tuple[dict[str, int], int]:
    """(counts per normalized category, number of nulls)."""
    s = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    n_null = int(s.isna().sum())
    if s.dtype == object and s.map(type).eq(bool).any():
        # Python hashes True == 1 == 1.0, so value_counts would merge them under whichever came first
        # (order-dependent). Spell them first, so bool and int stay the categories _category_key names.
        s = s.dropna().map(_category_key)
    vc = s.value_counts(dropna=True, sort=False)
    out: dict[str, int] = {}
    for key, count in zip(vc.index, vc.to_numpy()):
        if count > 0:  # pandas Categorical lists unobserved categories with 0
            k = _category_key(key)
            out[k] = out.get(k, 0) + int(count)
    return out, n_null


def _categorical_vectors(ref_categories: Sequence[str], ref_counts: np.ndarray,
                         cur: dict[str, int]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Aligned count vectors: reference categories, then an 'unseen' bucket for new ones."""
    known = set(ref_categories)
    cur_vec = np.array([cur.get(k, 0) for k in ref_categories] + [sum(v for k, v in cur.items() if k not in known)],
                       dtype=np.int64)
    ref_vec = np.concatenate((np.asarray(ref_counts, dtype=np.int64), [0]))
    unseen = sorted((k for k in cur if k not in known), key=lambda k: (-cur[k], k))
    return ref_vec, cur_vec, unseen


def psi_categorical(reference: Any, current: Any, epsilon: float = 1e-4) -> float:
    """PSI over reference categories plus an 'unseen' bucket (NaN dropped)."""
    ref, _ = category_counts(reference if isinstance(reference, pd.Series) else pd.Series(list(reference), dtype=object))
    cur, _ = category_counts(current if isinstance(current, pd.Series) else pd.Series(list(current), dtype=object))
    if not ref or not cur:
        raise ValueError("psi_categorical needs two non-empty samples (after dropping NaN)")
    cats = list(ref)
    ref_vec, cur_vec, _ = _categorical_vectors(cats, np.array([ref[k] for k in cats]), cur)
    return psi_from_counts(ref_vec, cur_vec, epsilon)


# -- reference profile -----------------------------------------------------------------------------

def _numeric_column(df: pd.DataFrame, name: str, side: str) -> np.ndarray:
    """float64 values of a numeric feature (NaN for nulls); errors name the feature."""
    s = df[name]
    if isinstance(s, pd.DataFrame):
        raise DriftInputError(f"feature '{name}' appears more than once in the {side} frame")
    if pd.api.types.is_bool_dtype(s.dtype):
        s = s.astype("float64")
    if not pd.api.types.is_numeric_dtype(s.dtype):
        raise DriftInputError(f"numeric feature '{name}' has non-numeric dtype {s.dtype} in the {side} frame")
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


def _sorted_non_null(x: np.ndarray) -> np.ndarray:
    xs = np.sort(x)  # NaN sorts last
    n_nan = int(np.count_nonzero(np.isnan(x)))
    return xs[: xs.size - n_nan] if n_nan else xs


def _check_columns(df: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str], side: str) -> None:
    overlap = sorted(set(numeric) & set(categorical))
    if overlap:
        raise DriftInputError(f"features {overlap} are listed as both numeric and categorical")
    missing = [f for f in [*numeric, *categorical] if f not in df.columns]
    if missing:
        desc = ", ".join(f"'{f}' ({'numeric' if f in numeric else 'categorical'})" for f in missing)
        raise DriftInputError(f"feature(s) {desc} missing from the {side} frame; it has columns {list(map(str, df.columns))[:50]}")


@dataclass(eq=False)
class NumericReference:
    """Sorted non-null reference values (for exact KS) and the PSI bins they define."""

    values: np.ndarray
    n_null: int
    edges: np.ndarray
    counts: np.ndarray

    @classmethod
    def from_values(cls, x: np.ndarray, bins: int) -> NumericReference:
        values = _sorted_non_null(np.asarray(x, dtype=np.float64))
        edges = quantile_edges(values, bins)
        return cls(values, int(x.size - values.size), edges, bin_counts_sorted(values, edges))

    def bins_for(self, bins: int, default_bins: int) -> tuple[np.ndarray, np.ndarray]:
        """Edges and counts for ``bins``; recomputed from the kept values when the config changed."""
        if bins == default_bins:
            return self.edges, self.counts
        edges = quantile_edges(self.values, bins)
        return edges, bin_counts_sorted(self.values, edges)


@dataclass(eq=False)
class CategoricalReference:
    categories: list[str]
    counts: np.ndarray
    n_null: int

    @classmethod
    def from_series(cls, s: pd.Series) -> CategoricalReference:
        counts, n_null = category_counts(s)
        cats = sorted(counts, key=lambda k: (-counts[k], k))  # most frequent first: plots read well
        return cls(cats, np.array([counts[k] for k in cats], dtype=np.int64), n_null)


@dataclass(eq=False)
class ReferenceProfile:
    """What drift detection needs from the reference, computed once and saved with the model.

    Keeps sorted non-null values per numeric feature (KS is exact, so no sketch), the PSI
    bin edges/counts for ``bins``, and category counts per categorical feature.
    """

    numeric: dict[str, NumericReference]
    categorical: dict[str, CategoricalReference]
    n_rows: int
    bins: int
    _fingerprint: str | None = field(default=None, repr=False)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str], bins: int = 10, *,
                   n_jobs: int | None = None) -> ReferenceProfile:
        """Profile of ``df``; ``n_jobs`` threads sort the features (default: the CPU count, at most 8)."""
        _check_columns(df, numeric, categorical, "reference")
        if bins < 2:
            raise ValueError(f"bins must be >= 2, got {bins}")
        numeric, categorical = list(numeric), list(categorical)
        num_refs = _map(NumericReference.from_values, [(_numeric_column(df, f, "reference"), bins) for f in numeric], n_jobs)
        num = dict(zip(numeric, num_refs))
        cat = {f: CategoricalReference.from_series(df[f]) for f in categorical}
        return cls(num, cat, int(len(df)), int(bins))

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    # -- serialization: npz arrays + one JSON header, no pickle ---------------------------------
    def _meta(self) -> dict[str, Any]:
        return {
            "format": _FORMAT, "version": _FORMAT_VERSION, "n_rows": self.n_rows, "bins": self.bins,
            "numeric": [{"name": k, "n_null": v.n_null} for k, v in self.numeric.items()],
            "categorical": [{"name": k, "n_null": v.n_null, "categories": v.categories} for k, v in self.categorical.items()],
        }

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        for i, v in enumerate(self.numeric.values()):
            arrays[f"num{i}_values"] = np.ascontiguousarray(v.values, dtype=np.float64)
            arrays[f"num{i}_edges"] = np.ascontiguousarray(v.edges, dtype=np.float64)
            arrays[f"num{i}_counts"] = np.ascontiguousarray(v.counts, dtype=np.int64)
        for i, v in enumerate(self.categorical.values()):
            arrays[f"cat{i}_counts"] = np.ascontiguousarray(v.counts, dtype=np.int64)
        return arrays

    @property
    def fingerprint(self) -> str:
        """Content hash (values, bins, categories): which reference a report was computed against."""
        if self._fingerprint is None:
            h = hashlib.blake2b(digest_size=16)
            h.update(json.dumps(self._meta(), sort_keys=True).encode())
            for name, arr in self._arrays().items():
                h.update(name.encode())
                h.update(arr.tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def to_bytes(self, compress: bool = False) -> bytes:
        meta = {**self._meta(), "fingerprint": self.fingerprint}
        buf = io.BytesIO()
        saver = np.savez_compressed if compress else np.savez
        saver(buf, meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8), **self._arrays())
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceProfile:
        try:
            npz = np.load(io.BytesIO(data), allow_pickle=False)
            meta = json.loads(bytes(npz["meta"]).decode("utf-8"))
        except Exception as exc:  # noqa: BLE001 - zip, key and JSON errors all mean "not a profile"
            raise ValueError(f"not a drift reference profile: {type(exc).__name__}: {exc}") from None
        if meta.get("format") != _FORMAT or meta.get("version") != _FORMAT_VERSION:
            raise ValueError(f"unsupported drift reference profile format {meta.get('format')!r} v{meta.get('version')}")
        with npz:
            num = {m["name"]: NumericReference(npz[f"num{i}_values"], int(m["n_null"]), npz[f"num{i}_edges"], npz[f"num{i}_counts"])
                   for i, m in enumerate(meta["numeric"])}
            cat = {m["name"]: CategoricalReference(list(m["categories"]), npz[f"cat{i}_counts"], int(m["n_null"]))
                   for i, m in enumerate(meta["categorical"])}
        return cls(num, cat, int(meta["n_rows"]), int(meta["bins"]), meta.get("fingerprint"))

    def save(self, path: str | Path, compress: bool = False) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(self.to_bytes(compress))
        return p

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        return cls.from_bytes(Path(path).read_bytes())


# -- report ----------------------------------------------------------------------------------------

def _float_or_none(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


@dataclass
class FeatureDrift:
    """One feature's test result; ``bin_labels``/``*_shares`` are the PSI cells (for plots)."""

    feature: str
    kind: Kind
    ks_statistic: float | None
    ks_pvalue: float | None
    psi: float | None
    drifted: bool
    reason: str
    n_reference: int
    n_current: int
    null_share_reference: float = 0.0
    null_share_current: float = 0.0
    testable: bool = True
    ks_drift: bool | None = None
    psi_drift: bool | None = None
    ks_method: str | None = None
    bin_labels: list[str] = field(default_factory=list)
    reference_shares: list[float] = field(default_factory=list)
    current_shares: list[float] = field(default_factory=list)
    unseen_categories: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for k in ("ks_statistic", "ks_pvalue", "psi"):
            d[k] = _float_or_none(d[k])
        d["bin_labels"], d["reference_shares"], d["current_shares"] = (
            list(self.bin_labels), [float(x) for x in self.reference_shares], [float(x) for x in self.current_shares])
        d["unseen_categories"] = list(self.unseen_categories)
        return d


_FRAME_COLUMNS = ["feature", "kind", "ks_statistic", "ks_pvalue", "psi", "drifted", "ks_drift", "psi_drift", "testable",
                  "reason", "n_reference", "n_current", "null_share_reference", "null_share_current", "ks_method"]


@dataclass
class DriftReport:
    features: list[FeatureDrift]
    drift_ratio: float
    dataset_drift: bool
    n_reference: int
    n_current: int
    n_tested: int
    config: dict[str, Any]
    reference_fingerprint: str | None = None

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def untestable_features(self) -> list[str]:
        return [f.feature for f in self.features if not f.testable]

    def feature(self, name: str) -> FeatureDrift:
        for f in self.features:
            if f.feature == name:
                return f
        raise KeyError(f"feature '{name}' is not in this drift report")

    def to_frame(self) -> pd.DataFrame:
        """One row per feature (scalar columns only; nulls as NaN/<NA>)."""
        rows = [{k: getattr(f, k) for k in _FRAME_COLUMNS} for f in self.features]
        df = pd.DataFrame(rows, columns=_FRAME_COLUMNS)
        for k in ("ks_statistic", "ks_pvalue", "psi", "null_share_reference", "null_share_current"):
            df[k] = pd.to_numeric(df[k], errors="coerce").astype("float64")
        for k in ("drifted", "testable"):
            df[k] = df[k].astype(bool)
        for k in ("ks_drift", "psi_drift"):
            df[k] = df[k].astype("boolean")
        for k in ("n_reference", "n_current"):
            df[k] = df[k].astype("int64")
        return df

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable (NaN as None)."""
        return {"features": [f.to_dict() for f in self.features], "drift_ratio": float(self.drift_ratio),
                "dataset_drift": bool(self.dataset_drift), "n_reference": int(self.n_reference),
                "n_current": int(self.n_current), "n_tested": int(self.n_tested), "config": dict(self.config),
                "reference_fingerprint": self.reference_fingerprint, "drifted_features": self.drifted_features}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DriftReport:
        feats = [FeatureDrift(**f) for f in d["features"]]
        return cls(feats, float(d["drift_ratio"]), bool(d["dataset_drift"]), int(d["n_reference"]), int(d["n_current"]),
                   int(d["n_tested"]), dict(d["config"]), d.get("reference_fingerprint"))


# -- detection ---------------------------------------------------------------------------------------

def _decide(kind: Kind, ks: KSResult | None, psi: float, cfg: DriftConfig) -> tuple[bool, bool | None, bool, str]:
    """(drifted, ks_drift, psi_drift, reason) from the configured thresholds and rule."""
    psi_drift = bool(psi >= cfg.psi_threshold)
    psi_txt = f"PSI {psi:.4f} {'>=' if psi_drift else '<'} {cfg.psi_threshold:g}"
    if kind == "categorical" or ks is None:
        return psi_drift, None, psi_drift, f"{psi_txt} (categorical: PSI only)"
    small_p = ks.pvalue < cfg.ks_pvalue
    big_d = ks.statistic >= cfg.ks_statistic_min
    ks_drift = bool(small_p and big_d)
    ks_txt = (f"KS D={ks.statistic:.4f} {'>=' if big_d else '<'} {cfg.ks_statistic_min:g}, "
              f"p={ks.pvalue:.3g} {'<' if small_p else '>='} {cfg.ks_pvalue:g}")
    if small_p and not big_d:
        ks_txt += " (significant but below the effect-size floor)"
    rule = cfg.rule
    if rule == "ks_and_psi":
        drifted = ks_drift and psi_drift
    elif rule == "ks_or_psi":
        drifted = ks_drift or psi_drift
    elif rule == "ks":
        drifted = ks_drift
    else:
        drifted = psi_drift
    return drifted, ks_drift, psi_drift, f"{ks_txt}; {psi_txt} (rule {rule})"


def _labels(edges: np.ndarray) -> list[str]:
    pts = ["-inf", *(f"{e:.4g}" for e in edges), "+inf"]
    return [f"({pts[i]}, {pts[i + 1]}{')' if i == len(pts) - 2 else ']'}" for i in range(len(pts) - 1)]


def _untestable(feature: str, kind: Kind, why: str, n_ref: int, n_cur: int, null_ref: float, null_cur: float) -> FeatureDrift:
    return FeatureDrift(feature, kind, None, None, None, False, f"not testable: {why}", n_ref, n_cur,
                        null_ref, null_cur, testable=False)


def _share(part: int, total: int) -> float:
    return part / total if total else 0.0


def _numeric_feature(name: str, ref: NumericReference, x: np.ndarray, profile: ReferenceProfile, cfg: DriftConfig) -> FeatureDrift:
    cur = _sorted_non_null(x)
    n_ref, n_cur = ref.values.size, cur.size
    null_ref, null_cur = _share(ref.n_null, n_ref + ref.n_null), _share(x.size - n_cur, x.size)
    if n_ref == 0:
        return _untestable(name, "numeric", "the reference has no non-null values", n_ref, n_cur, null_ref, null_cur)
    if n_cur == 0:
        why = "the current frame has no rows" if x.size == 0 else "all current values are null"
        return _untestable(name, "numeric", why, n_ref, n_cur, null_ref, null_cur)
    ks = _ks_sorted(ref.values, cur)
    edges, ref_counts = ref.bins_for(cfg.psi_bins, profile.bins)
    cur_counts = bin_counts_sorted(cur, edges)
    psi = psi_from_counts(ref_counts, cur_counts, cfg.psi_epsilon)
    drifted, ks_drift, psi_drift, reason = _decide("numeric", ks, psi, cfg)
    return FeatureDrift(name, "numeric", ks.statistic, ks.pvalue, psi, drifted, reason, n_ref, n_cur, null_ref, null_cur,
                        True, ks_drift, psi_drift, ks.method, _labels(edges),
                        (ref_counts / n_ref).tolist(), (cur_counts / n_cur).tolist())


def _categorical_feature(name: str, ref: CategoricalReference, s: pd.Series, cfg: DriftConfig) -> FeatureDrift:
    cur, cur_null = category_counts(s)
    n_ref, n_cur = int(ref.counts.sum()), int(sum(cur.values()))
    null_ref, null_cur = _share(ref.n_null, n_ref + ref.n_null), _share(cur_null, len(s))
    if n_ref == 0:
        return _untestable(name, "categorical", "the reference has no non-null values", n_ref, n_cur, null_ref, null_cur)
    if n_cur == 0:
        why = "the current frame has no rows" if len(s) == 0 else "all current values are null"
        return _untestable(name, "categorical", why, n_ref, n_cur, null_ref, null_cur)
    ref_vec, cur_vec, unseen = _categorical_vectors(ref.categories, ref.counts, cur)
    psi = psi_from_counts(ref_vec, cur_vec, cfg.psi_epsilon)
    drifted, _, psi_drift, reason = _decide("categorical", None, psi, cfg)
    if unseen:
        reason += f"; {int(cur_vec[-1])} current rows in {len(unseen)} unseen categories, e.g. {unseen[:5]}"
    return FeatureDrift(name, "categorical", None, None, psi, drifted, reason, n_ref, n_cur, null_ref, null_cur,
                        True, None, psi_drift, None, [*ref.categories, UNSEEN],
                        (ref_vec / n_ref).tolist(), (cur_vec / n_cur).tolist(), unseen[:20])


def _check_profile(profile: ReferenceProfile, numeric: Sequence[str], categorical: Sequence[str]) -> None:
    problems = []
    for f in numeric:
        if f not in profile.numeric:
            where = "is categorical in" if f in profile.categorical else "is not in"
            problems.append(f"numeric feature '{f}' {where} the reference profile")
    for f in categorical:
        if f not in profile.categorical:
            where = "is numeric in" if f in profile.numeric else "is not in"
            problems.append(f"categorical feature '{f}' {where} the reference profile")
    if problems:
        raise DriftInputError("; ".join(problems) + f" (profile features: numeric {list(profile.numeric)}, "
                              f"categorical {list(profile.categorical)}); rebuild the profile or change drift.features")


def detect_drift(reference: ReferenceProfile | pd.DataFrame, current: pd.DataFrame, cfg: DriftConfig,
                 numeric: Sequence[str], categorical: Sequence[str], *, n_jobs: int | None = None) -> DriftReport:
    """KS + PSI per feature of ``current`` against ``reference`` and the dataset verdict.

    ``drift_ratio`` = drifted / testable features; dataset drift when it reaches
    ``cfg.drift_ratio_threshold`` (never with no testable feature). Numeric features are
    tested on ``n_jobs`` threads (default: the CPU count, at most 8); results do not depend on it.
    """
    numeric, categorical = list(numeric), list(categorical)
    _check_columns(current, numeric, categorical, "current")
    if isinstance(reference, pd.DataFrame):
        profile = ReferenceProfile.from_frame(reference, numeric, categorical, cfg.psi_bins, n_jobs=n_jobs)
    elif isinstance(reference, ReferenceProfile):
        profile = reference
        _check_profile(profile, numeric, categorical)
    else:
        raise TypeError(f"reference must be a ReferenceProfile or a DataFrame, got {type(reference).__name__}")

    results: list[FeatureDrift] = _map(
        _numeric_feature, [(f, profile.numeric[f], _numeric_column(current, f, "current"), profile, cfg) for f in numeric], n_jobs)
    for f in categorical:
        col = current[f]
        if isinstance(col, pd.DataFrame):
            raise DriftInputError(f"feature '{f}' appears more than once in the current frame")
        results.append(_categorical_feature(f, profile.categorical[f], col, cfg))

    tested = [r for r in results if r.testable]
    n_drifted = sum(r.drifted for r in tested)
    ratio = n_drifted / len(tested) if tested else 0.0
    config = {k: getattr(cfg, k) for k in ("rule", "ks_pvalue", "ks_statistic_min", "psi_threshold", "psi_bins",
                                          "psi_epsilon", "drift_ratio_threshold")}
    return DriftReport(results, float(ratio), bool(tested) and ratio >= cfg.drift_ratio_threshold, profile.n_rows,
                       int(len(current)), len(tested), config, profile.fingerprint)
