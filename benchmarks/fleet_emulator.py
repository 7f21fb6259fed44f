"""``benchmarks/fleet.py --backend emulator``: the same two runs on the embedded emulator
over HTTP (boto3 provider), in real time scaled by the emulator's time scale."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from common import ramp_up
from fleet import OUT, ZONES, _config, path_figures
from steadyscale.app.runtime import open_runtime
from steadyscale.config import parse_config

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
        model = runtime.emulator.app.ec2._regions[runtime.config.provider.region].model
        figures = path_figures(
            nodes,
            took=ramp.took,
            ready=ramp.confirmed,
            start=ramp.start,
            truth=runtime.emulator.truth(runtime.config.provider.region, include_gone=True),
            records=ramp.autoscaler.records.values(),
            ledger=runtime.ledger,
            calls=runtime.emulator.calls.by_action(),
            price=model.prices.price,
        )
        return {**figures, "pools_out": list(OUT)}
    finally:
        runtime.close()
