"""``steadyscale events setup|teardown CONFIG``: the SQS queue the config's ``events`` block
names, the queue policy EventBridge needs, and the EventBridge rules (state changes, spot
interruption warnings, rebalance recommendations, AWS Health scheduled changes) that send
EC2's events to it; made idempotently, or removed. At the provider's region and endpoint."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from steadyscale.app.cli.common import Commands, load_config
from steadyscale.errors import ConfigError

if TYPE_CHECKING:
    from steadyscale.providers.event_setup import EventSetup


def register(commands: Commands) -> None:
    events = commands.add_parser(
        "events",
        help="set up (or tear down) the SQS queue and EventBridge rules for EC2's events",
        description="Make the SQS queue of the config's events block, its queue policy "
        "(EventBridge may send from the rules made here, and nothing else), and the "
        "EventBridge rules that send EC2's state changes, spot interruption warnings, "
        "rebalance recommendations and AWS Health scheduled changes to it; or remove them. "
        "Idempotent: what exists is said and left as it is.",
    )
    actions = events.add_subparsers(dest="action", metavar="ACTION", parser_class=type(events))
    actions.required = True
    setup = actions.add_parser(
        "setup", help="create the queue, its policy and the rules (what is missing)"
    )
    setup.add_argument("config", metavar="CONFIG")
    setup.set_defaults(func=execute_setup)
    teardown = actions.add_parser("teardown", help="remove the rules and the queue")
    teardown.add_argument("config", metavar="CONFIG")
    teardown.add_argument(
        "--keep-queue", action="store_true", help="remove the rules only; keep the queue"
    )
    teardown.set_defaults(func=execute_teardown)


def _setup_for(path: str) -> EventSetup:
    from steadyscale.providers.event_setup import EventSetup, event_clients  # noqa: PLC0415

    config = load_config(path)
    if config.events is None:
        raise ConfigError(
            f"{path}: no events block; add one naming the queue, e.g. "
            "events: {queue_name: steadyscale-events}"
        )
    if config.provider.type != "aws":
        raise ConfigError(
            f"{path}: provider.type {config.provider.type} has no queue to set up: the "
            "embedded emulator sets its queue and rules up itself when `steadyscale run` "
            "starts; for a shared emulator (`steadyscale emulator`), use provider.type aws "
            "with its endpoint_url"
        )
    sqs, bus = event_clients(config)
    return EventSetup(config, sqs, bus)


def execute_setup(args: argparse.Namespace) -> int:
    steps = _setup_for(args.config).setup()
    for step in steps:
        print(step.line())
    made = sum(1 for s in steps if s.outcome in ("created", "updated"))
    print(f"{made} made or updated, {len(steps) - made} already in place")
    return 0


def execute_teardown(args: argparse.Namespace) -> int:
    for step in _setup_for(args.config).teardown(keep_queue=args.keep_queue):
        print(step.line())
    return 0
