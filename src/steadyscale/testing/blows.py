"""Blows to a ``ReplicaCluster``'s leader, or to the database under it, each followed by
the wait for a replica to lead again: SIGKILL (a fresh replica replaces the dead one),
SIGSTOP past the lease then SIGCONT (also inside a ledger write transaction), its
database connections cut, the database restarted.
"""

from __future__ import annotations

import time

from steadyscale.testing.postgres import PostgresServer
from steadyscale.testing.postgres_faults import (
    TableLock,
    cut_connections,
    in_transaction,
    waiting_for_a_lock,
)
from steadyscale.testing.replica_process import Replica
from steadyscale.testing.replicas import (
    Disruption,
    Disturbance,
    ReplicaCluster,
    ReplicaError,
    TakeoverHeldBackError,
    wait_for,
)

# The ledger's tables a leader writes each tick while the cluster changes.
LEDGER_TABLES = ("nodes", "transitions", "requests")


def disrupt(cluster: ReplicaCluster, kind: Disruption, timeout: float = 60.0) -> Disturbance:
    """Hit the leader (or the database) and wait until one replica leads again."""
    leader = cluster.wait_leader(timeout)
    blow = time.monotonic()
    if kind is Disruption.KILL:
        leader.kill()
        cluster.running.remove(leader)
        cluster.gone.append(leader)
        after = cluster.wait_leader(timeout)
        took = time.monotonic() - blow
        cluster.add_replica()
    elif kind in (Disruption.PAUSE, Disruption.PAUSE_MID_WRITE):
        if kind is Disruption.PAUSE:
            leader.pause()
        else:
            _pause_mid_write(cluster, leader)
        after = _successor(cluster, leader, timeout)
        took = time.monotonic() - blow
        leader.resume()
        wait_for(lambda: leader.leads() is False, timeout, "the resumed ex-leader to follow")
    else:
        _hit_database(cluster, kind, leader)
        after = cluster.wait_leader(timeout)
        took = time.monotonic() - blow
    return Disturbance(kind, leader.replica_id, after.replica_id, took)


def _successor(cluster: ReplicaCluster, stopped: Replica, timeout: float) -> Replica:
    """The replica that takes over from ``stopped``; TakeoverHeldBackError if none does
    while ``stopped`` holds a ledger transaction open."""
    try:
        return cluster.wait_leader(timeout, excluding=(stopped,))
    except ReplicaError as exc:
        server = cluster.postgres
        if server and in_transaction(server, cluster.database, stopped.db_ports(server.port)):
            raise TakeoverHeldBackError(
                f"{stopped.replica_id} was stopped with a ledger transaction open: {exc}"
            ) from None
        raise


def _server(cluster: ReplicaCluster, kind: Disruption) -> PostgresServer:
    if cluster.postgres is None:
        raise ReplicaError(f"{kind.value} needs a PostgreSQL ledger")
    return cluster.postgres


def _hit_database(cluster: ReplicaCluster, kind: Disruption, leader: Replica) -> None:
    server = _server(cluster, kind)
    if kind is Disruption.RESTART_DB:
        server.restart(mode="fast")
    elif not cut_connections(server, cluster.database, leader.db_ports(server.port)):
        raise ReplicaError(f"{leader.replica_id} holds no connection to the database")


def _pause_mid_write(cluster: ReplicaCluster, leader: Replica) -> None:
    """SIGSTOP the leader while its ledger write transaction waits inside: the ledger's
    tables held locked until its write waits on them, then let go."""
    server = _server(cluster, Disruption.PAUSE_MID_WRITE)
    with TableLock(server, cluster.database, LEDGER_TABLES):
        wait_for(
            lambda: waiting_for_a_lock(server, cluster.database, leader.db_ports(server.port)),
            30,
            f"{leader.replica_id} to write to the ledger",
        )
        leader.pause()
