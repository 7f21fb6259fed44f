"""What every room of the Ray provider shares: the cloud it calls, the book of nodes, the
state file, the clock, the settings from Ray's YAML, how an unanswered call is told, and
whether a new state file adopted a live cluster."""

from __future__ import annotations

from dataclasses import dataclass

from steadyscale.providers.protocol import CloudProvider
from steadyscale.ray.adoption import Adoption
from steadyscale.ray.book import NodeBook
from steadyscale.ray.journal import StateFile
from steadyscale.ray.settings import RayProviderSettings
from steadyscale.ray.unanswered import Reasons
from steadyscale.retries.clock import Clock


@dataclass(frozen=True)
class Shared:
    cloud: CloudProvider
    book: NodeBook
    state: StateFile
    clock: Clock
    settings: RayProviderSettings
    cluster_name: str
    reasons: Reasons
    adoption: Adoption
