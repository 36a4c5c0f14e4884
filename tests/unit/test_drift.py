"""Drift detection: KS equal to scipy, PSI by hand, the decision rules, the reference profile."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from modelops.config import DriftConfig
from modelops.monitoring.drift import (
    UNSEEN,
    DriftInputError,
    DriftReport,
    ReferenceProfile,
    _decide,
    _ks_statistic_sorted,
    detect_drift,
    ks_2samp_exact,
    psi_categorical,
    psi_from_counts,
    psi_numeric,
)


def assert_ks_equal(a: np.ndarray, b: np.ndarray) -> None:
    """Statistic to 1e-12 absolute, p-value to 1e-9 relative, against scipy's default ks_2samp."""
    ref = stats.ks_2samp(a, b)
    ours = ks_2samp_exact(a, b)
    assert abs(ours.statistic - float(ref.statistic)) <= 1e-12, (len(a), len(b), ours, ref)
    p_ref = float(ref.pvalue)
    assert ours.pvalue == p_ref or abs(ours.pvalue - p_ref) <= 1e-9 * abs(p_ref), (len(a), len(b), ours, ref)


def _sample(rng: np.random.Generator, n: int, kind: str, shift: float = 0.0) -> np.ndarray:
    if kind == "normal":
        return rng.normal(shift, 1.0, n)
    if kind == "ties":  # few distinct values: many ties within and across samples
        return rng.integers(0, 6, n).astype(float) + round(shift)
    if kind == "rounded":  # partly tied continuous data, with signed zeros
        x = np.round(rng.normal(shift, 1.0, n), 1)
        x[::7] = -0.0
        return x
    raise ValueError(kind)


# -- KS == scipy ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["normal", "ties", "rounded"])
def test_ks_equals_scipy_small_samples_exact_path(kind):
    rng = np.random.default_rng(7)
    for _ in range(300):
        n1, n2 = (int(v) for v in rng.integers(1, 80, 2))
        a = _sample(rng, n1, kind)
        b = _sample(rng, n2, kind, float(rng.uniform(-1, 1)))
        assert_ks_equal(a, b)
        assert ks_2samp_exact(a, b).method == "exact"


@pytest.mark.parametrize("n1,n2", [(50, 50), (1000, 1000), (1000, 999), (3000, 7000), (10000, 10000), (10000, 37), (1, 10000)])
def test_ks_equals_scipy_at_exact_sizes(n1, n2):
    rng = np.random.default_rng(n1 + n2)
    for kind in ("normal", "ties"):
        assert_ks_equal(_sample(rng, n1, kind), _sample(rng, n2, kind, 0.05))


@pytest.mark.parametrize("n1,n2", [(10001, 10001), (20000, 15000), (10001, 3), (200000, 1000), (50000, 120000)])
def test_ks_equals_scipy_asymptotic_path(n1, n2):
    rng = np.random.default_rng(n1 * 3 + n2)
    for kind in ("normal", "ties", "rounded"):
        a, b = _sample(rng, n1, kind), _sample(rng, n2, kind, 0.02)
        assert_ks_equal(a, b)
        assert ks_2samp_exact(a, b).method == "asymp"


def test_ks_statistic_both_rank_strategies_match_scipy():
    """Few current values (binary search) and many (merge) give scipy's statistic, ties included."""
    rng = np.random.default_rng(11)
    ref = np.sort(rng.integers(0, 300, 80_000).astype(float))
    for n_cur in (50, 5_000, 80_000, 200_000):
        cur = np.sort(rng.integers(-5, 310, n_cur).astype(float))
        assert _ks_statistic_sorted(ref, cur) == float(stats.ks_2samp(ref, cur).statistic)


def test_ks_edge_cases():
    assert_ks_equal(np.array([1.0]), np.array([2.0]))
    assert_ks_equal(np.array([1.0, 1.0, 1.0]), np.array([1.0]))
    assert_ks_equal(np.array([0.0, np.inf]), np.array([-np.inf, 0.0, 5.0]))
    with pytest.raises(ValueError, match="non-empty"):
        ks_2samp_exact([np.nan], [1.0])


def test_ks_through_profile_equals_scipy():
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 30_000), "t": rng.integers(0, 20, 30_000).astype(float)})
    cur = pd.DataFrame({"x": rng.normal(0.03, 1, 12_000), "t": rng.integers(0, 21, 12_000).astype(float)})
    report = detect_drift(ReferenceProfile.from_frame(ref, ["x", "t"], []), cur, DriftConfig(), ["x", "t"], [])
    for col in ("x", "t"):
        f = report.feature(col)
        r = stats.ks_2samp(ref[col], cur[col])
        assert abs(f.ks_statistic - r.statistic) <= 1e-12
        assert math.isclose(f.ks_pvalue, r.pvalue, rel_tol=1e-9, abs_tol=0.0) or f.ks_pvalue == r.pvalue


# -- PSI -----------------------------------------------------------------------------------------

def test_psi_numeric_by_hand():
    # reference 1..10, bins=2: the median 5.5 is the only edge -> bins (-inf, 5.5], (5.5, +inf), shares 0.5 / 0.5
    # current: 1,2,3 in the first bin, 7..13 in the second -> shares 0.3 / 0.7
    # PSI = (0.3-0.5)*ln(0.3/0.5) + (0.7-0.5)*ln(0.7/0.5)
    #     = 0.2*0.5108256238 + 0.2*0.3364722366 = 0.1021651248 + 0.0672944473 = 0.1694595721
    ref = np.arange(1, 11, dtype=float)
    cur = np.array([1, 2, 3, 7, 8, 9, 10, 11, 12, 13], dtype=float)
    assert psi_numeric(ref, cur, bins=2) == pytest.approx(0.1694595721, abs=1e-9)


def test_psi_numeric_empty_bin_uses_epsilon():
    # bins=4 on 1..8: edges 2.75, 4.5, 6.25 -> reference shares 0.25 each
    # current 1,1,2,2 -> shares 1, 0, 0, 0; empty bins count as epsilon=1e-4
    # PSI = (1-0.25)*ln(1/0.25) + 3*(1e-4-0.25)*ln(1e-4/0.25)
    #     = 0.75*1.3862943611 + 3*(-0.2499)*(-7.8240460109) = 1.0397207708 + 5.8656872943 = 6.9054080652
    ref = np.arange(1, 9, dtype=float)
    cur = np.array([1, 1, 2, 2], dtype=float)
    assert psi_numeric(ref, cur, bins=4, epsilon=1e-4) == pytest.approx(6.9054080652, abs=1e-9)


def test_psi_numeric_ties_deduplicate_edges():
    # 60% zeros: the 10%..50% quantiles are all 0 and collapse into one edge
    ref = np.array([0.0] * 6 + [1.0, 2.0, 3.0, 4.0])
    profile = ReferenceProfile.from_frame(pd.DataFrame({"x": ref}), ["x"], [], bins=10)
    edges = profile.numeric["x"].edges
    assert len(edges) == len(np.unique(edges)) and edges[0] == 0.0
    assert profile.numeric["x"].counts[0] == 6  # the tie stays in (-inf, 0]
    assert psi_numeric(ref, ref, bins=10) == 0.0


def test_psi_categorical_unseen_by_hand():
    # reference a:50 b:50; current a:40 b:40 c:20 -> c is unseen (reference share epsilon)
    # PSI = 2*(0.4-0.5)*ln(0.4/0.5) + (0.2-1e-4)*ln(0.2/1e-4)
    #     = 2*0.0223143551 + 0.1999*7.6009024595 = 0.0446287103 + 1.5194204017 = 1.5640491119
    ref = ["a"] * 50 + ["b"] * 50
    cur = ["a"] * 40 + ["b"] * 40 + ["c"] * 20
    assert psi_categorical(ref, cur, epsilon=1e-4) == pytest.approx(1.5640491119, abs=1e-9)
    report = detect_drift(pd.DataFrame({"k": ref}), pd.DataFrame({"k": cur}), DriftConfig(), [], ["k"])
    f = report.feature("k")
    assert f.kind == "categorical" and f.drifted and f.ks_statistic is None
    assert f.bin_labels[-1] == UNSEEN and f.current_shares[-1] == pytest.approx(0.2)
    assert f.unseen_categories == ["c"] and "unseen" in f.reason


def test_categorical_spellings_are_one_category():
    """3 in the reference and 3.0 in a current frame that gained a NaN are the same store type."""
    ref = pd.DataFrame({"k": [1, 2, 3, 3]})
    cur = pd.DataFrame({"k": [1.0, 2.0, 3.0, 3.0, np.nan]})
    f = detect_drift(ref, cur, DriftConfig(), [], ["k"]).feature("k")
    assert f.psi == 0.0 and f.unseen_categories == [] and f.null_share_current == pytest.approx(0.2)


def test_psi_from_counts_zero_for_equal_shares():
    assert psi_from_counts([10, 20, 30], [1, 2, 3]) == 0.0


# -- identical / shifted / negligible ----------------------------------------------------------------

def test_identical_samples_no_drift():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.normal(size=5000), "k": rng.choice(list("abc"), 5000)})
    report = detect_drift(df, df.copy(), DriftConfig(), ["x"], ["k"])
    x = report.feature("x")
    assert x.ks_statistic == 0.0 and x.ks_pvalue == 1.0 and x.psi == pytest.approx(0.0, abs=1e-15)
    assert report.feature("k").psi == pytest.approx(0.0, abs=1e-15)
    assert report.drift_ratio == 0.0 and not report.dataset_drift and report.drifted_features == []


def test_shifted_sample_is_flagged():
    rng = np.random.default_rng(2)
    ref = pd.DataFrame({"a": rng.normal(0, 1, 5000), "b": rng.normal(0, 1, 5000), "c": rng.normal(0, 1, 5000)})
    cur = pd.DataFrame({"a": rng.normal(1, 1, 4000), "b": rng.normal(0, 1, 4000), "c": rng.normal(0, 1, 4000)})
    report = detect_drift(ref, cur, DriftConfig(drift_ratio_threshold=0.3), ["a", "b", "c"], [])
    a = report.feature("a")
    assert a.drifted and a.ks_drift and a.psi_drift and a.ks_statistic > 0.3 and a.ks_pvalue < 1e-100
    assert report.drifted_features == ["a"]
    assert report.drift_ratio == pytest.approx(1 / 3) and report.dataset_drift
    frame = report.to_frame()
    assert list(frame["feature"]) == ["a", "b", "c"] and frame["drifted"].tolist() == [True, False, False]


def test_negligible_shift_at_one_million_rows_is_not_flagged():
    """At n=1e6 a 0.02 sd shift is 'significant' but tiny: the effect-size floor keeps it quiet."""
    rng = np.random.default_rng(3)
    n = 1_000_000
    ref = pd.DataFrame({"x": rng.normal(0, 1, n)})
    cur = pd.DataFrame({"x": rng.normal(0.02, 1, n)})
    f = detect_drift(ReferenceProfile.from_frame(ref, ["x"], []), cur, DriftConfig(), ["x"], []).feature("x")
    assert f.ks_pvalue < 0.01  # scipy alone would call this drift
    assert f.ks_statistic < 0.1 and f.ks_drift is False
    assert f.psi < 0.2 and not f.drifted
    assert "effect-size floor" in f.reason


# -- decision rules -------------------------------------------------------------------------------

@pytest.mark.parametrize("rule,ks_hit,psi_hit,expected", [
    ("ks_and_psi", True, True, True), ("ks_and_psi", True, False, False), ("ks_and_psi", False, True, False),
    ("ks_or_psi", True, False, True), ("ks_or_psi", False, True, True), ("ks_or_psi", False, False, False),
    ("ks", True, False, True), ("ks", False, True, False),
    ("psi", True, False, False), ("psi", False, True, True),
])
def test_rules(rule, ks_hit, psi_hit, expected):
    from modelops.monitoring.drift import KSResult

    cfg = DriftConfig(rule=rule, ks_pvalue=0.01, ks_statistic_min=0.1, psi_threshold=0.2)
    ks = KSResult(0.3, 1e-6, "asymp") if ks_hit else KSResult(0.05, 1e-6, "asymp")
    drifted, ks_drift, psi_drift, reason = _decide("numeric", ks, 0.5 if psi_hit else 0.01, cfg)
    assert (drifted, ks_drift, psi_drift) == (expected, ks_hit, psi_hit)
    assert f"rule {rule}" in reason


def test_categorical_uses_psi_only_even_with_ks_rule():
    cfg = DriftConfig(rule="ks")
    drifted, ks_drift, psi_drift, _ = _decide("categorical", None, 0.5, cfg)
    assert drifted and ks_drift is None and psi_drift


def test_dataset_drift_threshold_is_inclusive():
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({c: rng.normal(0, 1, 2000) for c in "abcd"})
    cur = pd.DataFrame({c: rng.normal(2 if c in "ab" else 0, 1, 2000) for c in "abcd"})
    assert detect_drift(ref, cur, DriftConfig(drift_ratio_threshold=0.5), list("abcd"), []).dataset_drift
    assert not detect_drift(ref, cur, DriftConfig(drift_ratio_threshold=0.51), list("abcd"), []).dataset_drift


# -- NaN and bad input ------------------------------------------------------------------------------

def test_nan_dropped_and_reported():
    rng = np.random.default_rng(6)
    x = rng.normal(size=1000)
    ref = pd.DataFrame({"x": x, "k": ["a", "b"] * 500})
    cur_x = x.copy()
    cur_x[:250] = np.nan
    cur = pd.DataFrame({"x": cur_x, "k": [None] * 1000, "i": pd.array([1, None] * 500, dtype="Int64")})
    ref["i"] = pd.array([1, 2] * 500, dtype="Int64")
    report = detect_drift(ref, cur, DriftConfig(), ["x", "i"], ["k"])
    x_res = report.feature("x")
    assert x_res.null_share_current == 0.25 and x_res.n_current == 750 and x_res.testable
    assert x_res.ks_statistic == pytest.approx(float(stats.ks_2samp(x, cur_x[250:]).statistic), abs=1e-12)
    k = report.feature("k")
    assert not k.testable and not k.drifted and k.psi is None and "null" in k.reason
    assert report.feature("i").n_current == 500
    assert report.n_tested == 2 and "k" in report.untestable_features


def test_empty_current_frame_is_not_testable():
    ref = pd.DataFrame({"x": [1.0, 2.0, 3.0], "k": ["a", "b", "c"]})
    cur = ref.iloc[0:0]
    report = detect_drift(ref, cur, DriftConfig(), ["x"], ["k"])
    assert report.n_tested == 0 and report.drift_ratio == 0.0 and not report.dataset_drift
    assert all("no rows" in f.reason for f in report.features)


def test_missing_feature_names_the_feature():
    ref = pd.DataFrame({"x": [1.0, 2.0], "k": ["a", "b"]})
    with pytest.raises(DriftInputError, match=r"'x' \(numeric\).*current frame"):
        detect_drift(ref, pd.DataFrame({"k": ["a"]}), DriftConfig(), ["x"], ["k"])
    with pytest.raises(DriftInputError, match=r"'k' \(categorical\)"):
        detect_drift(ref, pd.DataFrame({"x": [1.0]}), DriftConfig(), ["x"], ["k"])
    profile = ReferenceProfile.from_frame(ref, ["x"], ["k"])
    with pytest.raises(DriftInputError, match="numeric feature 'y' is not in the reference profile"):
        detect_drift(profile, pd.DataFrame({"y": [1.0]}), DriftConfig(), ["y"], [])
    with pytest.raises(DriftInputError, match="numeric feature 'k' is categorical in the reference profile"):
        detect_drift(profile, pd.DataFrame({"k": [1.0]}), DriftConfig(), ["k"], [])


def test_non_numeric_column_names_the_feature():
    ref = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(DriftInputError, match="numeric feature 'x' has non-numeric dtype"):
        detect_drift(ref, pd.DataFrame({"x": ["a", "b"]}), DriftConfig(), ["x"], [])


# -- profile ---------------------------------------------------------------------------------------

def _mixed_frames(seed: int = 8, n: int = 20_000) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"x": rng.normal(size=n), "t": rng.integers(0, 9, n).astype(float),
                        "k": rng.choice(["a", "b", "c"], n), "s": rng.integers(1, 40, n)})
    ref.loc[::97, "x"] = np.nan
    cur = pd.DataFrame({"x": rng.normal(0.5, 1, n // 2), "t": rng.integers(0, 10, n // 2).astype(float),
                        "k": rng.choice(["a", "b", "d"], n // 2), "s": rng.integers(1, 42, n // 2)})
    return ref, cur


def test_profile_round_trip_is_exact(tmp_path):
    ref, cur = _mixed_frames()
    profile = ReferenceProfile.from_frame(ref, ["x", "t"], ["k", "s"], bins=10)
    for restored in (ReferenceProfile.from_bytes(profile.to_bytes()),
                     ReferenceProfile.from_bytes(profile.to_bytes(compress=True)),
                     ReferenceProfile.load(profile.save(tmp_path / "p" / "profile.npz"))):
        assert restored.fingerprint == profile.fingerprint
        assert restored.n_rows == profile.n_rows == len(ref) and restored.bins == 10
        for name, num in profile.numeric.items():
            other = restored.numeric[name]
            assert other.values.dtype == np.float64 and other.values.tobytes() == num.values.tobytes()
            assert other.edges.tobytes() == num.edges.tobytes() and np.array_equal(other.counts, num.counts)
            assert other.n_null == num.n_null
        for name, cat in profile.categorical.items():
            assert restored.categorical[name].categories == cat.categories
            assert np.array_equal(restored.categorical[name].counts, cat.counts)
        a = detect_drift(profile, cur, DriftConfig(), ["x", "t"], ["k", "s"]).to_dict()
        b = detect_drift(restored, cur, DriftConfig(), ["x", "t"], ["k", "s"]).to_dict()
        assert a == b
    # a fresh profile of the same data has the same fingerprint; different data does not
    assert ReferenceProfile.from_frame(ref, ["x", "t"], ["k", "s"]).fingerprint == profile.fingerprint
    assert ReferenceProfile.from_frame(cur, ["x", "t"], ["k", "s"]).fingerprint != profile.fingerprint
    with pytest.raises(ValueError, match="not a drift reference profile"):
        ReferenceProfile.from_bytes(b"garbage")


def test_profile_and_frame_reference_agree_and_other_bins_recomputed():
    ref, cur = _mixed_frames(9)
    profile = ReferenceProfile.from_frame(ref, ["x", "t"], ["k"], bins=10)
    cfg = DriftConfig(psi_bins=10)
    assert detect_drift(profile, cur, cfg, ["x", "t"], ["k"]).to_dict() == detect_drift(ref, cur, cfg, ["x", "t"], ["k"]).to_dict()
    cfg5 = DriftConfig(psi_bins=5)
    from_profile = detect_drift(profile, cur, cfg5, ["x"], []).feature("x")
    assert len(from_profile.bin_labels) == 5
    assert from_profile.psi == pytest.approx(psi_numeric(ref["x"], cur["x"], bins=5, epsilon=cfg5.psi_epsilon), abs=1e-15)


def test_report_dict_round_trip():
    ref, cur = _mixed_frames(10, 3000)
    report = detect_drift(ref, cur, DriftConfig(), ["x", "t"], ["k"])
    import json

    restored = DriftReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert restored.to_dict() == report.to_dict()
    pd.testing.assert_frame_equal(restored.to_frame(), report.to_frame())


# -- properties ------------------------------------------------------------------------------------

_floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
_samples = st.one_of(st.lists(_floats, min_size=1, max_size=60),
                     st.lists(st.integers(-3, 3).map(float), min_size=1, max_size=60))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_samples, _samples)
def test_property_ks_symmetric_bounded_and_equal_to_scipy(a, b):
    ab, ba = ks_2samp_exact(a, b), ks_2samp_exact(b, a)
    assert ab.statistic == ba.statistic
    assert 0.0 <= ab.statistic <= 1.0 and 0.0 <= ab.pvalue <= 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's "exact unsuccessful, switching to asymp"
        ref = stats.ks_2samp(a, b)
    assert abs(ab.statistic - float(ref.statistic)) <= 1e-12
    assert ab.pvalue == float(ref.pvalue) or abs(ab.pvalue - float(ref.pvalue)) <= 1e-9 * float(ref.pvalue)


@settings(max_examples=150, deadline=None)
@given(_samples)
def test_property_ks_zero_for_identical(a):
    r = ks_2samp_exact(a, list(a))
    assert r.statistic == 0.0 and r.pvalue == 1.0


@settings(max_examples=300, deadline=None)
@given(_samples, _samples, st.integers(2, 20), st.floats(1e-8, 1e-2))
def test_property_psi_non_negative(a, b, bins, eps):
    assert psi_numeric(a, b, bins=bins, epsilon=eps) >= 0.0
    assert psi_numeric(a, a, bins=bins, epsilon=eps) == 0.0
    assert psi_categorical([str(v) for v in a], [str(v) for v in b], epsilon=eps) >= 0.0


# -- HTML report -----------------------------------------------------------------------------------

def test_render_drift_report(tmp_path):
    import re

    from modelops.monitoring.drift_report import render_drift_report

    ref, cur = _mixed_frames(12, 5000)
    profile = ReferenceProfile.from_frame(ref, ["x", "t"], ["k", "s"])
    cur.loc[:, "t"] = np.nan  # an untestable feature is listed, not plotted
    report = detect_drift(profile, cur, DriftConfig(), ["x", "t"], ["k", "s"])
    path = render_drift_report(report, tmp_path / "out", "store_sales <drift> 2025-06-01", profile, cur)
    text = path.read_text()
    assert path.name == "drift_report.html"
    assert "store_sales &lt;drift&gt; 2025-06-01" in text and "<script" not in text
    images = re.findall(r'<img src="([^"]+)"', text)
    assert len(images) == 3 and all((path.parent / i).is_file() for i in images)
    assert all(i.startswith("plots/") for i in images)
    assert text.count('<tr class="drift">') == len(report.drifted_features) >= 1
    assert 'class="untestable"' in text and "rule <b>ks_or_psi</b>" in text
    # without the data, the stored bin shares are still plotted
    bare = render_drift_report(report, tmp_path / "bare", "bare")
    assert len(list((bare.parent / "plots").glob("*.png"))) == 3
