"""One way to make a boto3 client (EC2, SQS, EventBridge) for a region and endpoint: from a
session of its own, as a setup error when boto3 cannot make it.

A session of its own: boto3's default session keeps the credentials it first found for
every later client of the process, so a client made with explicit credentials (a test's,
a second endpoint's) would change what the next one signs with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from steadyscale.errors import ProviderSetupError

_NAMES = {"ec2": "EC2", "sqs": "SQS", "events": "EventBridge"}


def new_client(
    service: str,
    *,
    region: str,
    endpoint_url: str | None,
    config: Config,
    credentials: Mapping[str, str] | None = None,
) -> Any:
    """A ``service`` client; ``ProviderSetupError`` (one line) when boto3 refuses."""
    make: Any = boto3.session.Session().client  # the service is a runtime choice
    try:
        return make(
            service,
            region_name=region,
            endpoint_url=endpoint_url,
            config=config,
            **(credentials or {}),
        )
    except (BotoCoreError, ValueError) as exc:
        name = _NAMES.get(service, service)
        raise ProviderSetupError(f"cannot create an {name} client: {exc}") from None
