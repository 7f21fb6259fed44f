"""The boto3 provider pointed at an emulator, as the provider tests make it."""

from __future__ import annotations

from steadyscale.providers.aws import EC2Provider
from steadyscale.providers.protocol import ClientOptions
from steadyscale.retries.clock import Clock

CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def emulated_provider(
    endpoint_url: str,
    clock: Clock,
    *,
    max_attempts: int = 1,
    seed: int | None = None,
    replica_id: str | None = None,
) -> EC2Provider:
    """Cluster ``c`` in us-east-1 on the emulator at ``endpoint_url``."""
    return EC2Provider(
        cluster_name="c",
        region="us-east-1",
        clock=clock,
        endpoint_url=endpoint_url,
        credentials=CREDS,
        seed=seed,
        options=ClientOptions(max_attempts=max_attempts, replica_id=replica_id),
    )
