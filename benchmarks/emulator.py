"""How much the consistency-and-fault layer adds on top of moto alone.

Launches 1,000 instances with RunInstances (100 per call) and then lists them all with a
paginated DescribeInstances, once against moto's own server and once against the
emulator, both over HTTP with plain boto3, alternating rounds in the same run. The
emulator runs the realistic profile's lag, boot and stale-read model (throttling and random
errors off, so both sides do the same calls); before listing, its clock moves past every
delay so the listing returns all 1,000 instances, as moto's does.

    python benchmarks/emulator.py [--instances 1000] [--per-call 100] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from steadyscale.emulator import Emulator, build_settings
from steadyscale.retries.clock import FakeClock

TARGET_OVERHEAD = 1.20


def _client(endpoint: str) -> Any:
    return boto3.client(
        "ec2",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def _measure(
    ec2: Any, instances: int, per_call: int, before_listing: Callable[[], None]
) -> tuple[float, float, int]:
    """Seconds for the launches, seconds for one full listing, instances listed."""
    started = time.perf_counter()
    for _ in range(instances // per_call):
        # MinCount = MaxCount: moto alone launches MinCount, so both sides launch the same.
        ec2.run_instances(
            ImageId="ami-12345678", MinCount=per_call, MaxCount=per_call, InstanceType="m5.large"
        )
    launch_seconds = time.perf_counter() - started
    before_listing()
    started = time.perf_counter()
    listed = 0
    for page in ec2.get_paginator("describe_instances").paginate():
        listed += sum(len(r["Instances"]) for r in page["Reservations"])
    return launch_seconds, time.perf_counter() - started, listed


def _moto_round(instances: int, per_call: int) -> tuple[float, float, int]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        # moto's server keeps one global backend: start every round empty.
        reset = urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset, timeout=30).close()
        return _measure(_client(f"http://{host}:{port}"), instances, per_call, lambda: None)
    finally:
        server.stop()


def _layer_round(instances: int, per_call: int) -> tuple[float, float, int]:
    settings = build_settings(
        profile="realistic",
        overrides={
            "throttling": {"enabled": False},
            "errors": {
                "server_error_probability": 0,
                "lost_response_probability": 0,
                "timeout_probability": 0,
            },
            "spot": {"interruption_rate_per_hour": 0},
            "stale_reads": {"probability": 0.0, "listing_flicker_probability": 0.0},
        },
    )
    clock = FakeClock()
    with Emulator(settings, clock=clock) as emu:
        return _measure(emu.client(), instances, per_call, lambda: clock.advance(600))


def run(instances: int, per_call: int, rounds: int) -> dict[str, Any]:
    moto: list[tuple[float, float, int]] = []
    layer: list[tuple[float, float, int]] = []
    _layer_round(per_call, per_call)  # warm imports and botocore's model cache
    for _ in range(rounds):
        moto.append(_moto_round(instances, per_call))
        layer.append(_layer_round(instances, per_call))
    calls = instances // per_call

    def med(rows: list[tuple[float, float, int]], index: int) -> float:
        return statistics.median(row[index] for row in rows)

    moto_launch, layer_launch = med(moto, 0), med(layer, 0)
    moto_list, layer_list = med(moto, 1), med(layer, 1)
    result: dict[str, Any] = {
        "instances": instances,
        "per_call": per_call,
        "rounds": rounds,
        "listed": {"moto": moto[-1][2], "layer": layer[-1][2]},
        "run_instances_calls_per_s": {"moto": calls / moto_launch, "layer": calls / layer_launch},
        "describe_full_listing_s": {"moto": moto_list, "layer": layer_list},
        "overhead_ratio": {
            "run_instances": layer_launch / moto_launch,
            "describe_instances": layer_list / moto_list,
            "total": (layer_launch + layer_list) / (moto_launch + moto_list),
        },
        "target_ratio": TARGET_OVERHEAD,
    }
    result["meets_target"] = result["overhead_ratio"]["total"] <= TARGET_OVERHEAD
    return result


def _table(r: dict[str, Any]) -> str:
    rows = [
        (
            "RunInstances calls/s",
            f"{r['run_instances_calls_per_s']['moto']:.2f}",
            f"{r['run_instances_calls_per_s']['layer']:.2f}",
            f"{r['overhead_ratio']['run_instances']:.3f}",
        ),
        (
            "full DescribeInstances s",
            f"{r['describe_full_listing_s']['moto']:.3f}",
            f"{r['describe_full_listing_s']['layer']:.3f}",
            f"{r['overhead_ratio']['describe_instances']:.3f}",
        ),
        ("total (ratio of times)", "", "", f"{r['overhead_ratio']['total']:.3f}"),
    ]
    head = ("measure", "moto alone", "with layer", "ratio")
    widths = [max(len(str(x[i])) for x in [head, *rows]) for i in range(4)]
    lines = [
        f"emulator overhead: {r['instances']} instances, {r['per_call']} per RunInstances,"
        f" median of {r['rounds']} rounds; listed moto={r['listed']['moto']}"
        f" layer={r['listed']['layer']}"
    ]
    for row in [head, *rows]:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    verdict = "meets" if r["meets_target"] else "MISSES"
    lines.append(f"target: layer adds under {round((TARGET_OVERHEAD - 1) * 100)} % -> {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--per-call", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    if args.instances < args.per_call or args.per_call < 1 or args.rounds < 1:
        parser.error("need --instances >= --per-call >= 1 and --rounds >= 1")
    result = run(args.instances, args.per_call, args.rounds)
    print(json.dumps(result) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
