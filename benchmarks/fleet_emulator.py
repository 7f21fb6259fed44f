"""``benchmarks/fleet.py --backend emulator``: the same two runs on the embedded emulator
over HTTP (boto3 provider), in real time scaled by the emulator's time scale."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from common import ramp_up
from fleet import LAUNCH_CALLS, OUT, ZONES, _by_pool, _config, cheapest, ready_at
from steadyscale.app.runtime import open_runtime
from steadyscale.config import parse_config
from steadyscale.core.lifecycle import HAS_INSTANCE
from steadyscale.sim.report import audit_fleet

TIME_SCALE = 0.2


def run_emulator(nodes: int, seed: int, fleet: bool, max_seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return _run(nodes, seed, fleet, max_seconds, Path(tmp) / "ledger.db")


def _run(nodes: int, seed: int, fleet: bool, max_seconds: float, ledger: Path) -> dict[str, Any]:
    data = _config(nodes, seed, fleet).model_dump(mode="json", exclude_none=True)
    data["ledger"] = str(ledger)
    data["provider"]["type"] = "emulator"
    data["provider"]["emulator"]["time_scale"] = TIME_SCALE
    data["provider"]["subnets"] = []
    for name in ("rate_limits",):
        data["provider"].pop(name, None)
    runtime = open_runtime(parse_config(data), None)
    try:
        assert runtime.emulator is not None
        found = runtime.emulator.client().describe_subnets()["Subnets"]
        by_zone = {s["AvailabilityZone"]: s["SubnetId"] for s in found}
        data["provider"]["subnets"] = [by_zone[z] for z in ZONES]
        runtime.config = parse_config(data)
        ramp = ramp_up(runtime, nodes, max_seconds)
        truth = runtime.emulator.truth(runtime.config.provider.region, include_gone=True)
        start = ramp.start
        bound = max((ready_at(i) - start for i in truth if i.running_at), default=0.0)
        by_action = {a: sum(o.values()) for a, o in runtime.emulator.calls.by_action().items()}
        launch = sum(by_action.get(a, 0) for a in LAUNCH_CALLS)
        alive = [i for i in truth if i.state.value != "terminated"]
        cost = sum(i.hourly_price or 0.0 for i in alive)
        model = runtime.emulator.app.ec2._regions[runtime.config.provider.region].model
        floor = cheapest(nodes, model.prices.price, start)
        tracked = {
            r.instance_id
            for r in ramp.autoscaler.records.values()
            if r.instance_id and r.status in HAS_INSTANCE
        }
        audit = audit_fleet(runtime.ledger, truth, tracked)
        return {
            "ready": ramp.confirmed,
            "time_to_capacity_s": round(ramp.took, 1),
            "lower_bound_s": round(bound, 1),
            "ratio": round(ramp.took / bound, 3) if bound > 0 else None,
            "api_calls_per_node": round(launch / nodes, 4),
            "all_api_calls_per_node": round(sum(by_action.values()) / nodes, 4),
            "api_calls": dict(sorted(by_action.items())),
            "cost_per_hour": round(cost, 3),
            "cheapest_per_hour": round(floor, 3),
            "cost_over_cheapest": round(cost / floor, 3) if floor > 0 else None,
            "by_pool": _by_pool(alive),
            "duplicates": audit.duplicates,
            "leaks": audit.leaks,
            "pools_out": list(OUT),
        }
    finally:
        runtime.close()
