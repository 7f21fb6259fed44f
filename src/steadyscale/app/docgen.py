"""Documents generated from the code, so they cannot drift from it:
``docs/config-reference.md`` from the pydantic config models (their fields, types, bounds,
defaults, and the comment above each field) and ``docs/status.schema.json`` from the
``status --json`` model.

    python -m steadyscale.app.docgen            # rewrite both in docs/
    python -m steadyscale.app.docgen --check    # exit 1 and name the stale ones
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import types
import typing
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from steadyscale.config import ClusterConfig
from steadyscale.ec2model.settings import EmulatorSettings
from steadyscale.ops.status import StatusReport

# Keys whose meaning no comment in the code states (they are self-evident there).
_DESCRIPTIONS = {
    "ClusterConfig.cluster_name": "The cluster's name: tagged on every instance "
    "(`steadyscale:cluster`), so it scopes listings, termination and the IAM policy.",
    "ClusterConfig.max_workers": "Nodes at most, all node types together.",
    "ClusterConfig.upscaling_speed": "At most max(5, upscaling_speed x running nodes) "
    "nodes starting at once.",
    "ClusterConfig.idle_timeout_minutes": "A node idle this long (above min_workers) is "
    "terminated.",
    "ClusterConfig.loop_interval_seconds": "Seconds between two ticks of the loop.",
    "ClusterConfig.ledger": "Path of the SQLite ledger; relative to the config file. "
    "Default: `.steadyscale/<cluster_name>.db` beside the config.",
    "ClusterConfig.provider": "Where the instances run: see `provider` below.",
    "ClusterConfig.available_node_types": "Node types by name: see "
    "`available_node_types.<name>` below.",
    "NodeType.node_config": "RunInstances parameters (InstanceType and ImageId required; "
    "any other such as SubnetId, SecurityGroupIds, KeyName, IamInstanceProfile, "
    "TagSpecifications, UserData). MinCount, MaxCount and ClientToken are set by "
    "steadyscale.",
    "NodeType.resources": "What one node offers to demand, e.g. `{CPU: 4, GPU: 1}`.",
    "NodeType.min_workers": "Nodes of this type kept even without demand.",
    "NodeType.max_workers": "Nodes of this type at most.",
    "Provider.type": "`aws`: boto3 against EC2 (or `endpoint_url`); `emulator`: the "
    "embedded EC2 emulator, no AWS account needed.",
    "Provider.region": "AWS region.",
    "DemandItem.bundle": "Resources of one bundle, e.g. `{CPU: 2}`.",
    "DemandItem.count": "How many such bundles.",
    "ScenarioStep.demand": "The whole demand from then on (replaces the previous one).",
    "RateLimit.capacity": "Bucket size (burst).",
    "RateLimit.refill_per_second": "Tokens added per second.",
    "Provider.connect_timeout_seconds": "botocore's connect timeout per call.",
    "Provider.read_timeout_seconds": "botocore's read timeout per call.",
    "NodeType.spot_fallback_to_on_demand": "With `market: spot`, launch on-demand while "
    "every spot pool of the type is out of capacity.",
    "ScenarioStep.at_seconds": "Seconds after the daemon starts.",
    "EmulatorSettings.profile": "`none` (answers as moto does), `realistic` or `harsh`: "
    "the base the other keys override.",
    "EmulatorSettings.seed": "Seed of every drawn delay and fault: a run is reproducible.",
    "EmulatorSettings.time_scale": "Shrinks every delay alike: 0.1 runs ten times faster "
    "than real time (and so does the daemon's clock with the embedded emulator).",
    "EmulatorSettings.visibility": "Delay after launch until EC2 shows an instance.",
    "EmulatorSettings.visibility_by_operation": "The visibility delay per operation, "
    "overriding `visibility`.",
    "EmulatorSettings.boot": "Delay from pending to running.",
    "EmulatorSettings.shutdown": "Delay from shutting-down to terminated.",
    "EmulatorSettings.terminated_retention_seconds": "How long terminated instances stay listed.",
    "EmulatorSettings.stale_reads": "Reads that show an older state.",
    "EmulatorSettings.throttling": "EC2's request and resource token buckets.",
    "EmulatorSettings.capacity": "Capacity per (instance type, AZ, market) pool and "
    "account limits.",
    "EmulatorSettings.errors": "Server errors, lost responses and timeouts.",
    "EmulatorSettings.spot": "Spot interruptions.",
    "Distribution.median": "Median delay, seconds.",
    "Distribution.p99": "99th percentile, seconds.",
    "Distribution.max": "Largest delay, seconds.",
    "StaleReads.probability": "Chance that a read after a state change shows the old state.",
    "StaleReads.window": "How long after a change a read may be stale.",
    "Throttling.enabled": "Answer RequestLimitExceeded when a bucket is empty.",
    "Throttling.scale": "Multiplies every bucket's capacity and refill rate.",
    "Throttling.request_buckets": "Calls per action (or per class: mutating, non-mutating).",
    "Throttling.resource_buckets": "Instances launched or terminated.",
    "Bucket.capacity": "Bucket size (burst).",
    "Bucket.refill_per_second": "Tokens added per second.",
    "Capacity.default_pool_size": "Instances per pool when `pools` does not name it; "
    "null: unlimited.",
    "Capacity.pools": "Instances per pool, by `TYPE/AZ` or `TYPE/AZ/spot` (`*` matches).",
    "Capacity.vcpu_limit": "Account vCPU limit (VcpuLimitExceeded); null: none.",
    "Capacity.instance_limit": "Account instance limit (InstanceLimitExceeded); null: none.",
    "Capacity.shortage_duration": "How long a shortage spell lasts.",
    "Errors.timeout_seconds": "How long a timed-out call is held before the connection drops.",
    "Spot.interruption_rate_per_hour": "Interruptions per spot instance per hour.",
}


def _field_comments(model: type[BaseModel]) -> dict[str, str]:
    """The ``#`` comment lines right above each field of ``model``'s class body."""
    try:
        lines, _ = inspect.getsourcelines(model)
    except (OSError, TypeError):
        return {}
    found: dict[str, str] = {}
    comment: list[str] = []
    for line in lines[1:]:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("#") and indent == 4:
            comment.append(stripped.lstrip("#").strip())
            continue
        match = re.match(r"^(\w+)\s*:", stripped) if indent == 4 else None
        if match and comment:
            found[match.group(1)] = " ".join(comment)
        if indent <= 4 or stripped:
            comment = []
    return found


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " or ".join(f"`{a}`" for a in args)
    if origin in (types.UnionType, typing.Union):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map of {_type_name(args[0])} to {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " or ".join(f"`{m.value}`" for m in annotation)
    if annotation is Any:
        return "any value"
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        if isinstance(item, annotated_types.Ge):
            parts.append(f">= {item.ge}")
        elif isinstance(item, annotated_types.Gt):
            parts.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Le):
            parts.append(f"<= {item.le}")
        elif isinstance(item, annotated_types.Lt):
            parts.append(f"< {item.lt}")
    return ", ".join(parts)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True, validated_data={})
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, dict):
        value = {
            str(k): v.model_dump(mode="json") if isinstance(v, BaseModel) else v
            for k, v in value.items()
        }
    elif isinstance(value, Enum):
        value = value.value
    text = json.dumps(value, separators=(", ", ": "))
    return f"`{text}`"


def _nested(annotation: Any, path: str) -> list[tuple[str, type[BaseModel]]]:
    """Models inside a field's type, with the key path they appear under."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(path, annotation)]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is list:
        return _nested(args[0], f"{path}[]")
    if origin is dict:
        key = "<name>" if args[0] is str else "<key>"
        return _nested(args[1], f"{path}.{key}")
    if origin in (types.UnionType, typing.Union):
        return [found for a in args for found in _nested(a, path)]
    return []


def _sections() -> list[tuple[str, type[BaseModel]]]:
    sections: list[tuple[str, type[BaseModel]]] = []
    queue: list[tuple[str, type[BaseModel]]] = [("", ClusterConfig)]
    while queue:
        path, model = queue.pop(0)
        if any(model is m and path == p for p, m in sections):
            continue
        sections.append((path, model))
        for name, field in model.model_fields.items():
            key = f"{path}.{name}" if path else name
            queue += _nested(field.annotation, key)
            if model.__name__ == "Provider" and name == "emulator":
                queue.append((key, EmulatorSettings))
    return sections


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def config_reference() -> str:
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m steadyscale.app.docgen` from the config models in",
        "     src/steadyscale/config/models.py; do not edit by hand. -->",
        "",
        "A cluster config is a YAML file; `steadyscale validate CONFIG` checks it and names "
        "the key path of anything wrong. Unknown keys are refused. See the "
        "[user guide](user-guide.md) for a walk-through and `examples/` for complete files.",
    ]
    shown: dict[type[BaseModel], str] = {}
    for path, model in _sections():
        title = f"`{path}`" if path else "Top level"
        lines += ["", f"## {title}", ""]
        if model in shown:
            lines.append(f"The same keys as `{shown[model]}`.")
            continue
        shown[model] = path
        doc = model.__dict__.get("__doc__")  # the model's own, never BaseModel's
        if doc:
            lines += [" ".join(doc.split()), ""]
        lines += ["| key | type | default | description |", "|---|---|---|---|"]
        comments = _field_comments(model)
        for name, field in model.model_fields.items():
            kind = _type_name(field.annotation)
            bounds = _bounds(field)
            if bounds:
                kind += f", {bounds}"
            description = (
                field.description
                or comments.get(name)
                or _DESCRIPTIONS.get(f"{model.__name__}.{name}", "")
            )
            lines.append(
                f"| `{name}` | {_cell(kind)} | {_cell(_default(field))} | {_cell(description)} |"
            )
    return "\n".join(lines) + "\n"


def status_schema() -> str:
    schema = StatusReport.model_json_schema()
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


GENERATED = {"config-reference.md": config_reference, "status.schema.json": status_schema}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m steadyscale.app.docgen",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a generated file is stale"
    )
    parser.add_argument("--docs", default="docs", help="the docs directory (default docs)")
    args = parser.parse_args(argv)
    docs = Path(args.docs)
    stale = []
    for name, make in GENERATED.items():
        path = docs / name
        text = make()
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(str(path))
        else:
            docs.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(
            f"stale: {', '.join(stale)}; regenerate with: python -m steadyscale.app.docgen",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
