"""The domain, pure: a node's lifecycle, resource bundles, what EC2 shows of an instance,
and the decisions (scheduler, reconciler). No I/O, no clock; imports nothing of ours but
``errors``."""
