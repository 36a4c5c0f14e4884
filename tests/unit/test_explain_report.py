"""What people read: the approval form's explanation lines and the HTML pages, from a summary."""

from __future__ import annotations

from types import SimpleNamespace

from modelops.monitoring import explain_report as R

SUMMARY = {
    "space": "log1p(target)", "rows": 1200, "test_window": ["2025-05-01", "2025-06-01"], "metric": "rmspe",
    "additivity_error": 1e-7, "permutation_repeats": 3,
    "importance": [{"feature": "target_lag_7", "column": "sales (target history)", "mean_abs_shap": 0.31, "share": 0.4, "rank": 1},
                   {"feature": "customers", "column": "customers", "mean_abs_shap": 0.22, "share": 0.3, "rank": 2},
                   {"feature": "promo", "column": "promo", "mean_abs_shap": 0.1, "share": 0.1, "rank": 3}],
    "permutation": [{"column": "customers", "importance": 0.051, "std": 0.002, "rank": 1},
                    {"column": "sales (target history)", "importance": 0.032, "std": 0.001, "rank": 2}],
    "vs_production": {"version": "3", "rank_correlation": 0.5, "top": 2, "top_overlap": 0.5, "entered_top": ["customers"],
                      "left_top": ["promo"],
                      "features": [{"feature": "target_lag_7", "reference_rank": 1, "current_rank": 1, "rank_change": 0},
                                   {"feature": "customers", "reference_rank": 4, "current_rank": 2, "rank_change": 2},
                                   {"feature": "promo", "reference_rank": 2, "current_rank": 3, "rank_change": -1}]},
}


def test_the_approval_form_says_what_drives_the_candidate_and_what_changed_vs_production():
    from modelops_airflow.approval import _body

    cfg = SimpleNamespace(model_name="sales", evaluation=SimpleNamespace(metric="rmspe", threshold=0.1), greater_is_better=False)
    mv = SimpleNamespace(run_id="abc", tags={"modelops.training_window": "[2024-06-01, 2025-06-01)"})
    evaluation = {"candidate": {"rmspe": 0.05, "mape": 0.04}, "production": {"rmspe": 0.06, "mape": 0.05},
                  "production_version": "3", "test_window": ["2025-05-01", "2025-06-01"], "explanation": SUMMARY}
    body = _body(cfg, "4", mv, evaluation, {"passed": True}, ["reviewer"])
    assert "**What drives v4's predictions** (mean |SHAP| on 1,200 test-window rows, log1p(target)" in body
    assert "| rank | feature | mean abs SHAP | production v3 rank | move |" in body
    assert "| 1 | target_lag_7 | 0.31 | 1 | = |" in body and "| 2 | customers | 0.22 | 4 | ▲2 |" in body
    assert "| 3 | promo | 0.1 | 2 | ▼1 |" in body
    assert "Permutation importance: customers +0.051, sales (target history) +0.032." in body
    assert "vs production v3: rank correlation 0.50; new in the top 2: customers; left the top 2: promo." in body
    # no explanation (explain.enabled false, or an older evaluate result): the form is as before
    plain = _body(cfg, "4", mv, {**evaluation, "explanation": None}, {"passed": True}, ["reviewer"])
    assert "What drives" not in plain and plain in body


def test_pages_render_with_the_numbers():
    page = R.version_page("sales: why", SUMMARY, "importance.png", 10, "note")
    assert "1,200 rows of the test window" in page and "rank correlation <b>0.500</b>" in page and "▲2" in page
    png = R.plot_importance({**SUMMARY, "production": {"version": "3", "importance": SUMMARY["importance"]}}, 10)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    result = {"attribution_drift": True, "rank_correlation": 0.2, "min_rank_correlation": 0.6, "top": 2, "top_overlap": 0.5,
              "rows": 40, "model_version": "3", "features": [
                  {"feature": "customers", "reference_rank": 5, "current_rank": 1, "rank_change": 4, "reference": 0.1, "current": 0.4},
                  {"feature": "promo", "reference_rank": 1, "current_rank": 2, "rank_change": -1, "reference": 0.5, "current": 0.2}]}
    page = R.attribution_page("drift", result, "attribution.png", 10)
    assert "ATTRIBUTION DRIFT" in page and '<tr class="drift"><td class=l>customers</td><td>5</td><td>1</td><td>▲4</td>' in page
    assert R.plot_attribution(result["features"], 0.2, 10)[:4] == b"\x89PNG"
