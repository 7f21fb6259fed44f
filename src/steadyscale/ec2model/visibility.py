"""What a read of a region may show: each operation sees a fresh instance only from the
moment drawn for it, tag filters match only indexed tags, a read shortly after a change may
show the old state, and a listing may flicker. Reads draw from one seeded stream.
"""

from __future__ import annotations

import random

from steadyscale.ec2model.instances import InstanceState, TrackedInstance
from steadyscale.ec2model.settings import EmulatorSettings, Operation


class Visibility:
    """The eventually consistent view of one region's instances (shared with the region)."""

    def __init__(
        self,
        settings: EmulatorSettings,
        *,
        instances: dict[str, TrackedInstance],
        gone: dict[str, TrackedInstance],
        rng: random.Random,
    ) -> None:
        self.settings = settings
        self._instances = instances
        self._gone = gone
        self._rng = rng

    def is_visible(self, instance_id: str, operation: Operation, now: float) -> bool:
        """Whether ``operation`` sees the instance. Unknown ids (not ours) are always visible."""
        inst = self._instances.get(instance_id)
        if inst is None:
            return instance_id not in self._gone
        return now >= inst.visible_at[operation]

    def tags_indexed(self, instance_id: str, keys: list[str] | None, now: float) -> bool:
        """Whether tag filters on ``keys`` (None: any key) can match the instance yet."""
        inst = self._instances.get(instance_id)
        if inst is None:
            return True
        if keys is None:
            return all(now >= t for t in inst.tag_ready_at.values())
        return all(now >= inst.tag_ready_at.get(key, float("-inf")) for key in keys)

    def observed_state(self, instance_id: str, now: float) -> InstanceState | None:
        """The state a read shows: the true one, or shortly after a change maybe the old one."""
        inst = self._instances.get(instance_id)
        if inst is None:
            return None
        stale = self.settings.stale_reads
        if (
            inst.previous_state is not None
            and now < inst.stale_until
            and stale.probability > 0
            and self._rng.random() < stale.probability
        ):
            return inst.previous_state
        return inst.state

    def listed(self, now: float, *, tag_key: str, tag_value: str) -> list[TrackedInstance]:
        """What a listing filtered on one tag shows now: instances visible to listings,
        their tag indexed, and not dropped by a flicker. One pass, for big regions."""
        listing = Operation.LISTING
        flicker = self.settings.stale_reads.listing_flicker_probability
        draw = self._rng.random
        shown = []
        for inst in self._instances.values():
            if (
                inst.tags.get(tag_key) != tag_value
                or now < inst.visible_at[listing]
                or now < inst.tag_ready_at.get(tag_key, float("-inf"))
            ):
                continue
            if flicker > 0 and draw() < flicker:
                continue
            shown.append(inst)
        return shown

    def flickers(self, instance_id: str) -> bool:
        """Whether this listing drops an instance it could show (a flickering listing)."""
        chance = self.settings.stale_reads.listing_flicker_probability
        return chance > 0 and instance_id in self._instances and (self._rng.random() < chance)
