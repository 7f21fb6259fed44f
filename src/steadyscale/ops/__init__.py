"""Operating a running autoscaler: node health probes, metrics, logs, status, IAM policy."""
