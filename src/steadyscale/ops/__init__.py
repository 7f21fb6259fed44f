"""Operating a running autoscaler: node health probes (``health``), Prometheus metrics and
``/healthz`` (``metrics``, on ``serving``'s HTTP thread, which the emulator shares), logs,
``status`` (and its ``--json`` model), what a config change does in words (``changes``),
and the IAM policy (``iam``)."""
