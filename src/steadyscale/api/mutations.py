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
    atomic: bool = True,
) -> JSONResponse:
    """Run ``apply`` (which raises HTTPException to refuse) as one audited change.
    ``atomic``: ``apply`` runs inside the transaction of the audit line and the kept
    answer; else (a store call with a transaction of its own, whose repeat changes nothing
    more) just before it."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not 0 < len(key) <= MAX_KEY_LENGTH:
        raise HTTPException(400, f"{IDEMPOTENCY_HEADER} takes 1 to {MAX_KEY_LENGTH} characters")
    detail = body.model_dump(mode="json") if body is not None else None
    change = _Change(
        ctx,
        caller,
        key=key,
        digest=_request_hash(request, detail),
        action=action,
        target=target,
        detail=detail,
    )
    try:
        if not atomic:
            kept = change.kept()
            if kept is not None:
                return kept
            answer = apply().model_dump(mode="json")
            with ctx.ledger.transaction():
                return change.record(answer)
        with ctx.ledger.transaction():
            return change.kept() or change.record(apply().model_dump(mode="json"))
    except StoreError as exc:
        raise HTTPException(503, f"the ledger refused the change: {exc}") from None


class _Change:
    """One change's bookkeeping: its idempotency key's kept answer, its audit line."""

    def __init__(
        self,
        ctx: ApiContext,
        caller: Caller,
        *,
        key: str | None,
        digest: str,
        action: str,
        target: str,
        detail: Any,
    ) -> None:
        self.db = ctx.ledger.store
        self.now = ctx.clock.now()
        self.caller, self.key, self.digest = caller, key, digest
        self.action, self.target, self.detail = action, target, detail

    def kept(self) -> JSONResponse | None:
        """The first answer to this key and request; 409 for this key with another one."""
        if self.key is None:
            return None
        kept = api_records.kept_answer(self.db, self.caller.who, self.key)
        if kept is None:
            return None
        if kept.request_hash != self.digest:
            raise HTTPException(
                409,
                f"{IDEMPOTENCY_HEADER} {self.key!r} was used for another request; "
                "use a new key for a new request",
            )
        return JSONResponse(kept.answer, kept.status, headers={"Idempotent-Replayed": "true"})

    def record(self, answer: Any) -> JSONResponse:
        api_records.audit(
            self.db,
            who=self.caller.who,
            action=self.action,
            target=self.target,
            detail=self.detail,
            at=self.now,
        )
        if self.key is not None:
            api_records.keep_answer(
                self.db,
                who=self.caller.who,
                key=self.key,
                request_hash=self.digest,
                status=200,
                answer=answer,
                at=self.now,
            )
        return JSONResponse(answer, 200)


def _request_hash(request: Request, detail: Any) -> str:
    text = json.dumps([request.method, request.url.path, detail], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
