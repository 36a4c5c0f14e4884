"""More hypothesis properties: drift maths on the asymptotic KS path and categorical PSI, and the model-URI guard.

(The small-sample KS/PSI properties live in test_drift.py; the registry state machine in
test_registry_state_machine.py.)
"""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from modelops.monitoring.drift import ks_2samp_exact, psi_categorical
from modelops.security import UntrustedModelURI, check_model_uri


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(10_001, 14_000), st.integers(1, 3_000), st.sampled_from([0, 3, 1000]),
       st.floats(-0.3, 0.3))
def test_property_ks_asymptotic_path_equals_scipy(seed, n1, n2, levels, shift):
    """Past scipy's exact limit (max n > 10000), with and without heavy ties."""
    rng = np.random.default_rng(seed)
    if levels:
        a = rng.integers(0, levels, n1).astype(float)
        b = rng.integers(0, levels, n2).astype(float) + round(shift * levels)
    else:
        a, b = rng.normal(0, 1, n1), rng.normal(shift, 1, n2)
    ours, theirs = ks_2samp_exact(a, b), ks_2samp_exact(b, a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = stats.ks_2samp(a, b)
    assert ours.statistic == theirs.statistic  # symmetric
    assert 0.0 <= ours.statistic <= 1.0 and 0.0 <= ours.pvalue <= 1.0
    assert abs(ours.statistic - float(ref.statistic)) <= 1e-12
    assert ours.pvalue == float(ref.pvalue) or abs(ours.pvalue - float(ref.pvalue)) <= 1e-9 * float(ref.pvalue)
    same = ks_2samp_exact(a, rng.permutation(a))
    assert same.statistic == 0.0 and same.pvalue == 1.0


_cats = st.lists(st.sampled_from(["a", "b", "c", "d", 1, 2, 2.0, True]), min_size=1, max_size=80)


@settings(max_examples=100, deadline=None)
@given(_cats, _cats, st.floats(1e-8, 1e-2))
def test_property_psi_categorical_non_negative_and_zero_for_same_shares(a, b, eps):
    assert psi_categorical(a, b, epsilon=eps) >= 0.0
    assert psi_categorical(a, list(reversed(a)), epsilon=eps) == 0.0
    assert psi_categorical(a, a + a, epsilon=eps) == 0.0  # same shares, twice the rows


_name = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_property_uri_guard_accepts_only_the_registry(text):
    """Anything with a scheme host, an absolute/relative path, '..' or whitespace is refused."""
    try:
        ok = check_model_uri(text)
    except UntrustedModelURI:
        return
    assert ok == text
    assert text.startswith(("models:/", "runs:/")) and not text.startswith(("models://", "runs://"))
    assert ".." not in text.split("/") and not any(c.isspace() for c in text)


@settings(max_examples=100, deadline=None)
@given(_name, st.sampled_from(["http://evil", "file:///etc", "s3://bucket", "/abs/path", "../rel", "models://prof@host/"]))
def test_property_uri_guard_refuses_foreign_locations(name, prefix):
    for uri in (f"{prefix}/{name}", f"{prefix}{name}", f"runs:/abc/../../{name}", f"runs:/0a/model/../../{name}"):
        try:
            check_model_uri(uri)
        except UntrustedModelURI:
            continue
        raise AssertionError(f"accepted {uri!r}")
