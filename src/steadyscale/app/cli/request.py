"""``steadyscale request``: replace the cluster's demand in its ledger, from ``--bundle`` and
``--count`` pairs or a YAML file; the daemon works toward it at its next tick."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from steadyscale.app.cli.common import Commands, open_ledger
from steadyscale.errors import SteadyscaleError

if TYPE_CHECKING:
    from steadyscale.config import ClusterConfig
    from steadyscale.core.resources import DemandItem


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
    config, ledger = open_ledger(args.config)
    try:
        for item in items:
            _check_fits(config, item)
        ledger.set_demand(items, time.time())
    finally:
        ledger.close()
    total = sum(i.count for i in items)
    print(f"demand set: {total} bundle(s)" if total else "demand cleared")
    return 0


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
