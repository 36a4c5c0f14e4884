"""The user's mistakes fail a task without retries; what a retry can fix keeps Airflow's retries.

Every ``ModelopsOperator`` subclass gets its ``execute`` wrapped: a ``UserInputError`` (config,
schema, data) becomes ``AirflowFailException``; an object-store or network error passes through
unchanged (Airflow retries it); an empty monitoring day follows ``monitoring.on_empty_day``.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest


def _operator(exc: BaseException, empty_day_rule: bool = False, on_empty_day: str = "fail"):
    from modelops_airflow.operators import ModelopsOperator

    class Failing(ModelopsOperator):
        def execute(self, context):
            self._cfg = SimpleNamespace(monitoring=SimpleNamespace(on_empty_day=on_empty_day))
            raise exc

    op = Failing(task_id=f"t_{abs(hash((type(exc).__name__, empty_day_rule, on_empty_day)))}")
    op.empty_day_rule = empty_day_rule
    return op


@pytest.mark.parametrize("make", [
    lambda: __import__("modelops.config", fromlist=["ConfigError"]).ConfigError("invalid config file x.yaml: ..."),
    lambda: __import__("modelops.data.storage", fromlist=["DataError"]).DataError("data path /x does not exist"),
    lambda: __import__("modelops.data.validation", fromlist=["DataValidationError"]).DataValidationError("data validation failed"),
    lambda: __import__("modelops.training.boosters", fromlist=["TrainingError"]).TrainingError("need at least 3 distinct days"),
])
def test_config_schema_and_data_errors_are_not_retried(make):
    from airflow.sdk.exceptions import AirflowFailException

    exc = make()
    with pytest.raises(AirflowFailException) as info:
        _operator(exc).execute({})
    assert str(exc) in str(info.value) and "not retried" in str(info.value) and info.value.__cause__ is exc


def test_transient_errors_keep_their_retries():
    from airflow.sdk.exceptions import AirflowFailException

    from modelops.data.storage import StorageError

    for exc in (StorageError("cannot write s3://b/x: EndpointConnectionError"), ConnectionError("reset by peer"), TimeoutError()):
        with pytest.raises(type(exc)) as info:
            _operator(exc).execute({})
        assert not isinstance(info.value, AirflowFailException)


def test_an_empty_monitoring_day_follows_one_rule():
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from modelops.data.validation import NoDataError

    empty = NoDataError("data validation failed: 0 rows for m [2025-06-12, 2025-06-13): no partitions in ...")
    with pytest.raises(AirflowFailException):
        _operator(empty, empty_day_rule=True).execute({})
    with pytest.raises(AirflowSkipException, match="monitoring.on_empty_day: skip.*no partitions in"):
        _operator(empty, empty_day_rule=True, on_empty_day="skip").execute({})
    with pytest.raises(AirflowFailException):  # training windows never skip
        _operator(empty, empty_day_rule=False, on_empty_day="skip").execute({})
