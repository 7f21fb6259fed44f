"""What every command shares: the parser whose usage errors are one line, reading the
cluster config (one line naming the key on any error), the loopback check behind every
"reachable beyond this machine" warning, and finding a cluster's ledger."""

from __future__ import annotations

import argparse
import ipaddress
from typing import TYPE_CHECKING, NoReturn, TypeAlias

from steadyscale.errors import SteadyscaleError

if TYPE_CHECKING:
    from steadyscale.config import ClusterConfig, LedgerLocation
    from steadyscale.store.ledger import Ledger

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: what is wrong and where to look."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


# What each command module adds its parser to.
Commands: TypeAlias = "argparse._SubParsersAction[Parser]"


def add_log_level(parser: argparse.ArgumentParser, *, default: object = None) -> None:
    """``--log-level``, which ``steadyscale`` takes before the command and each command
    after it. A command gives ``default=argparse.SUPPRESS``: argparse then sets the value
    only when the flag follows the command, so that one wins and otherwise the value
    given before the command stands."""
    parser.add_argument(
        "--log-level",
        default=default,
        choices=["debug", "info", "warning", "error"],
        help="default: warning, or info with --log-format json; run also "
        "logs every node's state change when stderr is not a terminal or "
        "with --quiet. May come before or after the command",
    )


def load_config(path: str) -> ClusterConfig:
    """The cluster config at ``path``, with the settings of its emulated EC2 checked."""
    from steadyscale.app.loading import load_cluster_config  # noqa: PLC0415

    return load_cluster_config(path)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that resolves elsewhere, as far as we know


def ledger_file(config_path: str) -> tuple[ClusterConfig, LedgerLocation]:
    """The config and where its ledger is (a file, or a PostgreSQL database), which must
    exist (the daemon made it)."""
    from steadyscale.config import ledger_location  # noqa: PLC0415
    from steadyscale.store.ledger import ledger_exists  # noqa: PLC0415

    config = load_config(config_path)
    path = ledger_location(config, config_path)
    if not ledger_exists(path):
        from steadyscale.app.renamed import refuse_if_renamed  # noqa: PLC0415

        refuse_if_renamed(config, config_path, path)  # renamed: say so, not "start it"
        raise SteadyscaleError(
            f"no ledger at {path} yet; start the cluster with: steadyscale run {config_path}"
        )
    return config, path


def open_ledger(config_path: str) -> tuple[ClusterConfig, Ledger]:
    from steadyscale.store.ledger import Ledger  # noqa: PLC0415

    config, path = ledger_file(config_path)
    return config, Ledger(path)
