"""``/api/v1/status`` and ``/api/v1/nodes``: the cluster as ``status --json`` shows it, and
every node with its status, type, addresses, readiness, cost, why it is where it is (its
last move's reason, and its history) and what the workload last reported for it."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from steadyscale.api.context import ApiContext, context, reader
from steadyscale.api.demand import REFUSALS
from steadyscale.api.models import NodesAnswer
from steadyscale.api.tokens import Caller
from steadyscale.core.lifecycle import Status
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
    finished_within: Annotated[
        float | None,
        Query(
            gt=0,
            description="with `finished=true`: of the finished nodes, only those active "
            "(launched, seen, or asked to terminate) within this many seconds of the "
            "autoscaler's clock; the web page asks for the last hour",
        ),
    ] = None,
) -> Response:
    """Every live node (and the finished ones with `finished=true`)."""
    ctx = context(request)
    after = None if finished_within is None else ctx.clock.now() - finished_within
    selected = api_records.NodeSelection(finished=finished, finished_after=after)
    records = api_records.node_rows(ctx.reads.store, selected)
    moves = (
        api_records.histories(ctx.reads.store, selected)
        if history
        else api_records.last_moves(ctx.reads.store, selected)
    )
    usage = usage_by_node(ctx)
    # Plain JSON, the shape of NodesAnswer: no model per node and history entry (a
    # thousand nodes), the values straight from the ledger's own records.
    nodes = [node_out(r, moves.get(r["node_id"], []), usage.get(r["node_id"])) for r in records]
    return Response(json.dumps({"nodes": nodes}), media_type="application/json")


def usage_by_node(ctx: ApiContext) -> dict[str, dict[str, Any]]:
    """The workload's live usage reports by node id (none before any report), as UsageOut."""
    return {
        node_id: {
            "busy": state.busy,
            "bundles": [dict(b) for b in state.bundles],
            "reported_at": state.reported_at,
            "expires_at": state.expires_at,
            "idle_since": state.idle_since,
            "reporter": state.reporter,
        }
        for node_id, state in ctx.reads.usage(ctx.clock.now()).items()
    }


def node_out(
    row: dict[str, Any], moves: list[tuple[str, float, str]], usage: dict[str, Any] | None
) -> dict[str, Any]:
    """One node (``api_records.node_rows``) as NodeOut."""
    return {
        **row,
        "ready": row["status"] == Status.READY.value,
        "reason": moves[-1][2] if moves else None,
        "history": [{"status": s, "at": at, "reason": why} for s, at, why in moves],
        "usage": usage,
    }
