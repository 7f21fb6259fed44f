"""The cluster config: a YAML file close to Ray's cluster YAML, in pydantic.

Each model checks its own keys (node types, provider and metrics have their own modules);
``loading`` reads a file into them and ``validation`` checks what a model alone cannot.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from steadyscale.config.api import ApiConfig
from steadyscale.config.base import StrictModel
from steadyscale.config.ha import HaConfig
from steadyscale.config.location import is_url, url_problem
from steadyscale.config.metrics import MetricsConfig
from steadyscale.config.node_types import NodeType
from steadyscale.config.provider import Provider
from steadyscale.core.resources import DemandItem, fits, format_bundle

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
# Like a Kubernetes rolling update: a quarter of the nodes being replaced at a time.
DEFAULT_MAX_SURGE = "25%"


class ScenarioStep(StrictModel):
    """At ``at_seconds`` after start, the demand becomes ``demand``."""

    at_seconds: float = Field(ge=0, description="Seconds after the daemon starts.")
    demand: list[DemandItem] = Field(
        default_factory=list,
        description="The whole demand from then on (replaces the previous one).",
    )


class ClusterConfig(StrictModel):
    cluster_name: str = Field(
        description="The cluster's name: tagged on every instance (`steadyscale:cluster`), "
        "so it scopes listings, termination and the IAM policy. Renaming a cluster that has "
        "nodes takes `steadyscale ledger carry-over` (see the user guide)."
    )
    max_workers: int = Field(
        default=100, ge=0, description="Nodes at most, all node types together."
    )
    upscaling_speed: float = Field(
        default=1.0,
        gt=0,
        description="New nodes may be starting at once: max(5, upscaling_speed x max(1, "
        "running nodes)).",
    )
    idle_timeout_minutes: float = Field(
        default=5.0,
        ge=0,
        description="A node idle this long (above min_workers) is terminated.",
    )
    max_surge: int | str = Field(
        default=DEFAULT_MAX_SURGE,
        description="While a config change replaces nodes (a node type removed, or its "
        "node_config changed, e.g. a new ImageId), at most this many replacement nodes start "
        "at once beyond what the demand needs: a number of nodes, or a percentage of the "
        "nodes being replaced (rounded up; at least 1). A replaced node is terminated only "
        "once ready replacements hold its demand.",
    )
    loop_interval_seconds: float = Field(
        default=5.0, gt=0, description="Seconds between two ticks of the loop."
    )
    listing_interval_seconds: float = Field(
        default=30.0,
        gt=0,
        description="The full cluster listing (interruptions, strangers) runs at least this "
        "often; between listings only starting and terminating nodes are looked up.",
    )
    lookup_deadline_seconds: float = Field(
        default=5.0,
        gt=0,
        description='A single-instance lookup retries with backoff this long before "not '
        'visible yet".',
    )
    visibility_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        description="An instance EC2 has never shown this long after launch is LOST (and "
        "terminated by id).",
    )
    unavailable_offering_ttl_seconds: float = Field(
        default=180.0,
        ge=0,
        description="A (node type, subnet, market) pool that ran out of capacity is skipped "
        "this long.",
    )
    gc_grace_seconds: float = Field(
        default=300.0,
        ge=0,
        description="An instance this ledger launched (its steadyscale:ledger-id tag) under "
        "a launch request it gave up, and tracks no node for, is terminated this long after "
        "its launch. Cluster instances the ledger cannot explain (another ledger's id, or "
        "none) are never terminated: they are reported, and `steadyscale ledger adopt` takes "
        "them over.",
    )
    max_tick_seconds: float = Field(
        default=60.0,
        gt=0,
        description="No tick may take longer than this; slower calls are left for the next tick.",
    )
    ledger: str | None = Field(
        default=None,
        description="Where the ledger is: a SQLite file path, relative to the config file "
        "(default: `.steadyscale/<cluster_name>.db` beside the config), or a PostgreSQL "
        "database URL `postgresql://user[:password]@host[:port]/database` (also "
        "`postgres://`; one database per cluster), which several replicas can share. A "
        "password in the URL is shown as `***` in logs, errors and `status`; libpq's "
        "`PGPASSWORD` or `~/.pgpass` keep it out of the config.",
    )
    metrics: MetricsConfig = Field(
        default_factory=MetricsConfig, description="Prometheus metrics and /healthz."
    )
    api: ApiConfig | None = Field(
        default=None,
        description="The HTTP API `steadyscale run` serves (demand, nodes, usage, drain, "
        "events, the web page): see `api` below and docs/api.md. Without this section "
        "(and without `run --api`) nothing is served.",
    )
    ha: HaConfig | None = Field(
        default=None,
        description="With a PostgreSQL ledger: the lease's timing and this replica's name "
        "(see `ha` below and docs/ha.md). Every daemon on a database ledger is one of any "
        "number of replicas, one leading through a lease; without this section its defaults "
        "apply. Ignored with a SQLite ledger.",
    )
    provider: Provider = Field(description="Where the instances run: see `provider` below.")
    available_node_types: dict[str, NodeType] = Field(
        description="Node types by name: see `available_node_types.<name>` below."
    )
    scenario: list[ScenarioStep] = Field(
        default_factory=list,
        description="Optional scripted demand (the quick start uses it); ends the run when done.",
    )
    prices: dict[str, float] = Field(
        default_factory=dict,
        description="Optional prices in dollars per instance-hour, by instance type "
        "(simulation reports).",
    )

    @field_validator("prices")
    @classmethod
    def _prices(cls, value: dict[str, float]) -> dict[str, float]:
        for name, price in value.items():
            if price < 0:
                raise ValueError(f"{name}: a price per hour must be >= 0, got {price:g}")
        return value

    @field_validator("max_surge", mode="before")
    @classmethod
    def _max_surge(cls, value: object) -> int | str:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        if isinstance(value, str):
            match = _PERCENT.match(value)
            if match and 0 < float(match.group(1)) <= 100:
                return f"{match.group(1)}%"
        raise ValueError(
            f"{value!r}: give a number of nodes >= 1 (e.g. 2) or a percentage of the nodes "
            "being replaced, above 0 and at most 100 (e.g. 25%)"
        )

    @field_validator("ledger")
    @classmethod
    def _ledger_location(cls, value: str | None) -> str | None:
        if value is not None and is_url(value):
            problem = url_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("cluster_name")
    @classmethod
    def _cluster_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "use letters, digits, '-', '_' or '.', starting with a letter or digit "
                "(at most 63 characters)"
            )
        return value

    @field_validator("available_node_types")
    @classmethod
    def _node_types(cls, value: dict[str, NodeType]) -> dict[str, NodeType]:
        if not value:
            raise ValueError("define at least one node type")
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"node type name {name!r}: use letters, digits, '-', '_', '.'")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> ClusterConfig:
        total_min = sum(t.min_workers for t in self.available_node_types.values())
        if total_min > self.max_workers:
            raise ValueError(
                f"the node types' min_workers add up to {total_min}, more than "
                f"max_workers ({self.max_workers})"
            )
        if self.listing_interval_seconds >= self.visibility_timeout_seconds:
            raise ValueError(
                f"listing_interval_seconds ({self.listing_interval_seconds:g}) must be below "
                f"visibility_timeout_seconds ({self.visibility_timeout_seconds:g})"
            )
        times = [step.at_seconds for step in self.scenario]
        if times != sorted(times):
            raise ValueError("scenario steps must be in time order")
        for index, step in enumerate(self.scenario):
            for item in step.demand:
                if not any(
                    fits(item.bundle, t.resources) for t in self.available_node_types.values()
                ):
                    raise ValueError(
                        f"scenario[{index}]: no node type can fit bundle "
                        f"{format_bundle(item.bundle)}"
                    )
        return self

    @property
    def idle_timeout_seconds(self) -> float:
        return self.idle_timeout_minutes * 60.0
