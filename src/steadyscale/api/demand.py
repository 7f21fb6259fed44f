"""``/api/v1/demand``: read the demand, replace it, or change one named entry of it (a
workload owns its entry, so two workloads never overwrite each other; the demand the
autoscaler works toward is the sum of the entries)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse

from steadyscale.api.context import context, reader, writer
from steadyscale.api.models import ENTRY_NAME, DemandAnswer, DemandBody, Problem
from steadyscale.api.mutations import mutate
from steadyscale.api.tokens import Caller
from steadyscale.config import ClusterConfig
from steadyscale.core.feasibility import why_infeasible
from steadyscale.core.resources import DemandItem, format_bundle
from steadyscale.ops.status_report import DemandEntry
from steadyscale.store import demand_entries
from steadyscale.store.ledger import Ledger

router = APIRouter(prefix="/api/v1", tags=["demand"])
REFUSALS: dict[int | str, dict[str, object]] = {
    code: {"model": Problem} for code in (400, 401, 403, 409, 413, 422, 429, 503)
}
EntryName = Annotated[str, Path(pattern=ENTRY_NAME, description="the entry's name")]


def demand_answer(ledger: Ledger) -> DemandAnswer:
    entries = demand_entries.read_entries(ledger.store)
    total = ledger.demand()
    return DemandAnswer(
        demand=[DemandEntry(bundle=i.bundle, count=i.count) for i in total],
        entries={
            name: [DemandEntry(bundle=i.bundle, count=i.count) for i in items]
            for name, items in entries.items()
        },
        pending_demand=sum(i.count for i in total),
        updated_at=ledger.demand_updated_at(),
    )


@router.get("/demand", response_model=DemandAnswer, responses=REFUSALS)
def get_demand(request: Request, caller: Annotated[Caller, Depends(reader)]) -> DemandAnswer:
    """The demand, and each named entry it sums."""
    return demand_answer(context(request).reads)


@router.put("/demand", response_model=DemandAnswer, responses=REFUSALS)
def put_demand(
    request: Request, body: DemandBody, caller: Annotated[Caller, Depends(writer)]
) -> JSONResponse:
    """Replace the whole demand: every entry goes, `default` holds `demand` (as
    `steadyscale request` does)."""
    ctx = context(request)
    _check_fits(ctx.config, body.demand)

    def apply() -> DemandAnswer:
        demand_entries.replace_demand(ctx.ledger.store, body.demand, ctx.clock.now())
        return demand_answer(ctx.ledger)

    return mutate(
        ctx, request, caller, action="demand.replace", target="demand", body=body, apply=apply
    )


@router.put("/demand/entries/{name}", response_model=DemandAnswer, responses=REFUSALS)
def put_entry(
    request: Request,
    name: EntryName,
    body: DemandBody,
    caller: Annotated[Caller, Depends(writer)],
) -> JSONResponse:
    """Set one named entry (created if new; `[]` removes it); the others stay."""
    ctx = context(request)
    _check_fits(ctx.config, body.demand)

    def apply() -> DemandAnswer:
        demand_entries.set_entry(ctx.ledger.store, name, body.demand, ctx.clock.now())
        return demand_answer(ctx.ledger)

    return mutate(
        ctx,
        request,
        caller,
        action="demand.entry.set",
        target=f"demand/{name}",
        body=body,
        apply=apply,
    )


@router.delete(
    "/demand/entries/{name}",
    response_model=DemandAnswer,
    responses={**REFUSALS, 404: {"model": Problem}},
)
def delete_entry(
    request: Request, name: EntryName, caller: Annotated[Caller, Depends(writer)]
) -> JSONResponse:
    """Remove one named entry; 404 if there is none."""
    ctx = context(request)

    def apply() -> DemandAnswer:
        if not demand_entries.delete_entry(ctx.ledger.store, name, ctx.clock.now()):
            known = ", ".join(demand_entries.read_entries(ctx.ledger.store)) or "none"
            raise HTTPException(404, f"no demand entry {name!r} (entries: {known})")
        return demand_answer(ctx.ledger)

    return mutate(
        ctx,
        request,
        caller,
        action="demand.entry.delete",
        target=f"demand/{name}",
        body=None,
        apply=apply,
    )


def _check_fits(config: ClusterConfig, items: list[DemandItem]) -> None:
    """Refuse a bundle no node type fits, with the reason ``request`` and ``status`` give."""
    types = config.available_node_types
    for item in items:
        infeasible = why_infeasible(item.bundle, types)
        if infeasible is not None:
            raise HTTPException(
                422, f"no node type can fit bundle {format_bundle(item.bundle)}: {infeasible[2]}"
            )
