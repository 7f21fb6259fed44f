"""``/api/v1/status`` and ``/api/v1/nodes``: the cluster as ``status --json`` shows it, and
every node with its status, type, addresses, readiness, cost, why it is where it is (its
last move's reason, and its history) and what the workload last reported for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from steadyscale.api.context import ApiContext, context, reader
from steadyscale.api.demand import REFUSALS
from steadyscale.api.models import HistoryEntryOut, NodeOut, NodesAnswer, UsageOut
from steadyscale.api.tokens import Caller
from steadyscale.core.lifecycle import NodeRecord, Status
from steadyscale.ops.status import ledger_status
from steadyscale.ops.status_report import StatusReport

router = APIRouter(prefix="/api/v1", tags=["cluster"])


@router.get("/status", response_model=StatusReport, responses=REFUSALS)
def get_status(request: Request, caller: Annotated[Caller, Depends(reader)]) -> StatusReport:
    """What `steadyscale status --json` prints."""
    ctx = context(request)
    return ledger_status(ctx.config, ctx.ledger, ctx.clock.now())


@router.get("/nodes", response_model=NodesAnswer, responses=REFUSALS)
def get_nodes(
    request: Request,
    caller: Annotated[Caller, Depends(reader)],
    finished: Annotated[
        bool, Query(description="also the nodes that finished (terminated, failed, ...)")
    ] = False,
) -> NodesAnswer:
    """Every live node (and the finished ones with `finished=true`)."""
    ctx = context(request)
    records = ctx.ledger.nodes(include_terminal=finished, with_history=True)
    usage = usage_by_node(ctx)
    return NodesAnswer(nodes=[node_out(r, usage.get(r.node_id)) for r in records])


def usage_by_node(ctx: ApiContext) -> Mapping[str, UsageOut]:
    """The workload's live usage reports by node id (none before any report)."""
    return {
        node_id: UsageOut(
            busy=state.busy,
            bundles=[dict(b) for b in state.bundles],
            reported_at=state.reported_at,
            expires_at=state.expires_at,
            idle_since=state.idle_since,
            reporter=state.reporter,
        )
        for node_id, state in ctx.ledger.usage(ctx.clock.now()).items()
    }


def node_out(record: NodeRecord, usage: UsageOut | None) -> NodeOut:
    last = record.history[-1] if record.history else None
    return NodeOut(
        node_id=record.node_id,
        instance_id=record.instance_id,
        node_type=record.node_type,
        status=record.status.value,
        instance_type=record.instance_type,
        availability_zone=record.availability_zone,
        private_ip=record.private_ip,
        ready=record.status is Status.READY,
        hourly_price=None,
        reason=last.reason if last is not None else None,
        history=[
            HistoryEntryOut(status=h.status.value, at=h.at, reason=h.reason) for h in record.history
        ],
        usage=usage,
    )
