"""Every change through the API, made one way: in one ledger transaction, the change, its
line in the audit log and, under an ``Idempotency-Key``, the answer kept for a repeat (the
same key and request get the first answer and change nothing; the same key with another
request is refused with 409)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from steadyscale.api.context import ApiContext
from steadyscale.api.tokens import Caller
from steadyscale.store import api_records
from steadyscale.store.errors import StoreError

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200


def mutate(
    ctx: ApiContext,
    request: Request,
    caller: Caller,
    *,
    action: str,
    target: str,
    body: BaseModel | None,
    apply: Callable[[], BaseModel],
) -> JSONResponse:
    """Run ``apply`` (which raises HTTPException to refuse) as one audited change."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not 0 < len(key) <= MAX_KEY_LENGTH:
        raise HTTPException(400, f"{IDEMPOTENCY_HEADER} takes 1 to {MAX_KEY_LENGTH} characters")
    detail = body.model_dump(mode="json") if body is not None else None
    digest = _request_hash(request, detail)
    db = ctx.ledger.store
    now = ctx.clock.now()
    try:
        with ctx.ledger.transaction():
            if key is not None:
                kept = api_records.kept_answer(db, caller.who, key)
                if kept is not None:
                    if kept.request_hash != digest:
                        raise HTTPException(
                            409,
                            f"{IDEMPOTENCY_HEADER} {key!r} was used for another request; "
                            "use a new key for a new request",
                        )
                    return JSONResponse(kept.answer, kept.status, headers=_replayed())
            answer = apply().model_dump(mode="json")
            api_records.audit(
                db, who=caller.who, action=action, target=target, detail=detail, at=now
            )
            if key is not None:
                api_records.keep_answer(
                    db,
                    who=caller.who,
                    key=key,
                    request_hash=digest,
                    status=200,
                    answer=answer,
                    at=now,
                )
    except StoreError as exc:
        raise HTTPException(503, f"the ledger refused the change: {exc}") from None
    return JSONResponse(answer, 200)


def _request_hash(request: Request, detail: Any) -> str:
    text = json.dumps([request.method, request.url.path, detail], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _replayed() -> dict[str, str]:
    return {"Idempotent-Replayed": "true"}
