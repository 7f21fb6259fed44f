"""How ``request`` and ``status`` reach a running daemon through its HTTP API: the address
is the config's ``api.listen`` (or, for port 0 or ``run --api``, the one the daemon left in
its ledger), the token comes from the environment or the config's token files, and the
answering daemon must name this config's cluster. No daemon answering: the commands use
the ledger directly, as before there was an API."""

from __future__ import annotations

import os
from pathlib import Path

from steadyscale.api.tokens import READ_ENV, WRITE_ENV, read_tokens_file
from steadyscale.client import ApiError, Client
from steadyscale.config import ClusterConfig, LedgerLocation
from steadyscale.errors import SteadyscaleError
from steadyscale.store.ledger import Ledger, ledger_exists

API_URL = "api_url"  # the ledger's meta key the daemon writes (app.api_service)
# The daemon answers on this machine or a near one: seconds are plenty.
_TIMEOUT = 5.0
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def api_url(config: ClusterConfig, ledger: LedgerLocation | None) -> str | None:
    """Where this cluster's daemon serves its API, if anywhere known."""
    api = config.api
    if api is not None and api.port != 0:
        host = _WILDCARDS.get(api.host, api.host)
        return f"http://{f'[{host}]' if ':' in host else host}:{api.port}"
    if ledger is None or not ledger_exists(ledger):
        return None
    opened = Ledger(ledger, readonly=True)
    try:
        return opened.meta(API_URL)
    finally:
        opened.close()


def api_token(config: ClusterConfig, config_path: str, *, write: bool) -> str | None:
    """A token for the daemon: read-write (``write``) or any, from the environment first,
    then the first token of the config's token files."""
    names = [WRITE_ENV] if write else [READ_ENV, WRITE_ENV]
    for name in names:
        if os.environ.get(name, "").strip():
            return os.environ[name].strip()
    api = config.api
    if api is None:
        return None
    files = [api.tokens_file] if write else [api.read_tokens_file, api.tokens_file]
    for file in files:
        if file:
            tokens = read_tokens_file(Path(config_path).parent / file, "api token file")
            if tokens:
                return next(iter(tokens))
    return None


def daemon_client(
    config: ClusterConfig, config_path: str, ledger: LedgerLocation | None, *, write: bool
) -> Client | None:
    """A client of this cluster's running daemon, or None when none answers (or, to
    ``write``, no read-write token is at hand: the ledger is written directly)."""
    url = api_url(config, ledger)
    token = api_token(config, config_path, write=write)
    if url is None or (write and token is None):
        return None
    client = Client(url, token, timeout=_TIMEOUT)
    try:
        client.demand()  # (it answers, and says which cluster it runs)
    except ApiError as exc:
        client.close()
        if exc.status in (0, 503):  # no daemon, or a follower: the ledger directly
            return None
        raise SteadyscaleError(f"the daemon's API at {url}: {exc.detail}") from None
    if client.cluster_name != config.cluster_name:
        client.close()
        raise SteadyscaleError(
            f"the API at {url} serves cluster {client.cluster_name}, not "
            f"{config.cluster_name}: give this cluster's daemon its own api.listen"
        )
    return client
