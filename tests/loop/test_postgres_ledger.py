"""The autoscaler on a PostgreSQL ledger, judged by the emulator's ground truth on a fake
clock: it scales up and down, a restarted daemon knows only what the database tells it,
and a connection cut in the middle of the run costs the ticks that met it, nothing else
(no instance launched twice, none forgotten)."""

from __future__ import annotations

from collections.abc import Callable

from steadyscale.core.instances import TAG_REQUEST
from steadyscale.core.lifecycle import Status
from steadyscale.loop.autoscaler import Autoscaler
from steadyscale.store.ledger import Ledger
from steadyscale.testing.audit import audit
from steadyscale.testing.postgres import PostgresServer
from tests.cluster import Cluster

ClusterFactory = Callable[..., Cluster]


def _audit(cluster: Cluster, ledger: Ledger) -> tuple[int, list[str]]:
    launched = [(i.instance_id, i.tags.get(TAG_REQUEST, "")) for i in cluster.truth()]
    return audit(ledger, launched)


def test_a_cluster_scales_up_and_down_on_a_database_and_a_restart_resumes_from_it(
    cluster_factory: ClusterFactory, postgres: str
) -> None:
    cluster = cluster_factory("realistic", ledger_path=postgres)
    cluster.demand(5)
    cluster.run(lambda r: r.settled and cluster.count(Status.READY) == 5, max_ticks=80)

    # Another daemon on the same database knows every node the first one launched.
    reopened = Ledger(postgres)
    old = cluster.autoscaler
    cluster.autoscaler = Autoscaler(
        cluster.config,
        old.provider,
        reopened,
        cluster.clock,
        metrics=old.metrics,
        health=old.health,
    )
    cluster.ledger.close()
    cluster.ledger = reopened
    assert cluster.count(Status.READY) == 5
    cluster.demand(0)
    cluster.run(lambda r: not cluster.alive(), max_ticks=200)
    assert _audit(cluster, reopened) == (0, [])
    assert cluster.launches() >= 1 and len(cluster.truth()) == 5


def test_a_connection_cut_at_each_crash_point_costs_ticks_never_an_instance(
    cluster_factory: ClusterFactory, postgres: str, postgres_server: PostgresServer
) -> None:
    """The database connection is cut at each of the loop's worst moments (intent written,
    RunInstances answered but its ids not recorded yet, terminate written, sent): the
    write that follows fails, the tick reports it, the next tick reconnects."""
    cluster = cluster_factory("realistic", ledger_path=postgres, idle_timeout_minutes=0)
    database = postgres.rsplit("/", 1)[1]
    cut_at: list[str] = []

    def cut(point: str) -> None:
        if point not in cut_at:
            cut_at.append(point)
            assert postgres_server.drop_connections(database) == 1

    old = cluster.autoscaler
    cluster.autoscaler = Autoscaler(
        cluster.config,
        old.provider,
        cluster.ledger,
        cluster.clock,
        metrics=old.metrics,
        health=old.health,
        crash=cut,
    )
    cluster.demand(6)
    cluster.run(lambda r: r.settled and cluster.count(Status.READY) == 6, max_ticks=150)
    cluster.demand(0)
    cluster.run(lambda r: cluster.count(Status.TERMINATED) == 6, max_ticks=300)

    assert not cluster.alive()
    assert set(cut_at) >= {"intent_written", "launch_sent", "terminate_written"}
    failed = [e for r in cluster.reports for e in r.errors if "is unavailable" in e]
    assert failed, "no tick met a cut connection"
    assert _audit(cluster, cluster.ledger) == (0, [])
    assert len(cluster.truth()) == 6  # nothing launched twice, and every one terminated
    assert Ledger(postgres, readonly=True).counts_by_status() == {"cpu": {"terminated": 6}}
