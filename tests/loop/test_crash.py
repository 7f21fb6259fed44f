"""Crash safety (F11): SIGKILL the daemon at random moments and at each boundary.

The daemon runs as a subprocess against an emulator in its own process (profile
realistic), so every kill is a real ``kill -9``; the verdict comes from the emulator's
ground truth.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from steadyscale.testing.chaos import run_chaos
from steadyscale.testing.crashpoints import POINTS


def test_thirty_random_kills_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    run = run_chaos(tmp_path, nodes=300, kills=30, seed=11)
    v = run.verdict
    assert v.duplicates == 0, v
    assert v.leaks == 0, v
    assert v.unrecorded == [], v
    assert v.launched == 300  # every node the demand needed, and not one more
    assert run.kills == 30
    # Every daemon logged each state change to a file: more than a pipe holds, which would
    # have stalled a daemon whose pipe nobody read until it ended.
    moves = (tmp_path / "daemons.log").read_text().count(" -> ")
    assert moves >= 300 * 4, moves


@pytest.mark.parametrize("point", POINTS)
def test_a_kill_at_each_boundary_is_recovered(tmp_path: Path, point: str) -> None:
    # Every daemon dies at the same boundary the first time it reaches it.
    run = run_chaos(tmp_path, nodes=40, kills=4, seed=3, quiet_errors=True, forced_point=point)
    v = run.verdict
    assert (v.duplicates, v.leaks, v.unrecorded) == (0, 0, []), v
    assert run.crash_points_hit.get(point, 0) >= 1, run.crash_points_hit


FLEET = {
    "worker": {
        "node_config": {"ImageId": "ami-12345678"},
        "instance_types": ["m5.large", "c5.large"],
        "resources": {"CPU": 2},
        "max_workers": 2000,
    }
}
LAUNCH_POINTS = [p for p in POINTS if p in ("intent_written", "launch_sent", "launch_recorded")]


@pytest.mark.parametrize("point", LAUNCH_POINTS)
def test_a_kill_at_each_fleet_launch_boundary_is_recovered(tmp_path: Path, point: str) -> None:
    """The same over CreateFleet (a node type of two instance types): its intent, with the
    launch template version and overrides, is in the ledger before the call, so the resend
    after a kill is the same fleet request and EC2 answers it with the same instances."""
    run = run_chaos(
        tmp_path,
        nodes=40,
        kills=4,
        seed=3,
        quiet_errors=True,
        forced_point=point,
        node_types=FLEET,
    )
    v = run.verdict
    assert (v.duplicates, v.leaks, v.unrecorded) == (0, 0, []), v
    assert v.launched == v.by_fleet == 40  # every node the demand needed, each by a fleet
    assert run.crash_points_hit.get(point, 0) >= 1, run.crash_points_hit
