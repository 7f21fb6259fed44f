"""Assemble a running autoscaler from a config: clock, EC2 provider, ledger, emulator,
metrics, health prober. The composition root: the only place that knows which concrete
provider it built, and so which prober its nodes need.

With ``provider.type: emulator`` the emulator starts in-process and the autoscaler shares
its clock, so the emulator's time scale speeds up the whole scenario alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from steadyscale.app.eventsource import EMULATOR_CREDENTIALS, Inbox, open_inbox
from steadyscale.app.loading import model_settings
from steadyscale.app.renamed import claim_ledger, refuse_if_renamed
from steadyscale.app.replication import Fence, Replication, build_replication
from steadyscale.app.staged import Staged, restore_staged, staged_demand
from steadyscale.config import (
    ClusterConfig,
    DatabaseURL,
    HaConfig,
    LedgerLocation,
    bucket_pairs,
    default_replica_id,
    ledger_location,
)
from steadyscale.config.ha import idle_transaction_limit
from steadyscale.ec2model.instances import TrackedInstance
from steadyscale.ec2model.settings import EmulatorSettings
from steadyscale.loop.autoscaler import Autoscaler, Event
from steadyscale.loop.gated import LeaderGatedProvider
from steadyscale.ops.health import HealthChecker, Prober, prober_for
from steadyscale.ops.metrics import Metrics
from steadyscale.providers.aws import EC2Provider
from steadyscale.providers.memory import MemoryProvider
from steadyscale.providers.protocol import ApiObserver, ClientOptions, CloudProvider
from steadyscale.retries.clock import Clock, ScaledClock, WallClock
from steadyscale.sim.simulation import Assembly
from steadyscale.store.errors import FencedError, StoreUnavailableError
from steadyscale.store.ledger import Ledger, WriterLock
from steadyscale.testing.crashpoints import crashpoint

if TYPE_CHECKING:
    from steadyscale.emulator import Emulator

log = logging.getLogger("steadyscale.runtime")


@dataclass
class Runtime:
    config: ClusterConfig
    clock: Clock
    provider: CloudProvider
    ledger: Ledger
    ledger_path: LedgerLocation  # a file, or a database (its URL shows no password)
    metrics: Metrics
    health: HealthChecker
    emulator: Emulator | None = None  # only with provider.type emulator
    replication: Replication | None = None  # only for replicas on a PostgreSQL ledger
    inbox: Inbox | None = None  # EC2's events, with an events block

    def ground_truth(self) -> list[TrackedInstance] | None:
        """Every instance as it really is, gone ones included, from the memory model or the
        embedded emulator; None against an EC2 endpoint, which has no ground truth."""
        if isinstance(self.provider, MemoryProvider):
            return self.provider.truth(include_gone=True)
        if self.emulator is not None:
            return self.emulator.truth(self.config.provider.region, include_gone=True)
        return None

    def close(self) -> None:
        for closing in (self.health, self.inbox, self.replication):
            if closing is not None:
                closing.close()
        self.ledger.close()
        if self.emulator is not None:
            self.emulator.stop()


def build_metrics(config: ClusterConfig, clock: Clock) -> Metrics:
    """The metrics of one autoscaler; /healthz goes stale after the config's intervals."""
    return Metrics(clock, stale_after_seconds=config.metrics.stale_after_seconds(config))


def memory_prober(config: ClusterConfig, memory: MemoryProvider) -> Prober:
    """Probes of nodes on the memory backend go to its model, never to a made-up address."""
    return prober_for(config, None, in_process=memory.probe_node)


def endpoint_prober(config: ClusterConfig, endpoint_url: str | None) -> Prober:
    """Probes of nodes behind an EC2 endpoint: to the emulator's control API when the
    config says probes go through the endpoint, else to each node's private IP."""
    return prober_for(config, endpoint_url)


def build_health(prober: Prober, clock: Clock, metrics: Metrics) -> HealthChecker:
    """A health checker whose every probe result is counted in ``metrics``."""

    def count(node_type: str, passed: bool) -> None:
        metrics.health_checks.labels(node_type, "pass" if passed else "fail").inc()

    return HealthChecker(prober, clock, on_result=count)


def build_autoscaler(
    runtime: Runtime, *, on_event: Callable[[Event], None] | None = None
) -> Autoscaler:
    """The daemon's autoscaler on the runtime's collaborators, its crash points armed by
    ``STEADYSCALE_CRASH_AT`` (the chaos harness kills daemons there). A replica's
    autoscaler sends EC2 mutations through the gate of its leadership."""
    provider = runtime.provider
    replication = runtime.replication
    if replication is not None:
        provider = LeaderGatedProvider(provider, replication.leadership.check)
    return Autoscaler(
        runtime.config,
        provider,
        runtime.ledger,
        runtime.clock,
        metrics=runtime.metrics,
        health=runtime.health,
        on_event=on_event,
        crash=crashpoint,
        stop_on=replication.stop_on if replication is not None else (),
        inbox=open_inbox(runtime),
    )


def client_options(
    config: ClusterConfig, observer: ApiObserver | None = None, replica_id: str | None = None
) -> ClientOptions:
    """How the config's provider calls EC2, whichever backend it is."""
    return ClientOptions(
        replica_id=replica_id,
        max_attempts=config.provider.max_attempts,
        lookup_deadline=config.lookup_deadline_seconds,
        rate_limits=bucket_pairs(config.provider.rate_limits),
        rate_limit_max_wait=config.provider.rate_limit_max_wait_seconds,
        observer=observer,
    )


def build_provider(
    config: ClusterConfig,
    clock: Clock,
    endpoint_url: str | None = None,
    observer: ApiObserver | None = None,
    replica_id: str | None = None,
) -> EC2Provider:
    provider = config.provider
    credentials = EMULATOR_CREDENTIALS if provider.type == "emulator" else None
    return EC2Provider(
        cluster_name=config.cluster_name,
        region=provider.region,
        clock=clock,
        options=client_options(config, observer, replica_id),
        endpoint_url=endpoint_url or provider.endpoint_url,
        connect_timeout=provider.connect_timeout_seconds,
        read_timeout=provider.read_timeout_seconds,
        credentials=credentials,
    )


def build_memory_provider(
    config: ClusterConfig,
    clock: Clock,
    settings: EmulatorSettings | None = None,
    observer: ApiObserver | None = None,
) -> MemoryProvider:
    """The in-memory backend with the config's model settings (or ``settings``)."""
    provider = config.provider
    return MemoryProvider(
        cluster_name=config.cluster_name,
        clock=clock,
        settings=settings or model_settings(config),
        region=provider.region,
        options=client_options(config, observer),
    )


def open_runtime(
    config: ClusterConfig,
    config_path: str | Path | None,
    *,
    fresh_emulator_ledger: bool = True,
    clock: Clock | None = None,
    replica_id: str | None = None,
    daemon: bool = False,
) -> Runtime:
    """Start what the config needs; checks the cloud before the ledger is touched.

    The runtime is the ledger's one writer: a second daemon on the same ledger file fails
    here, as does a command (``daemon`` false) while any daemon runs. A ``daemon`` on a
    PostgreSQL ledger is always one replica among any number (``_open_replica``): every
    daemon there goes through the lease, which excludes the commands' writer lock.
    A config whose ``cluster_name`` changed is refused before anything starts while the
    ledger of its former name still tracks live nodes. ``clock``: the clock of an
    ``aws`` endpoint's emulator (tests run one on a fake clock); by default the wall's.
    """
    path = ledger_location(config, config_path)
    in_process = config.provider.type in ("memory", "emulator")
    fresh = in_process and fresh_emulator_ledger
    if daemon and isinstance(path, DatabaseURL):
        return _open_replica(
            config, config_path, path, clock=clock, replica_id=replica_id, fresh=fresh
        )
    if not fresh:
        # (An embedded emulator starts empty: no earlier ledger's instance can be alive.)
        refuse_if_renamed(config, config_path, path)
    clock = _runtime_clock(config, clock)
    metrics = build_metrics(config, clock)
    provider, prober, emulator = _open_cloud(config, clock, metrics, replica_id)
    health = build_health(prober, clock, metrics)
    try:
        provider.preflight()
        ledger = _open_ledger(path, fresh=fresh)
        claim_ledger(ledger, config, config_path)
    except BaseException:
        if emulator is not None:
            emulator.stop()
        raise
    return Runtime(
        config=config,
        clock=clock,
        provider=provider,
        ledger=ledger,
        ledger_path=path,
        emulator=emulator,
        metrics=metrics,
        health=health,
    )


def _open_cloud(
    config: ClusterConfig, clock: Clock, metrics: Metrics, replica_id: str | None
) -> tuple[CloudProvider, Prober, Emulator | None]:
    """The config's EC2 (the memory model, an embedded emulator, or an endpoint), the
    prober its nodes need, and the emulator if one was started."""
    if config.provider.type == "memory":
        memory = build_memory_provider(config, clock, observer=metrics.api_call)
        return memory, memory_prober(config, memory), None
    emulator: Emulator | None = None  # only with provider.type emulator
    if config.provider.type == "emulator":
        from steadyscale.emulator import Emulator  # noqa: PLC0415 - moto loads only here

        emulator = Emulator(model_settings(config), clock=clock).start()
    ec2 = build_provider(
        config,
        clock,
        observer=metrics.api_call,
        endpoint_url=emulator.endpoint_url if emulator else None,
        replica_id=replica_id,
    )
    return ec2, endpoint_prober(config, ec2.endpoint_url), emulator


def _open_replica(
    config: ClusterConfig,
    config_path: str | Path | None,
    url: DatabaseURL,
    *,
    clock: Clock | None,
    replica_id: str | None,
    fresh: bool,
) -> Runtime:
    """One replica on the PostgreSQL ledger at ``url``: the lease replaces the writer lock
    (a replica alone simply leads), and its ledger writes are refused until it leads.
    ``fresh``: its embedded emulator starts empty, so its first lead empties the ledger."""
    from steadyscale.store.postgres import PostgresStore  # noqa: PLC0415 - psycopg only here

    ha = config.ha or HaConfig()
    replica = replica_id or ha.replica_id or default_replica_id()
    clock = _runtime_clock(config, clock)
    metrics = build_metrics(config, clock)
    provider, prober, emulator = _open_cloud(config, clock, metrics, replica)
    health = build_health(prober, clock, metrics)
    try:
        provider.preflight()
        ledger = Ledger(replace(url, settings=idle_transaction_limit(ha)))
        store = ledger.store
        if not isinstance(store, PostgresStore):  # (a URL always opens one)
            raise TypeError(f"ledger {url} did not open as a PostgreSQL store")

        def set_fence(fence: Fence) -> None:
            store.fence = fence

        replication = build_replication(
            ha,
            url=url.secret,
            replica_id=replica,
            metrics=metrics,
            set_fence=set_fence,
            on_lead=_on_lead(ledger, config, config_path, fresh=fresh),
            errors=(FencedError, StoreUnavailableError),
        )
    except BaseException:
        if emulator is not None:
            emulator.stop()
        raise
    log.info("replica %s on ledger %s: following until it takes the lease", replica, url)
    return Runtime(
        config=config,
        clock=clock,
        provider=provider,
        ledger=ledger,
        ledger_path=url,
        emulator=emulator,
        metrics=metrics,
        health=health,
        replication=replication,
    )


def _on_lead(
    ledger: Ledger, config: ClusterConfig, config_path: str | Path | None, *, fresh: bool
) -> Callable[[], None]:
    """What a replica does with the ledger as it becomes leader, before it recovers."""
    emptied = not fresh

    def on_lead() -> None:
        nonlocal emptied
        if not emptied:
            _empty(ledger, ledger.location)
            emptied = True
        claim_ledger(ledger, config, config_path)

    return on_lead


def _empty(ledger: Ledger, where: object) -> None:
    if ledger.nodes(include_terminal=True):
        ledger.clear()
        log.warning("emptied the ledger %s: the embedded emulator starts empty", where)


def _runtime_clock(config: ClusterConfig, clock: Clock | None) -> Clock:
    """In-process backends share the model's clock, time scale included; an endpoint is
    on ``clock`` if given, else on the wall's."""
    if config.provider.type in ("memory", "emulator"):
        return ScaledClock(model_settings(config).time_scale, origin=time.time())
    return clock or WallClock()


def _open_ledger(path: LedgerLocation, *, fresh: bool) -> Ledger:
    """The ledger, its writer lock taken before anything touches it (in a database: its
    advisory lock, taken before anything is written). ``fresh``: an earlier run's ledger
    is replaced (the embedded emulator starts empty)."""
    if isinstance(path, DatabaseURL):
        return _open_database_ledger(path, fresh=fresh)
    lock = WriterLock(path)
    lock.acquire()
    staged: Staged = {}
    if fresh and path.exists():
        # An earlier run's instances went with its emulator; demand staged by request stays.
        staged = staged_demand(path)  # (a damaged file is reported, never recreated)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        log.warning("started a fresh ledger at %s: the embedded emulator starts empty", path)
    try:
        ledger = Ledger(path)
        restore_staged(ledger, staged, time.time())
    except BaseException:
        lock.release()
        raise
    ledger.writer_lock = lock
    return ledger


def _open_database_ledger(url: DatabaseURL, *, fresh: bool) -> Ledger:
    ledger = Ledger(url)
    try:
        ledger.acquire_writer()
        if fresh:
            _empty(ledger, url)
    except BaseException:
        ledger.close()
        raise
    return ledger


def assemble_simulation(
    config: ClusterConfig, clock: Clock, settings: EmulatorSettings
) -> Assembly:
    """The memory backend on the simulation's clock and model settings, with the metrics
    and the health checker (probing the model) its autoscaler reports to."""
    provider = build_memory_provider(config, clock, settings)
    metrics = build_metrics(config, clock)
    health = build_health(memory_prober(config, provider), clock, metrics)
    return Assembly(provider=provider, metrics=metrics, health=health)
