"""SHAP from the boosters, combined for the ensemble: additivity, spaces, rankings, permutation importance.

On the demo's daily store panel and on an event-shaped dataset (many rows per key per day, values
repeating within a day, dates in 2013), for regression (raw and log1p target) and classification.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from modelops import metrics as M
from modelops.data.features import FeatureBuilder
from modelops.training import explain as X
from modelops.training.boosters import time_split, train_lightgbm, train_xgboost, transform_target
from modelops.training.ensemble import EnsembleModel, predict_raw

HP = {"xgboost": {"n_estimators": 60, "max_depth": 4, "learning_rate": 0.2, "tree_method": "hist"},
      "lightgbm": {"n_estimators": 60, "num_leaves": 15, "learning_rate": 0.2, "min_child_samples": 5}}


def _fit(raw: pd.DataFrame, builder: FeatureBuilder, task: str, tt: str, weights=None) -> tuple[EnsembleModel, pd.DataFrame]:
    """Both boosters with early stopping (so the best-iteration path is the one explained) and the ensemble."""
    raw = raw.sort_values([builder.timestamp, builder.entity], kind="stable").reset_index(drop=True)
    tr, va, te, _ = time_split(raw, builder.timestamp, 0.7, 0.15)
    builder.fit(raw)
    Xf = builder.transform(raw, use_history=False)
    y = transform_target(raw[builder.target].to_numpy("float64"), tt)
    m_x, _ = train_xgboost(Xf[tr], y[tr], Xf[va], y[va], HP["xgboost"], task, 5, 1)
    m_l, _ = train_lightgbm(Xf[tr], y[tr], Xf[va], y[va], HP["lightgbm"], task, 5, 1, builder.categorical_feature_names)
    model = EnsembleModel(builder, m_x, m_l, weights or {"xgboost": 0.4, "lightgbm": 0.6}, task, tt)
    return model, raw.assign(_test=te)


def _store_builder() -> FeatureBuilder:
    return FeatureBuilder(timestamp="date", entity="store", target="sales",
                          numeric=["customers", "promo", "competition_distance"], categorical=["store_type", "state_holiday"],
                          horizon_days=7, target_lags=[7, 14], target_rolling_windows=[7])


@pytest.fixture(scope="module")
def store_panel() -> pd.DataFrame:
    from modelops.data.sample_data import generate_store_sales

    return generate_store_sales(date(2024, 1, 1), date(2024, 7, 1), n_stores=12, seed=5)


def events_frame(n_days: int = 90, keys: int = 8, per_day: int = 6, seed: int = 2) -> pd.DataFrame:
    """Events: several rows per key per day, values repeating within a day, dates years back (2013)."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2013-03-01", periods=n_days, freq="D")
    rows = []
    for d in days:
        for k in range(keys):
            level = rng.integers(1, 5)  # repeats within the day for the key
            for j in range(per_day):
                amount = float(level * 10 + (j % 2))
                channel = ["web", "shop", "phone"][(k + j) % 3]
                rows.append({"ts": d + pd.Timedelta(hours=int(rng.integers(0, 24))), "account": f"acct-{k}",
                             "amount": amount, "items": int(level), "channel": channel,
                             "value": amount * (2.0 if channel == "web" else 1.0) + rng.normal(0, 1) + 50})
    return pd.DataFrame(rows)


def _events_builder() -> FeatureBuilder:
    return FeatureBuilder(timestamp="ts", entity="account", target="value", numeric=["amount", "items"], categorical=["channel"],
                          horizon_days=7, target_lags=[7], target_rolling_windows=[7], calendar=True)


CASES = {
    "store-log1p": lambda panel: (panel, _store_builder(), "regression", "log1p"),
    "store-raw": lambda panel: (panel, _store_builder(), "regression", "none"),
    "events-raw": lambda panel: (events_frame(), _events_builder(), "regression", "none"),
}


@pytest.fixture(scope="module", params=list(CASES))
def fitted(request, store_panel):
    raw, builder, task, tt = CASES[request.param](store_panel)
    model, raw = _fit(raw, builder, task, tt)
    sub, sel = X.scoring_frame(model, raw, builder.timestamp, raw["_test"].to_numpy())
    inputs = X.model_inputs(model, sub, sel)
    return request.param, model, inputs, sub, sel


def test_each_booster_adds_up_to_its_margin(fitted):
    _, model, inputs, _, _ = fitted
    for booster in (model.xgb_model, model.lgbm_model):
        values, base = X.booster_contributions(booster, inputs)
        margin = X.booster_margin(booster, inputs)
        assert values.shape == inputs.shape
        np.testing.assert_allclose(values.sum(axis=1) + base, margin, rtol=1e-6, atol=1e-6)


def test_early_stopping_is_respected(fitted):
    """The values explain the trees ``predict`` uses (up to the best iteration), not every tree grown."""
    import xgboost as xgb

    _, model, inputs, _, _ = fitted
    m = model.xgb_model
    grown = m.get_booster().num_boosted_rounds()
    assert m.best_iteration + 1 < grown, "early stopping did not cut this model short: the test needs it to"
    values, base = X.booster_contributions(m, inputs)
    every_tree = m.get_booster().predict(xgb.DMatrix(inputs), output_margin=True, iteration_range=(0, grown))
    assert np.max(np.abs(values.sum(1) + base - every_tree)) > 1e-4
    np.testing.assert_allclose(values.sum(1) + base, m.predict(inputs, output_margin=True), rtol=1e-6, atol=1e-6)


def test_ensemble_values_reproduce_its_output_in_the_stated_space(fitted):
    name, model, inputs, sub, sel = fitted
    c = X.ensemble_contributions(model, inputs)
    raw_out = sum(model.weights[k] * predict_raw(m, inputs, "regression") for k, m in (("xgboost", model.xgb_model), ("lightgbm", model.lgbm_model)))
    np.testing.assert_allclose(c.output, raw_out, rtol=1e-6, atol=1e-6)
    pred = model.predict_frame(sub, rows=sel)
    if model.target_transform == "log1p":
        assert c.space == "log1p(target)"
        # in log1p space, where the ensemble is a weighted sum (XGBoost's float32 margins: ~1e-6 of ~9)
        np.testing.assert_allclose(c.output, np.log1p(pred), rtol=1e-6, atol=1e-6)
    else:
        assert c.space == "target units"
        np.testing.assert_allclose(c.output, pred, rtol=1e-6, atol=1e-6)


def test_values_summed_per_raw_column_still_add_up_and_map_every_feature(fitted):
    _, model, inputs, _, _ = fitted
    c = X.ensemble_contributions(model, inputs)
    sources = X.feature_sources(model.builder)
    assert set(sources) == set(model.builder.feature_names)
    b = model.builder
    assert sources[f"{b.categorical[0]}_code"] == b.categorical[0]
    assert sources["target_lag_7"] == f"{b.target} ({X.TARGET_HISTORY})"
    assert all(sources[f] == b.timestamp for f in sources if f.startswith("cal_"))
    grouped = c.by_source(sources)
    assert set(grouped.feature_names) == set(sources.values())
    np.testing.assert_allclose(grouped.output, c.output, rtol=1e-9, atol=1e-9)


def test_top_k_per_row_adds_up_with_the_rest(fitted):
    _, model, inputs, _, _ = fitted
    c = X.ensemble_contributions(model, inputs)
    idx, vals, rest = X.top_k(c, 3)
    assert idx.shape == (len(inputs), 3)
    np.testing.assert_allclose(c.base + vals.sum(axis=1) + rest, c.output, rtol=1e-9, atol=1e-9)
    a = np.abs(c.values)
    np.testing.assert_allclose(np.abs(vals[:, 0]), a.max(axis=1))  # the largest first
    assert np.all(np.abs(vals[:, :-1]) >= np.abs(vals[:, 1:]))
    kth = np.sort(a, axis=1)[:, -3]
    assert np.all(np.abs(vals[:, 2]) >= kth - 1e-12)


def test_classification_values_add_up_to_weighted_log_odds_not_to_the_averaged_probability():
    """The ensemble averages probabilities: the combined values add up to the weighted log-odds (documented)."""
    from modelops.data.sample_data import generate_churn

    raw = generate_churn(date(2024, 1, 1), date(2024, 4, 1), n_per_day=40, seed=4)
    b = FeatureBuilder(timestamp="date", entity="customer_id", target="churned",
                       numeric=["tenure_months", "monthly_charges", "support_calls", "usage_minutes", "late_payments"],
                       categorical=["contract", "payment_method"], calendar=False, target_lags=[], target_rolling_windows=[],
                       entity_as_feature=False)
    model, raw = _fit(raw, b, "classification", "none")
    sub, sel = X.scoring_frame(model, raw, "date", raw["_test"].to_numpy())
    inputs = X.model_inputs(model, sub, sel)
    c = X.ensemble_contributions(model, inputs)
    assert c.space.startswith("log-odds")
    for booster in (model.xgb_model, model.lgbm_model):
        values, base = X.booster_contributions(booster, inputs)
        np.testing.assert_allclose(values.sum(1) + base, X.booster_margin(booster, inputs), rtol=1e-6, atol=1e-6)
        p = predict_raw(booster, inputs, "classification")
        np.testing.assert_allclose(1 / (1 + np.exp(-(values.sum(1) + base))), p, rtol=1e-5, atol=1e-6)  # margin = log-odds
    weighted_log_odds = sum(model.weights[k] * X.booster_margin(m, inputs) for k, m in (("xgboost", model.xgb_model), ("lightgbm", model.lgbm_model)))
    np.testing.assert_allclose(c.output, weighted_log_odds, rtol=1e-6, atol=1e-6)
    p = model.predict_frame(sub, rows=sel)
    logit = np.log(p / (1 - p))
    assert np.max(np.abs(c.output - logit)) > 1e-4  # not the logit of the averaged probability: the README says so


def test_compare_rankings():
    ref = pd.Series({"a": 5.0, "b": 3.0, "c": 1.0, "d": 0.5})
    same = X.compare_rankings(ref * 2, ref, top=2)
    assert same["rank_correlation"] == pytest.approx(1.0) and same["top_overlap"] == 1.0 and not same["entered_top"]
    flipped = X.compare_rankings(pd.Series({"a": 0.5, "b": 1.0, "c": 3.0, "d": 5.0}), ref, top=2)
    assert flipped["rank_correlation"] == pytest.approx(-1.0)
    assert flipped["entered_top"] == ["d", "c"] and flipped["left_top"] == ["a", "b"] and flipped["top_overlap"] == 0.0
    d = {r["feature"]: r for r in flipped["features"]}
    assert d["d"]["current_rank"] == 1 and d["d"]["reference_rank"] == 4 and d["d"]["rank_change"] == 3


def test_role_change_with_unchanged_distributions_is_seen_by_attribution_not_by_ks_psi():
    """y = 10*A*B + C, with A and B each 0 half of the time and +-1 otherwise. On the day A and B keep
    exactly these distributions, but B is non-zero only where A is zero: the product vanishes and
    the model leans on C. KS/PSI per feature see nothing; the order of mean |SHAP| flips."""
    from modelops.config import DriftConfig
    from modelops.monitoring.drift import detect_drift

    rng = np.random.default_rng(0)
    n = 4000

    def spikes(size):
        return rng.choice([-1.0, 0.0, 0.0, 1.0], size=size)

    def frame(a, b, c, start):
        days = pd.date_range(start, periods=40, freq="D")
        return pd.DataFrame({"day": np.repeat(days, n // 40), "key": np.tile(np.arange(n // 40), 40), "A": a, "B": b, "C": c,
                             "y": 10 * a * b + c})

    train = frame(spikes(n), spikes(n), rng.uniform(-1, 1, n), "2024-01-01")
    builder = FeatureBuilder(timestamp="day", entity="key", target="y", numeric=["A", "B", "C"], categorical=[], calendar=False,
                             target_lags=[], target_rolling_windows=[], entity_as_feature=False)
    model, train = _fit(train, builder, "regression", "none", {"xgboost": 0.5, "lightgbm": 0.5})
    test = train[train["_test"]]
    ref = X.ensemble_contributions(model, X.model_inputs(model, test, np.ones(len(test), bool))).mean_abs()
    assert set(ref.index[:2]) == {"A", "B"}, ref

    a2 = spikes(n)
    b2 = np.where(a2 == 0, rng.choice([-1.0, 1.0], size=n), 0.0)  # P(B=0)=1/2, P(B=+-1)=1/4 each: as before
    day = frame(a2, b2, rng.uniform(-1, 1, n), "2024-03-01")
    drift = detect_drift(train, day, DriftConfig(rule="ks_or_psi"), ["A", "B", "C"], [])
    assert drift.drifted_features == [], drift.to_frame()[["feature", "ks_statistic", "psi"]]
    cur = X.ensemble_contributions(model, X.model_inputs(model, day, np.ones(len(day), bool))).mean_abs()
    cmp = X.compare_rankings(cur, ref, top=1)
    assert cur.index[0] == "C" and cmp["entered_top"] == ["C"], cur
    assert cmp["rank_correlation"] is not None and cmp["rank_correlation"] < 0.6


def test_permutation_importance_of_the_whole_ensemble_sees_the_feature_step(store_panel):
    """Shuffling the target's history (read only by the lag features the feature step builds) costs
    accuracy; a column the model ignores costs nothing."""
    raw = store_panel.assign(noise=np.random.default_rng(3).normal(size=len(store_panel)))
    b = _store_builder()
    b.numeric = [*b.numeric, "noise"]
    model, raw = _fit(raw, b, "regression", "log1p")
    sub, sel = X.scoring_frame(model, raw, "date", raw["_test"].to_numpy())
    y = sub.loc[sel, "sales"].to_numpy("float64")
    perm = X.permutation_importance(lambda f: model.predict_frame(f, rows=sel), sub, sel, y, ["customers", "promo", "noise"],
                                    lambda yt, yp: M.rmspe(yt, yp), greater_is_better=False, repeats=2, seed=0,
                                    target_column="sales").set_index("column")
    assert perm.loc[f"sales ({X.TARGET_HISTORY})", "importance"] > 0.005
    assert perm.loc["customers", "importance"] > perm.loc["noise", "importance"]
    assert abs(perm.loc["noise", "importance"]) < perm.loc["customers", "importance"] / 5
    assert list(perm["rank"]) == list(range(1, len(perm) + 1))


def test_a_missing_column_is_named():
    b = _events_builder()
    model, raw = _fit(events_frame(), b, "regression", "none")
    with pytest.raises(X.ExplainInputError, match=r"\['amount'\].*missing"):
        X.model_inputs(model, raw.drop(columns=["amount"]), raw["_test"].to_numpy())


def test_sample_rows_is_seeded_and_bounded():
    mask = np.zeros(1000, bool)
    mask[100:900] = True
    a, b = X.sample_rows(mask, 50, 7), X.sample_rows(mask, 50, 7)
    assert a.sum() == 50 and np.array_equal(a, b) and not a[:100].any()
    assert X.sample_rows(mask, 5000, 7) is not None and X.sample_rows(mask, 5000, 7).sum() == 800
