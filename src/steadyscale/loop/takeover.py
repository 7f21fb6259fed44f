"""A ledger facing a cluster it cannot explain (F12: the ledger's disk is gone, the daemon
moved host, ``ledger:`` points elsewhere, two configs share a cluster name).

Before the first tick, ``unknown_at_start`` lists what an empty ledger would face: the
daemon refuses to act on it unless told to terminate it (``terminate_unknown``). ``adopt``
takes every live cluster instance the ledger does not track over, as a node from its
tags and what EC2 shows, and tags it with this ledger's id. Only through the provider
protocol: it works alike on EC2, the emulator and the memory backend.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from steadyscale.core.instances import TAG_LEDGER, TAG_REQUEST, CloudInstance
from steadyscale.core.lifecycle import NodeRecord
from steadyscale.core.sightings import GONE_STATES
from steadyscale.core.unknown import Refused, adopted_record
from steadyscale.errors import CloudError
from steadyscale.loop.launcher import new_id
from steadyscale.providers.protocol import CloudProvider
from steadyscale.store.ledger import UNKNOWN_INSTANCES, Ledger

log = logging.getLogger("steadyscale.takeover")


def live_unknown(provider: CloudProvider, ledger: Ledger) -> list[CloudInstance]:
    """Live cluster instances (not shutting down or terminated) the ledger cannot explain:
    no node of it has the id, it carries another ledger's id or none, and its request-id
    tag names no request of this ledger (an open one's lost answer is adopted by the
    loop). One complete listing; a failed one raises ``CloudError``."""
    ours = ledger.ledger_id
    known = ledger.known_instance_ids()
    requests = {r.request_id for r in ledger.requests()}
    return [
        inst
        for inst in provider.list_cluster()
        if inst.state not in GONE_STATES
        and inst.instance_id not in known
        and (ours is None or inst.ledger_id != ours)
        and inst.tags.get(TAG_REQUEST) not in requests
    ]


def unknown_at_start(provider: CloudProvider, ledger: Ledger) -> list[CloudInstance]:
    """What an empty ledger would face (its first start, or a lost ledger's successor);
    nothing is listed for a ledger with records (the loop reports its unknown ones)."""
    return live_unknown(provider, ledger) if ledger.is_empty() else []


def terminate_unknown(provider: CloudProvider, instances: Sequence[CloudInstance]) -> None:
    """Terminate what the user asked to (``run --terminate-unknown``), saying what."""
    ids = [inst.instance_id for inst in instances]
    log.warning(
        "terminating %d cluster instance(s) the ledger cannot explain, as "
        "--terminate-unknown asks: %s",
        len(ids),
        ", ".join(ids),
    )
    provider.terminate(ids)


@dataclass
class Adoption:
    """What ``adopt`` did."""

    adopted: list[NodeRecord] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    untagged: list[str] = field(default_factory=list)  # ids EC2 did not tag (yet)
    tag_error: str | None = None  # why CreateTags failed, when it did
    retagged: int = 0  # tracked instances tagged with the ledger's id only now

    def by_type(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.adopted:
            counts[record.node_type] = counts.get(record.node_type, 0) + 1
        return dict(sorted(counts.items()))


def adopt(
    provider: CloudProvider,
    ledger: Ledger,
    now: float,
    *,
    new_ids: Callable[[str], str] = new_id,
) -> Adoption:
    """Take over every live cluster instance the ledger does not track (in one
    transaction), then tag them, and any tracked one still without it, with the ledger's
    id. An instance EC2 does not tag yet is tagged by the next ``adopt``."""
    ledger_id = ledger.ledger_id
    known = ledger.known_instance_ids()
    # An open request's instance whose answer was lost is the loop's to adopt: its node
    # waits for it.
    waiting = {r.request_id for r in ledger.requests(open_only=True)}
    listed = [i for i in provider.list_cluster() if i.state != "terminated"]
    done = Adoption()
    for inst in listed:
        if inst.instance_id in known or inst.tags.get(TAG_REQUEST) in waiting:
            continue
        taken = adopted_record(inst, new_ids("n"), now)
        if isinstance(taken, Refused):
            done.refused.append(taken)
        else:
            done.adopted.append(taken)
    with ledger.transaction():
        ledger.save_nodes(done.adopted, [(r.node_id, r.history[-1]) for r in done.adopted])
        ledger.set_meta(UNKNOWN_INSTANCES, "[]")  # what the daemon listed is tracked now
    tracked = known | {r.instance_id for r in done.adopted if r.instance_id}
    to_tag = [
        i.instance_id
        for i in listed
        if i.instance_id in tracked and i.ledger_id != ledger_id and i.state not in GONE_STATES
    ]
    if to_tag and ledger_id is not None:
        try:
            done.untagged = provider.create_tags(to_tag, {TAG_LEDGER: ledger_id})
        except CloudError as exc:  # not fatal: they are tracked, and tagged next time
            done.untagged, done.tag_error = to_tag, str(exc)
        done.retagged = len(set(to_tag) - set(done.untagged))
    return done
