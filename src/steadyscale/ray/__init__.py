"""steadyscale for Ray: ``steadyscale.ray.EC2NodeProvider`` is a node provider for Ray's
autoscaler (``provider: {type: external, module: steadyscale.ray.EC2NodeProvider}``).
Needs the ``ray`` extra; nothing outside this package (and ``testing.ray_harness``) imports
Ray."""

from steadyscale.ray.node_provider import EC2NodeProvider

__all__ = ["EC2NodeProvider"]
