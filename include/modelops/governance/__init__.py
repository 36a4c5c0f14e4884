"""Who may move what: the MLflow registry (aliases, tags), approvals, locks and the status view."""
