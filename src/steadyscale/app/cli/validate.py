"""``steadyscale validate``: check a cluster config (and, for real EC2, that credentials
exist) and say in one line what is wrong, or what the config describes; against the
cluster's ledger, also what the config will do to its live nodes (kept, re-labelled,
retiring) before the daemon does it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from steadyscale.app.cli.common import Commands, load_config
from steadyscale.errors import SteadyscaleError

if TYPE_CHECKING:
    from steadyscale.config import ClusterConfig


def register(commands: Commands) -> None:
    validate = commands.add_parser("validate", help="check a cluster config and say what is wrong")
    validate.add_argument("config", metavar="CONFIG")
    validate.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    import botocore.session  # noqa: PLC0415

    config = load_config(args.config)
    if (
        config.provider.type == "aws"
        and config.provider.endpoint_url is None
        and (botocore.session.get_session().get_credentials() is None)
    ):
        raise SteadyscaleError(
            "no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or run on a machine with an instance role"
        )
    types = ", ".join(
        f"{name} ({t.instance_type}, {t.min_workers}-{t.max_workers})"
        for name, t in config.available_node_types.items()
        if not t.is_fleet
    )
    fleets = [(name, t) for name, t in config.available_node_types.items() if t.is_fleet]
    if fleets:
        types = ", ".join(
            filter(
                None, [types, *(f"{n} (fleet, {t.min_workers}-{t.max_workers})" for n, t in fleets)]
            )
        )
    print(
        f"ok: cluster {config.cluster_name}, provider {config.provider.type} "
        f"({config.provider.region}), node types: {types}"
    )
    for name, node_type in fleets:
        print(
            f"  {name}: CreateFleet {node_type.market} {node_type.strategy} over "
            f"{', '.join(node_type.fleet_types())}"
        )
    for line in _live_nodes(config, args.config):
        print(line)
    return 0


def _live_nodes(config: ClusterConfig, config_path: str) -> list[str]:
    """What the config does to the live nodes of the cluster's ledger, read as ``status``
    reads it (no lock; safe beside a running daemon). Nothing without a ledger, or when
    the daemon starts a fresh one (the embedded emulator and the memory backend)."""
    from steadyscale.config import ledger_location  # noqa: PLC0415
    from steadyscale.ops.changes import describe_plan  # noqa: PLC0415
    from steadyscale.store.changes import change_plan  # noqa: PLC0415
    from steadyscale.store.ledger import Ledger, ledger_exists  # noqa: PLC0415

    path = ledger_location(config, config_path)
    if config.provider.type in ("emulator", "memory") or not ledger_exists(path):
        return []
    ledger = Ledger(path, readonly=True)
    try:
        plan = change_plan(ledger, config.available_node_types)
    finally:
        ledger.close()
    if not plan.fates:
        return [f"ledger {path}: no live nodes"]
    return [
        f"ledger {path}: {len(plan.fates)} live node(s); with this config:",
        *(f"  {line}" for line in describe_plan(plan, config.max_surge)),
    ]
