"""The cluster config: models (pydantic), loading from YAML, and validation against EC2's
own model. Other packages import these names from here."""

from steadyscale.config.api import ApiConfig
from steadyscale.config.ha import HaConfig, check_replica_id, default_replica_id
from steadyscale.config.loading import (
    describe_validation_error,
    ledger_location,
    ledger_path,
    load_config,
    parse_config,
    parse_yaml,
    read_text_file,
    read_yaml_document,
    read_yaml_file,
)
from steadyscale.config.location import DatabaseURL, LedgerLocation
from steadyscale.config.metrics import MetricsConfig
from steadyscale.config.models import ClusterConfig, ScenarioStep
from steadyscale.config.node_types import HealthCheck, NodeType
from steadyscale.config.provider import DEFAULT_RATE_LIMITS, Provider, RateLimit, bucket_pairs
from steadyscale.config.validation import (
    ec2_actions,
    known_instance_types,
    run_instances_problem,
)

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "ApiConfig",
    "ClusterConfig",
    "DatabaseURL",
    "HaConfig",
    "HealthCheck",
    "LedgerLocation",
    "MetricsConfig",
    "NodeType",
    "Provider",
    "RateLimit",
    "ScenarioStep",
    "bucket_pairs",
    "check_replica_id",
    "default_replica_id",
    "describe_validation_error",
    "ec2_actions",
    "known_instance_types",
    "ledger_location",
    "ledger_path",
    "load_config",
    "parse_config",
    "parse_yaml",
    "read_text_file",
    "read_yaml_document",
    "read_yaml_file",
    "run_instances_problem",
]
