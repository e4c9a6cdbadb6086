"""The MLOps cycle: tracking and registry (MLflow), evaluation with gates, fine-tuning, serving the
champion, re-indexing, drift monitoring, schedules and the loop that ties them together."""
