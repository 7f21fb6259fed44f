"""``steadyscale ledger``: work on a cluster's ledger while its daemon is stopped.

``ledger carry-over CONFIG --from OLD`` makes the ledger of cluster OLD the ledger of the
cluster CONFIG now names, after ``cluster_name`` changed: its nodes stay tracked, and the
daemon lists them by their old tag (EC2 cannot change it) until they are gone.
``ledger adopt``, ``export`` and ``import`` (``app.cli.ledger_io``) take a cluster over
and move a ledger.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from steadyscale.app.cli import ledger_io
from steadyscale.app.cli.common import Commands, Parser, add_log_level, load_config
from steadyscale.errors import ConfigError, SteadyscaleError


def register(commands: Commands) -> None:
    ledger = commands.add_parser(
        "ledger",
        help="work on a cluster's ledger (carry it over, adopt a cluster, export, import)",
        description="Work on a cluster's ledger while its daemon is stopped.",
    )
    actions = ledger.add_subparsers(dest="ledger_command", metavar="ACTION", parser_class=Parser)
    actions.required = True
    carry = actions.add_parser(
        "carry-over",
        help="carry a cluster over to the cluster_name its config now has",
        description="After cluster_name changed in CONFIG: make the ledger of the former "
        "name the ledger of the new one, so its nodes stay tracked. Their instances keep "
        "the former tag (EC2 cannot change it): the daemon lists them by it too until they "
        "are gone, and new nodes carry the new name. Stop the daemon first.",
    )
    carry.add_argument("config", metavar="CONFIG", help="the cluster config, with its new name")
    carry.add_argument(
        "--from",
        dest="former",
        metavar="OLD",
        required=True,
        help="the cluster_name the cluster ran under before",
    )
    add_log_level(carry, default=argparse.SUPPRESS)  # after the action, as for every command
    carry.set_defaults(func=carry_over)
    ledger_io.register(actions)


def carry_over(args: argparse.Namespace) -> int:
    from steadyscale.config import ledger_location, parse_config, read_yaml_file  # noqa: PLC0415
    from steadyscale.store.ownership import carry_over as move_ledger  # noqa: PLC0415

    config = load_config(args.config)
    former = args.former
    if former == config.cluster_name:
        raise SteadyscaleError(
            f"cluster_name in {args.config} is {former} already: nothing to carry over "
            f"(steadyscale run {args.config} runs it)"
        )
    try:
        # The config as it was under the former name: where its daemon kept its ledger.
        old_config = parse_config({**read_yaml_file(args.config), "cluster_name": former})
    except ConfigError as exc:
        raise SteadyscaleError(f"--from {former!r}: {str(exc).split(': ', 1)[-1]}") from None
    old = ledger_location(old_config, args.config)
    new = ledger_location(config, args.config)
    done = move_ledger(
        old,
        new,
        config_file=str(Path(args.config).resolve()),
        former_name=former,
        cluster_name=config.cluster_name,
    )
    where = f"ledger {old} is now {new}" if old != new else f"ledger {new}"
    print(f"carried cluster {former} over to {config.cluster_name}: {where}")
    if done.replaced is not None:
        print(f"the empty ledger that was at {new} is kept at {done.replaced}")
    for name, count in sorted(done.carried.items()):
        print(
            f"{count} live node(s) keep the tag steadyscale:cluster={name} (EC2 cannot change "
            "it); the daemon lists them by it too until they are gone"
        )
    if done.carried:
        print(
            "the daemon's IAM policy must let it terminate them: "
            f"steadyscale iam-policy {args.config} prints one that does"
        )
    print(f"next: steadyscale run {args.config}")
    return 0
