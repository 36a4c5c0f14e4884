"""Production watch: drift, predictions, live performance, alerts and reports."""
