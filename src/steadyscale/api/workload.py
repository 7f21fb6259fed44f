"""What a workload tells the autoscaler through the API: per node usage reports with a
time to live (``POST /api/v1/usage``), a drain asked for a node, and the ack that it has
let a draining node go. The ledger keeps them (``store.workload``); the loop acts on them
at its next tick."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse

from steadyscale.api.context import ApiContext, context, writer
from steadyscale.api.demand import REFUSALS
from steadyscale.api.models import DrainAnswer, Problem, UsageAnswer, UsageBody
from steadyscale.api.mutations import mutate
from steadyscale.api.tokens import Caller
from steadyscale.store.workload import UnknownNodeError, UsageReport

router = APIRouter(prefix="/api/v1", tags=["workload"])
WITH_404: dict[int | str, dict[str, object]] = {**REFUSALS, 404: {"model": Problem}}
NodeName = Annotated[str, Path(min_length=1, max_length=200, description="node id or instance id")]


@router.post("/usage", response_model=UsageAnswer, responses=WITH_404)
def post_usage(
    request: Request, body: UsageBody, caller: Annotated[Caller, Depends(writer)]
) -> JSONResponse:
    """Report what runs on nodes, each report valid for its `ttl_seconds`: a node reported
    busy is never scaled down while the report holds (with `scale_down: reported`). All
    or none: a report naming no live node refuses the whole batch (404)."""
    ctx = context(request)
    reports = [
        UsageReport(
            node=r.node,
            busy=r.busy,
            bundles=tuple(r.bundles),
            ttl_seconds=r.ttl_seconds,
            reporter=caller.who,
        )
        for r in body.reports
    ]

    def apply() -> UsageAnswer:
        try:
            ctx.ledger.report_usage(reports, ctx.clock.now())
        except UnknownNodeError as exc:
            raise HTTPException(404, f"{exc}; nothing was recorded") from None
        return UsageAnswer(accepted=len(reports))

    return mutate(
        ctx,
        request,
        caller,
        action="usage.report",
        target="usage",
        body=body,
        apply=apply,
        atomic=False,
    )


@router.post("/nodes/{node}/drain", response_model=DrainAnswer, responses=WITH_404)
def post_drain(
    request: Request, node: NodeName, caller: Annotated[Caller, Depends(writer)]
) -> JSONResponse:
    """Ask that a running node be drained, then terminated: the loop marks it draining at
    its next tick, calls its node type's drain hook, and waits for the ack or the timeout."""
    ctx = context(request)

    def apply() -> DrainAnswer:
        try:
            node_id = ctx.ledger.ask_drain(node, caller.who, ctx.clock.now())
        except UnknownNodeError as exc:
            raise HTTPException(404, str(exc)) from None
        return DrainAnswer(
            node_id=node_id,
            status=_status(ctx, node_id),
            message="drain asked: the node drains from the next tick",
        )

    return mutate(
        ctx,
        request,
        caller,
        action="node.drain",
        target=f"nodes/{node}",
        body=None,
        apply=apply,
        atomic=False,
    )


@router.post("/nodes/{node}/drain/ack", response_model=DrainAnswer, responses=WITH_404)
def post_drain_ack(
    request: Request, node: NodeName, caller: Annotated[Caller, Depends(writer)]
) -> JSONResponse:
    """Say the workload has let a draining node go: it is terminated at the next tick.
    404 when the node is not draining."""
    ctx = context(request)

    def apply() -> DrainAnswer:
        if not ctx.ledger.ack_drain(node, caller.who, ctx.clock.now()):
            found = ctx.ledger.resolve_nodes([node]).get(node)
            now = "no live node by that id" if found is None else f"it is {found[1].value}"
            raise HTTPException(404, f"node {node} is not draining ({now}); nothing changed")
        node_id = ctx.ledger.resolve_nodes([node])[node][0]
        return DrainAnswer(
            node_id=node_id,
            status=_status(ctx, node_id),
            message="drain acknowledged: the node is terminated at the next tick",
        )

    return mutate(
        ctx,
        request,
        caller,
        action="node.drain.ack",
        target=f"nodes/{node}",
        body=None,
        apply=apply,
        atomic=False,
    )


def _status(ctx: ApiContext, node_id: str) -> str:
    found = ctx.ledger.resolve_nodes([node_id]).get(node_id)
    return found[1].value if found is not None else "unknown"
