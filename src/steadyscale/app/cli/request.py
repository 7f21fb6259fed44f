"""``steadyscale request``: replace the cluster's demand, from ``--bundle`` and ``--count``
pairs or a YAML file, through the running daemon's API when one answers (and a read-write
token is at hand), else in its ledger (created if no daemon ran yet, so demand can be
staged); the daemon works toward it at its next tick."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from steadyscale.app.cli.common import Commands, load_config
from steadyscale.errors import SteadyscaleError

if TYPE_CHECKING:
    from steadyscale.config import ClusterConfig
    from steadyscale.core.resources import DemandItem
    from steadyscale.store.ledger import Ledger


def register(commands: Commands) -> None:
    request = commands.add_parser(
        "request",
        help="set the demand: resource bundles and counts",
        description="Replace the cluster's demand. Example: steadyscale request c.yaml "
        "--bundle CPU=2 --count 10 --bundle CPU=4,GPU=1 --count 2",
    )
    request.add_argument("config", metavar="CONFIG")
    request.add_argument(
        "--bundle",
        action="append",
        default=[],
        help="resources of one bundle, e.g. CPU=4,GPU=1 (repeatable)",
    )
    request.add_argument(
        "--count",
        action="append",
        type=int,
        default=[],
        help="how many of the preceding --bundle (repeatable)",
    )
    request.add_argument("--file", help="YAML list of {bundle: {...}, count: N}")
    request.add_argument("--clear", action="store_true", help="demand nothing")
    request.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    import time  # noqa: PLC0415

    items = demand_from_file(args.file) if args.file else []
    if args.bundle or args.count:
        items += demand_from_flags(args.bundle, args.count)
    if not items and not args.clear:
        raise SteadyscaleError("say what to demand: --bundle ... --count N, --file, or --clear")
    config = load_config(args.config)
    for item in items:
        _check_fits(config, item)
    how = _through_api(config, args.config, items)
    if how is None:
        ledger = staging_ledger(config, args.config)
        try:
            ledger.set_demand(items, time.time())
        finally:
            ledger.close()
    total = sum(i.count for i in items)
    said = f"demand set: {total} bundle(s)" if total else "demand cleared"
    print(f"{said}{how or ''}")
    return 0


def _through_api(config: ClusterConfig, config_path: str, items: list[DemandItem]) -> str | None:
    """Set the demand through the running daemon's API; None when none takes it (no
    daemon, no read-write token at hand, a follower): then the ledger directly."""
    from steadyscale.app.cli.through_api import daemon_client  # noqa: PLC0415
    from steadyscale.client import ApiError  # noqa: PLC0415
    from steadyscale.config import ledger_location  # noqa: PLC0415

    client = daemon_client(config, config_path, ledger_location(config, config_path), write=True)
    if client is None:
        return None
    with client:
        try:
            client.set_demand(items)
        except ApiError as exc:
            if exc.status in (0, 503):
                return None
            raise SteadyscaleError(f"the daemon's API at {client.url}: {exc.detail}") from None
    return f" (through the daemon's API at {client.url})"


def staging_ledger(config: ClusterConfig, config_path: str) -> Ledger:
    """The cluster's ledger, created when no daemon ran yet: demand can be staged before
    the first ``run``, which starts from it."""
    from steadyscale.app.renamed import refuse_if_renamed  # noqa: PLC0415
    from steadyscale.config import ledger_location  # noqa: PLC0415
    from steadyscale.store.ledger import Ledger, ledger_exists  # noqa: PLC0415

    path = ledger_location(config, config_path)
    if not ledger_exists(path):
        refuse_if_renamed(config, config_path, path)  # renamed: say so, not a new ledger
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
    return Ledger(path)


def demand_from_file(path: str) -> list[DemandItem]:
    """The demand in a YAML file: a list of ``{bundle: ..., count: N}``, or a mapping
    whose ``demand`` key holds one."""
    from pydantic import ValidationError  # noqa: PLC0415

    from steadyscale.config import read_yaml_document  # noqa: PLC0415
    from steadyscale.core.resources import DemandItem  # noqa: PLC0415

    raw = read_yaml_document(path)
    if isinstance(raw, dict) and "demand" in raw:
        raw = raw["demand"]
    if not isinstance(raw, list):
        raise SteadyscaleError(f"{path}: expected a list of {{bundle: ..., count: N}}")
    items: list[DemandItem] = []
    for index, entry in enumerate(raw):
        try:
            items.append(DemandItem.model_validate(entry))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise SteadyscaleError(f"{path}: [{index}].{where}: {first['msg']}") from None
    return items


def demand_from_flags(bundles: list[str], counts: list[int]) -> list[DemandItem]:
    """One item per ``--bundle`` and the ``--count`` after it."""
    from pydantic import ValidationError  # noqa: PLC0415

    from steadyscale.core.resources import DemandItem  # noqa: PLC0415

    if len(bundles) != len(counts):
        raise SteadyscaleError("give one --count after each --bundle")
    items: list[DemandItem] = []
    for text, count in zip(bundles, counts, strict=True):
        if count < 0:
            raise SteadyscaleError(f"--count must be >= 0, got {count}")
        try:
            items.append(DemandItem(bundle=parse_bundle(text), count=count))
        except ValidationError as exc:
            message = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise SteadyscaleError(f"bundle {text!r}: {message}") from None
    return items


def parse_bundle(text: str) -> dict[str, float]:
    from steadyscale.core.resources import RepeatedName, parse_amounts  # noqa: PLC0415

    try:
        return parse_amounts(text)
    except RepeatedName as exc:
        raise SteadyscaleError(
            f"bundle {text!r}: {exc}; give each resource once, e.g. CPU=4,GPU=1"
        ) from None
    except ValueError as exc:
        raise SteadyscaleError(
            f"bundle {text!r}: write resources as NAME=AMOUNT pairs, e.g. CPU=4,GPU=1 (not {exc})"
        ) from None


def _check_fits(config: ClusterConfig, item: DemandItem) -> None:
    """Refuse a bundle no node type fits, with the reason the daemon and ``status`` give."""
    from steadyscale.core.feasibility import why_infeasible  # noqa: PLC0415
    from steadyscale.core.resources import format_bundle  # noqa: PLC0415

    types = config.available_node_types
    infeasible = why_infeasible(item.bundle, types)
    if infeasible is not None:
        offers = "; ".join(f"{n} {format_bundle(t.resources)}" for n, t in types.items())
        raise SteadyscaleError(
            f"no node type can fit bundle {format_bundle(item.bundle)}: {infeasible[2]}; "
            f"node types offer {offers}"
        )
