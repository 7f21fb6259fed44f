"""``steadyscale iam-policy``: the least-privilege IAM policy (JSON) the daemon needs for a
cluster config."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from steadyscale.app.cli.common import Commands, load_config
from steadyscale.errors import ConfigError

if TYPE_CHECKING:
    from steadyscale.config import ClusterConfig


def register(commands: Commands) -> None:
    iam = commands.add_parser(
        "iam-policy",
        help="print the least-privilege IAM policy the config needs",
        description="Print the IAM policy (JSON) the daemon needs for this config: every "
        "EC2 action it calls, scoped by the cluster tag where EC2 allows (and by the former "
        "cluster names whose nodes its ledger still carries after a carry-over); with an "
        "events block, the reads of its SQS queue (that queue only).",
    )
    iam.add_argument("config", metavar="CONFIG")
    iam.add_argument(
        "--events-setup",
        action="store_true",
        help="also what `steadyscale events setup|teardown` needs (separate statements: "
        "for whoever runs the setup, not the daemon)",
    )
    iam.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from steadyscale.ops.iam import build_policy  # noqa: PLC0415

    config = load_config(args.config)
    if args.events_setup and config.events is None:
        raise ConfigError(f"{args.config}: --events-setup needs an events block in the config")
    carried = carried_names(config, args.config)
    print(json.dumps(build_policy(config, carried, setup=args.events_setup), indent=2))
    return 0


def carried_names(config: ClusterConfig, config_path: str) -> list[str]:
    """The former cluster names the cluster's ledger still has live nodes of (after
    ``steadyscale ledger carry-over``): the daemon must still terminate those."""
    from steadyscale.config import ledger_location  # noqa: PLC0415
    from steadyscale.store.ownership import read_ledger  # noqa: PLC0415

    # No ledger, or an unreadable one: the daemon reports it; the policy of the config
    # alone is right. (A database that cannot be reached is said in one line.)
    ledger = read_ledger(ledger_location(config, config_path))
    return sorted(name for name, live in ledger.carried.items() if live) if ledger else []
