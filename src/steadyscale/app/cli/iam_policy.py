"""``steadyscale iam-policy``: the least-privilege IAM policy (JSON) the daemon needs for a
cluster config."""

from __future__ import annotations

import argparse

from steadyscale.app.cli.common import Commands, load_config


def register(commands: Commands) -> None:
    iam = commands.add_parser(
        "iam-policy",
        help="print the least-privilege IAM policy the config needs",
        description="Print the IAM policy (JSON) the daemon needs for this config: every "
        "EC2 action it calls, scoped by the cluster tag where EC2 allows.",
    )
    iam.add_argument("config", metavar="CONFIG")
    iam.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from steadyscale.ops.iam import build_policy  # noqa: PLC0415

    print(json.dumps(build_policy(load_config(args.config)), indent=2))
    return 0
