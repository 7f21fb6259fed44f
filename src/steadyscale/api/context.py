"""What every endpoint shares (``ApiContext``: the config, the daemon's ledger and clock,
the tokens, the limits, the event ring) and who may do what: a bearer token names the
caller; a mutation needs a read-write token and a process that may write the ledger (a
follower replica refuses with 503 and names the leader); each caller has a rate limit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import HTTPException, Request

from steadyscale.api.events import EventHub, Samples
from steadyscale.api.tokens import ANONYMOUS, WRITE_ENV, Caller, RateLimits, Tokens
from steadyscale.config import ClusterConfig
from steadyscale.retries.clock import Clock
from steadyscale.store.ledger import Ledger


def always_writable() -> str | None:
    return None


@dataclass
class ApiContext:
    config: ClusterConfig
    ledger: Ledger
    clock: Clock
    tokens: Tokens
    limits: RateLimits
    max_body_bytes: int = 1_048_576
    hub: EventHub = field(default_factory=EventHub)
    samples: Samples = field(default_factory=Samples)
    # None while this process may write the ledger; else who leads, for the 503's message.
    leader: Callable[[], str | None] = always_writable
    # Reads go through their own connection when given (``ledger`` writes): a long read
    # never holds the daemon's connection while it ticks.
    reader_ledger: Ledger | None = None

    @property
    def reads(self) -> Ledger:
        return self.reader_ledger or self.ledger


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def reader(request: Request) -> Caller:
    """The caller, if it may read (any known token; anyone when no token is set)."""
    ctx = context(request)
    caller = _authenticate(ctx, request)
    key = caller.who if caller is not ANONYMOUS else f"anonymous@{_host(request)}"
    wait = ctx.limits.retry_after(key, ctx.clock.now())
    if wait > 0:
        seconds = max(1, int(wait + 0.999))
        raise HTTPException(
            429,
            f"rate limit of {ctx.limits.per_second:g} requests/s per token passed; "
            f"retry after {seconds}s",
            headers={"Retry-After": str(seconds)},
        )
    return caller


def writer(request: Request) -> Caller:
    """The caller, if it may change things: a read-write token, on a process that writes."""
    caller = reader(request)
    ctx = context(request)
    if not caller.write:
        if not ctx.tokens.writers:
            raise HTTPException(
                403,
                "this daemon has no read-write token, so it takes no changes: set "
                f"api.tokens_file or {WRITE_ENV} and restart it",
            )
        raise HTTPException(
            403, f"{caller.who} is a read-only token; changes need a read-write one"
        )
    leader = ctx.leader()
    if leader is not None:
        raise HTTPException(
            503, f"this replica follows and takes no changes; send them to the leader: {leader}"
        )
    return caller


def _authenticate(ctx: ApiContext, request: Request) -> Caller:
    header = request.headers.get("authorization")
    if header is None:
        if ctx.tokens.required:
            raise HTTPException(
                401,
                "this API needs a token: send the header Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return ANONYMOUS
    scheme, _, secret = header.partition(" ")
    caller = ctx.tokens.identify(secret.strip()) if scheme.lower() == "bearer" else None
    if caller is None:
        raise HTTPException(
            401,
            "unknown token (the header is Authorization: Bearer <token>, a token of "
            "api.tokens_file, api.read_tokens_file or the daemon's environment)",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return caller


def _host(request: Request) -> str:
    return request.client.host if request.client is not None else "?"
