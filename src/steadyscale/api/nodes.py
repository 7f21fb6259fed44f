"""``/api/v1/status`` and ``/api/v1/nodes``: the cluster as ``status --json`` shows it, and
every node with its status, type, addresses, readiness, cost, why it is where it is (its
last move's reason, and its history) and what the workload last reported for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from steadyscale.api.context import ApiContext, context, reader
from steadyscale.api.demand import REFUSALS
from steadyscale.api.models import HistoryEntryOut, NodeOut, NodesAnswer, UsageOut
from steadyscale.api.tokens import Caller
from steadyscale.core.lifecycle import NodeRecord, Status
from steadyscale.ops.status import ledger_status
from steadyscale.ops.status_report import StatusReport
from steadyscale.store import api_records

router = APIRouter(prefix="/api/v1", tags=["cluster"])


@router.get("/status", response_model=StatusReport, responses=REFUSALS)
def get_status(request: Request, caller: Annotated[Caller, Depends(reader)]) -> StatusReport:
    """What `steadyscale status --json` prints."""
    ctx = context(request)
    return ledger_status(ctx.config, ctx.reads, ctx.clock.now())


@router.get("/nodes", response_model=NodesAnswer, responses=REFUSALS)
def get_nodes(
    request: Request,
    caller: Annotated[Caller, Depends(reader)],
    finished: Annotated[
        bool, Query(description="also the nodes that finished (terminated, failed, ...)")
    ] = False,
    history: Annotated[
        bool, Query(description="each node's every move (false: only the last one's reason)")
    ] = True,
) -> Response:
    """Every live node (and the finished ones with `finished=true`)."""
    ctx = context(request)
    records = ctx.reads.nodes(include_terminal=finished)
    moves = (
        api_records.histories(ctx.reads.store, include_terminal=finished)
        if history
        else api_records.last_moves(ctx.reads.store, include_terminal=finished)
    )
    usage = usage_by_node(ctx)
    # Built without a second validation (a thousand nodes, each with its history): the
    # values come from the ledger's own records.
    answer = NodesAnswer.model_construct(
        nodes=[node_out(r, moves.get(r.node_id, []), usage.get(r.node_id)) for r in records]
    )
    return Response(answer.model_dump_json(), media_type="application/json")


def usage_by_node(ctx: ApiContext) -> Mapping[str, UsageOut]:
    """The workload's live usage reports by node id (none before any report)."""
    return {
        node_id: UsageOut.model_construct(
            busy=state.busy,
            bundles=[dict(b) for b in state.bundles],
            reported_at=state.reported_at,
            expires_at=state.expires_at,
            idle_since=state.idle_since,
            reporter=state.reporter,
        )
        for node_id, state in ctx.reads.usage(ctx.clock.now()).items()
    }


def node_out(
    record: NodeRecord, moves: list[tuple[str, float, str]], usage: UsageOut | None
) -> NodeOut:
    return NodeOut.model_construct(
        node_id=record.node_id,
        instance_id=record.instance_id,
        node_type=record.node_type,
        status=record.status.value,
        instance_type=record.instance_type,
        availability_zone=record.availability_zone,
        private_ip=record.private_ip,
        ready=record.status is Status.READY,
        hourly_price=None,
        reason=moves[-1][2] if moves else None,
        history=[
            HistoryEntryOut.model_construct(status=s, at=at, reason=why) for s, at, why in moves
        ],
        usage=usage,
    )
