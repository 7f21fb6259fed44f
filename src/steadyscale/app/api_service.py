"""Assemble the HTTP API of ``steadyscale run``: its tokens (files and environment), the
refusal to listen beyond loopback without them, the app on the daemon's ledger and clock,
uvicorn in a thread, the feed of node state changes, and the daemon's hooks (each event
and tick of the loop) into its event ring and per-minute samples."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from steadyscale.api.app import create_app
from steadyscale.api.context import ApiContext
from steadyscale.api.feed import MovesFeed
from steadyscale.api.server import ApiServer
from steadyscale.api.tokens import READ_ENV, WRITE_ENV, RateLimits, Tokens, load_tokens
from steadyscale.app.cli.common import is_loopback
from steadyscale.app.cli.through_api import API_URL
from steadyscale.app.runtime import Runtime
from steadyscale.config import ApiConfig, DatabaseURL
from steadyscale.errors import SteadyscaleError
from steadyscale.loop.autoscaler import Autoscaler, Event, TickReport
from steadyscale.loop.leadership import Role
from steadyscale.store.ledger import Ledger


@dataclass
class ApiService:
    context: ApiContext
    server: ApiServer
    feed: MovesFeed

    @property
    def url(self) -> str:
        return self.server.url

    def on_event(self, event: Event) -> None:
        self.context.hub.publish(event.at, event.kind, event.message, {"count": event.count})

    def on_tick(self, autoscaler: Autoscaler, report: TickReport) -> None:
        self.context.samples.note(
            report.started_at, report.counts, report.demanded_bundles, report.unmet
        )

    def stop(self) -> None:
        self.server.stop()
        self.feed.stop()
        if self.context.reader_ledger is not None:
            self.context.reader_ledger.close()


def api_context(
    runtime: Runtime, api: ApiConfig, config_path: str, env: Mapping[str, str] | None = None
) -> ApiContext:
    """The API's context on the runtime, with the tokens of ``api`` and ``env``; refuses a
    listener beyond loopback with no token."""
    tokens = load_tokens(api, Path(config_path).parent, os.environ if env is None else env)
    refuse_open_listener(api.host, tokens)
    return ApiContext(
        config=runtime.config,
        ledger=runtime.ledger,
        clock=runtime.clock,
        tokens=tokens,
        limits=RateLimits(api.rate_limit_per_second, api.rate_limit_burst),
        max_body_bytes=api.max_body_bytes,
        leader=_leader(runtime),
        reader_ledger=_reader(runtime.ledger),
    )


def start_api(runtime: Runtime, api: ApiConfig, config_path: str) -> ApiService:
    context = api_context(runtime, api, config_path)
    server = ApiServer(create_app(context), api.host, api.port).start()
    feed = MovesFeed(context.reads, context.hub).start()
    if runtime.replication is None:  # (a replica writes the ledger only while it leads)
        runtime.ledger.set_meta(API_URL, server.url)
    return ApiService(context=context, server=server, feed=feed)


def check_api(api: ApiConfig, config_path: str) -> None:
    """The API's tokens can be read, and it listens beyond loopback only with some."""
    tokens = load_tokens(api, Path(config_path).parent, os.environ)
    refuse_open_listener(api.host, tokens)


def _reader(ledger: Ledger) -> Ledger | None:
    """A connection of the API's own for its reads (none for an in-memory ledger)."""
    return None if ledger.path == ":memory:" else Ledger(ledger.location, readonly=True)


def refuse_open_listener(host: str, tokens: Tokens) -> None:
    if not is_loopback(host) and not tokens.required:
        raise SteadyscaleError(
            f"api.listen is {host}, reachable beyond this machine, but no API token is set: "
            f"set api.tokens_file (and api.read_tokens_file) or {WRITE_ENV} / {READ_ENV}, "
            "or listen on 127.0.0.1"
        )


def _leader(runtime: Runtime) -> Callable[[], str | None]:
    """None while this process may write the ledger; else who leads (a follower)."""
    replication = runtime.replication
    if replication is None:
        return lambda: None
    leadership = replication.leadership
    ledger = runtime.ledger

    def leader() -> str | None:
        if leadership.state.role is Role.LEADER and leadership.trusted():
            return None
        if isinstance(ledger.location, DatabaseURL):
            from steadyscale.store.postgres import PostgresStore  # noqa: PLC0415

            store = ledger.store
            held = store.lease() if isinstance(store, PostgresStore) else None
            if held is not None and held.expires_in_seconds > 0:
                return f"replica {held.holder} (lease epoch {held.epoch})"
        return "none at the moment (no replica holds the lease); retry shortly"

    return leader
