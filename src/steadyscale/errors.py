"""Error types shared across steadyscale. The CLI turns each into one clear line."""

from __future__ import annotations


class SteadyscaleError(Exception):
    """Base class for errors that carry a message meant for the user."""


class ConfigError(SteadyscaleError):
    """A configuration value is wrong. ``path`` names the key, like ``errors.timeout_seconds``."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class EmulatorStartError(SteadyscaleError):
    """The emulator could not start (for example, its port is in use)."""


class CloudError(SteadyscaleError):
    """An EC2 call failed. ``code`` is EC2's error code (or a transport error's name)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class Throttled(CloudError):  # noqa: N818 - the name says what happened
    """EC2 refused the call for its rate limits (RequestLimitExceeded)."""


class CloudUnavailable(CloudError):  # noqa: N818
    """A 5xx answer, a timeout or a dropped connection: the call may or may not have happened."""


class CapacityUnavailable(CloudError):  # noqa: N818
    """EC2 has no capacity for the request (or an account limit stands in the way)."""


class LaunchRejected(CloudError):  # noqa: N818
    """EC2 refused a launch for its parameters (bad AMI, bad subnet, ...)."""


class ProviderSetupError(SteadyscaleError):
    """The cloud cannot be used at all: no credentials, an unreachable endpoint."""


# EC2's error codes by what they mean to a caller. The boto3 provider and the in-memory
# backend both turn codes into errors through ``cloud_error``, so they cannot drift apart.
THROTTLE_CODES = frozenset(
    {"RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled"}
)
CAPACITY_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "VcpuLimitExceeded",
        "InstanceLimitExceeded",
        "MaxSpotInstanceCountExceeded",
        "SpotMaxPriceTooLow",
        "Unsupported",
    }
)
SERVER_CODES = frozenset({"InternalError", "InternalFailure", "Unavailable", "ServiceUnavailable"})
CREDENTIAL_CODES = frozenset(
    {"AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "OptInRequired"}
)


def cloud_error(code: str, message: str, status: int = 400) -> SteadyscaleError:
    """The error an EC2 answer with this code (and HTTP status) means to the autoscaler."""
    if code in THROTTLE_CODES:
        return Throttled(code, message)
    if code in CAPACITY_CODES:
        return CapacityUnavailable(code, message)
    if code in SERVER_CODES or status >= 500:
        return CloudUnavailable(code, message)
    if code in CREDENTIAL_CODES:
        return ProviderSetupError(f"EC2 refused our credentials ({code}): {message}")
    # Everything else, UnauthorizedOperation included (a policy may deny one instance
    # type and allow another), is final for this call only.
    return LaunchRejected(code, message)
