"""The e2e tier reuses the real-service fixtures of the integration tier."""

from tests.integration.conftest import mlflow_server, real_stack, s3_server  # noqa: F401
