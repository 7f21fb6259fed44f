"""Replicas of ``steadyscale run`` on one PostgreSQL ledger, the leader hurt while demand
rises and falls: killed, paused past its lease, cut off from the database, the database
restarted. Judged by the emulator: no duplicate, no leak, never two replicas acting on EC2
in the same instant, capacity reached each time.

Real processes on a real clock: each test waits for conditions with deadlines (about half
a minute to a minute each, the emulator's delays shrunk twentyfold).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from steadyscale.testing.acting import acting
from steadyscale.testing.chaos import daemon_env, write_config
from steadyscale.testing.failover import ScenarioResult, rise_and_fall
from steadyscale.testing.postgres import PostgresServer
from steadyscale.testing.replica_process import Replica
from steadyscale.testing.replicas import (
    CLUSTER,
    Disruption,
    ReplicaCluster,
    Timings,
    wait_for,
)

TIMINGS = Timings(
    lease_ttl_seconds=3, renew_interval_seconds=1, margin_seconds=1, interval_seconds=0.5
)
# The takeover bound is the lease TTL plus one loop interval; the harness sees a takeover
# through /metrics polled every 50 ms, by a test process sharing two cores with four others.
SEEN_WITHIN = TIMINGS.takeover_bound + 1.0
# Past this, no takeover is coming (the database restart included).
TAKEOVER_TIMEOUT = 20.0


def _judge(result: ScenarioResult, replicas: int) -> None:
    verdict = result.verdict
    assert verdict.problems() == []
    assert verdict.duplicates == 0 and verdict.leaks == 0 and verdict.unrecorded == []
    assert verdict.acting.overlaps == [] and verdict.acting.unnamed == 0
    assert verdict.acting.min_gap is None or verdict.acting.min_gap > 0
    assert result.exit_codes == [0] * replicas


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A server of the test's own, for a test that restarts it."""
    with PostgresServer() as server:
        yield server


@pytest.mark.parametrize("replicas", [2, 3])
@pytest.mark.parametrize("blow", [Disruption.KILL, Disruption.PAUSE])
def test_another_replica_takes_over_a_leader_killed_or_paused_past_its_lease(
    tmp_path: Path, postgres_server: PostgresServer, replicas: int, blow: Disruption
) -> None:
    with ReplicaCluster(
        tmp_path, replicas=replicas, postgres=postgres_server, timings=TIMINGS
    ) as cluster:
        result = rise_and_fall(
            cluster, nodes=12 * replicas, blow=blow, takeover_timeout=TAKEOVER_TIMEOUT
        )
    _judge(result, replicas)
    for hit in result.disturbances:
        assert hit.leader_after != hit.hit
        assert hit.takeover_s <= SEEN_WITHIN
    # The leaders before and after each blow both acted on EC2, one after the other.
    assert len(result.verdict.acting.replicas) >= 2


def test_another_replica_takes_over_a_leader_paused_inside_a_ledger_write(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    # Stopped between its fence (a row lock on the lease) and its commit: the successor
    # ends the frozen write once the lease expired, so the lock does not hold it back.
    with ReplicaCluster(tmp_path, replicas=2, postgres=postgres_server, timings=TIMINGS) as cluster:
        result = rise_and_fall(
            cluster, nodes=24, blow=Disruption.PAUSE_MID_WRITE, takeover_timeout=TAKEOVER_TIMEOUT
        )
    _judge(result, 2)
    for hit in result.disturbances:
        assert hit.leader_after != hit.hit
        assert hit.takeover_s <= SEEN_WITHIN


@pytest.mark.parametrize("replicas", [2, 3])
def test_a_leader_cut_off_from_the_database_mid_tick_leaves_one_leader_acting(
    tmp_path: Path, postgres_server: PostgresServer, replicas: int
) -> None:
    with ReplicaCluster(
        tmp_path, replicas=replicas, postgres=postgres_server, timings=TIMINGS
    ) as cluster:
        result = rise_and_fall(
            cluster, nodes=12 * replicas, blow=Disruption.CUT, takeover_timeout=TAKEOVER_TIMEOUT
        )
    _judge(result, replicas)
    assert all(hit.takeover_s <= SEEN_WITHIN for hit in result.disturbances)


@pytest.mark.parametrize("replicas", [2, 3])
def test_replicas_carry_on_after_the_database_restarts_under_them(
    tmp_path: Path, own_postgres: PostgresServer, replicas: int
) -> None:
    with ReplicaCluster(
        tmp_path, replicas=replicas, postgres=own_postgres, timings=TIMINGS
    ) as cluster:
        result = rise_and_fall(
            cluster,
            nodes=12 * replicas,
            blow=Disruption.RESTART_DB,
            takeover_timeout=TAKEOVER_TIMEOUT,
        )
    _judge(result, replicas)
    assert all(hit.takeover_s <= SEEN_WITHIN + 5 for hit in result.disturbances)


def test_one_replica_on_a_sqlite_ledger_leads_and_names_itself_in_the_call_log(
    tmp_path: Path,
) -> None:
    with ReplicaCluster(tmp_path, replicas=1, timings=TIMINGS) as cluster:
        leader = cluster.start()
        cluster.set_demand(10)
        cluster.wait_capacity(10)
        cluster.set_demand(0)
        cluster.wait_terminated()
        codes = cluster.stop_replicas()
        verdict = cluster.verdict()
    assert leader.replica_id == "r1" and codes == [0]
    assert verdict.problems() == []
    assert verdict.launched == 10 and verdict.acting.replicas == ["r1"]
    assert [t.replica for t in verdict.acting.terms] == ["r1"]


def _bundles(count: int) -> list[str]:
    return ["--bundle", "CPU=2", "--count", str(count)] if count else ["--clear"]


def _both_acted(cluster: ReplicaCluster, since: int) -> bool:
    later = cluster.mutation_records()[since:]
    return {"r1", "rogue"} <= {str(r["replica"]) for r in later}


def _request_both(configs: list[Path], count: int) -> None:
    """``steadyscale request`` on each config at once, so both daemons hear of it together."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "steadyscale", "request", str(c), *_bundles(count)],
            stdout=subprocess.DEVNULL,
            env=daemon_env(),
        )
        for c in configs
    ]
    assert [proc.wait(timeout=60) for proc in procs] == [0] * len(procs)


def test_two_daemons_that_both_lead_are_caught_taking_turns_in_the_call_log(
    tmp_path: Path,
) -> None:
    # Two daemons on two SQLite ledgers share nothing: both lead, both act. The check that
    # the replica tests rely on must see two actors here, or it proves nothing there.
    with ReplicaCluster(tmp_path, replicas=1, timings=TIMINGS) as cluster:
        cluster.start()
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        config = write_config(
            elsewhere,
            cluster.emulator.url,
            cluster_name=CLUSTER,
            loop_interval_seconds=TIMINGS.interval_seconds,
            ledger=str(elsewhere / "other.db"),
        )
        rogue = Replica("rogue", config, elsewhere)
        cluster.running.append(rogue)  # stopped with the cluster
        wait_for(rogue.leads, 30, "the second daemon to lead")
        for count in (8, 2, 8, 0):
            since = len(cluster.mutation_records())
            _request_both([cluster.config, config], count)
            wait_for(lambda: _both_acted(cluster, since), 60, "both daemons to act")  # noqa: B023
        cluster.wait_terminated()
        report = acting(cluster.mutation_records())
    floor = TIMINGS.margin_seconds / 2 / cluster.time_scale
    assert sorted(report.replicas) == ["r1", "rogue"]
    assert report.overlaps or report.hurried(floor)
