"""The one line between "the user must fix something" and "try again".

Errors raised because of the user's config, schema or data derive from :class:`UserInputError`:
retrying cannot fix them, so the Airflow operators turn them into a non-retryable failure
(``AirflowFailException``) and the user reads the reason at the first attempt instead of after
three tries with minute-long backoff. Transient IO and database errors (``StorageError``,
connection errors) keep Airflow's retries. This module imports nothing of ours.
"""

from __future__ import annotations


class UserInputError(ValueError):
    """A config, schema or data problem: deterministic, so never retried."""
