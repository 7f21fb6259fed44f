"""``steadyscale ledger adopt|export|import``: take over a cluster the ledger cannot explain,
and move a ledger as one JSON document. Each takes the ledger's writer lock (the daemon is
stopped) and says what it did in a few lines; bad input is one line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from steadyscale.app.cli.common import Commands, add_log_level, load_config
from steadyscale.errors import SteadyscaleError

if TYPE_CHECKING:
    from steadyscale.config import LedgerLocation
    from steadyscale.loop.takeover import Adoption
    from steadyscale.store.ledger import Ledger


def register(actions: Commands) -> None:
    adopt = actions.add_parser(
        "adopt",
        help="take over the cluster's instances the ledger does not track",
        description="List the instances tagged with CONFIG's cluster (not terminated) and "
        "take over each one the ledger does not track, as a node of the node type its "
        "steadyscale:node-type tag names, tagged with this ledger's id. Node types the "
        "config does not have retire as a removed node type's do. Then `steadyscale run` "
        "scales them like its own. Stop the daemon first.",
    )
    adopt.add_argument("config", metavar="CONFIG", help="the cluster config")
    adopt.set_defaults(func=adopt_cluster)
    export = actions.add_parser(
        "export",
        help="write the ledger as one JSON document (a backup, or to move it)",
        description="Write CONFIG's ledger as one versioned JSON document: its id, demand, "
        "launch requests with their ClientTokens and parameters, nodes with their history, "
        "and what it keeps of the config. Stop the daemon first.",
    )
    export.add_argument("config", metavar="CONFIG", help="the cluster config")
    export.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    export.set_defaults(func=export_ledger)
    load = actions.add_parser(
        "import",
        help="fill a new ledger from `ledger export`",
        description="Fill CONFIG's ledger, which must be new (no node, request or demand), "
        "from FILE, written by `steadyscale ledger export`. It keeps the exported ledger's "
        "id, so the instances that ledger launched are this one's.",
    )
    load.add_argument("config", metavar="CONFIG", help="the cluster config")
    load.add_argument("file", metavar="FILE", help="a file `steadyscale ledger export` wrote")
    load.set_defaults(func=import_ledger)
    for parser in (adopt, export, load):
        add_log_level(parser, default=argparse.SUPPRESS)


def adopt_cluster(args: argparse.Namespace) -> int:
    from steadyscale.app.runtime import open_runtime  # noqa: PLC0415
    from steadyscale.loop.takeover import adopt  # noqa: PLC0415

    config = load_config(args.config)
    if config.provider.type != "aws":
        raise SteadyscaleError(
            f"provider.type {config.provider.type} starts empty each run: nothing to adopt "
            "(adopt takes over the instances of an EC2 endpoint, provider.type aws)"
        )
    runtime = open_runtime(config, args.config)
    try:
        done = adopt(runtime.provider, runtime.ledger, runtime.clock.now())
    finally:
        runtime.close()
    _print_adoption(done, set(config.available_node_types), args.config)
    return 0


def _print_adoption(done: Adoption, configured: Collection[str], config_path: str) -> None:
    by_type = done.by_type()
    listed = ", ".join(f"{n} x {t}" for t, n in by_type.items()) or "none"
    print(f"adopted {len(done.adopted)} instance(s): {listed}")
    removed = {t: n for t, n in by_type.items() if t not in configured}
    for node_type, count in removed.items():
        print(
            f"{count} of node type {node_type}, which the config does not have: they retire "
            "like a removed node type's (terminated once configured nodes hold their demand)"
        )
    for refused in done.refused:
        print(f"not adopted: {refused.instance_id}: {refused.why}")
    if done.untagged:
        why = done.tag_error or "EC2 does not show them yet"
        print(
            f"{len(done.untagged)} instance(s) not tagged with the ledger's id yet ({why}); "
            f"they are adopted: run `steadyscale ledger adopt {config_path}` again later to "
            "tag them (it needs ec2:CreateTags on the cluster's instances)"
        )
    print(f"next: steadyscale run {config_path}")


def export_ledger(args: argparse.Namespace) -> int:
    from steadyscale.app.cli.common import ledger_file  # noqa: PLC0415
    from steadyscale.store.portable import export_ledger as export  # noqa: PLC0415

    config, path = ledger_file(args.config)
    ledger = _locked(path)
    try:
        text = json.dumps(export(ledger, config.cluster_name), indent=2, sort_keys=True) + "\n"
    finally:
        ledger.close()
    if args.output is None:
        print(text, end="")
        return 0
    target = Path(args.output)
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)  # whole or not at all: a backup is never half written
    except OSError as exc:
        raise SteadyscaleError(f"-o {args.output}: cannot write it ({exc.strerror})") from None
    print(f"exported ledger {path} to {target}")
    return 0


def import_ledger(args: argparse.Namespace) -> int:
    from steadyscale.config import ledger_location  # noqa: PLC0415
    from steadyscale.store.portable import import_ledger as load  # noqa: PLC0415

    config = load_config(args.config)
    try:
        document = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SteadyscaleError(f"{args.file}: cannot read it ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SteadyscaleError(
            f"{args.file}: not JSON ({exc}); give a file `steadyscale ledger export` wrote"
        ) from None
    path = ledger_location(config, args.config)
    ledger = _locked(path)
    try:
        nodes = load(ledger, document, source=args.file, cluster_name=config.cluster_name)
    finally:
        ledger.close()
    print(f"imported {args.file} into ledger {path}: {nodes} node(s)")
    print(f"next: steadyscale run {args.config}")
    return 0


def _locked(path: LedgerLocation) -> Ledger:
    """The ledger at ``path``, its writer lock taken first: no daemon runs on it (in a
    PostgreSQL database: its advisory lock, taken before anything else is written)."""
    from steadyscale.config import DatabaseURL  # noqa: PLC0415
    from steadyscale.store.ledger import Ledger, WriterLock  # noqa: PLC0415

    if isinstance(path, DatabaseURL):
        ledger = Ledger(path)
        try:
            ledger.acquire_writer()
        except BaseException:
            ledger.close()
            raise
        return ledger
    lock = WriterLock(path)
    lock.acquire()
    try:
        ledger = Ledger(path)
    except BaseException:
        lock.release()
        raise
    ledger.writer_lock = lock
    return ledger
