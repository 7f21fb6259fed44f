"""``steadyscale validate``: check a cluster config (and, for real EC2, that credentials
exist) and say in one line what is wrong, or what the config describes."""

from __future__ import annotations

import argparse

from steadyscale.app.cli.common import Commands, load_config
from steadyscale.errors import SteadyscaleError


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
    )
    print(
        f"ok: cluster {config.cluster_name}, provider {config.provider.type} "
        f"({config.provider.region}), node types: {types}"
    )
    return 0
