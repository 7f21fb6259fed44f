"""What a RunInstances asks of the model, how EC2 refuses one, and ClientToken idempotency:
the first answer given under a token is the answer to every retry with the same parameters,
and a retry with other parameters is refused (``IdempotentParameterMismatch``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from steadyscale.ec2model.catalogue import instance_vcpus

A = TypeVar("A")

_MISMATCH = (
    "The client token you have provided is associated with a resource that is already "
    "deleted or has different parameters. Please use a new client token."
)


class LaunchRefusedError(Exception):
    """EC2 refuses a launch: capacity, vCPU or instance limits, its resource bucket (503),
    or a ClientToken reused with other parameters."""

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Launch:
    """One RunInstances as the model sees it: MinCount..MaxCount instances of one pool."""

    instance_type: str
    availability_zone: str
    market: str
    min_count: int
    max_count: int
    client_token: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def pool(self) -> tuple[str, str, str]:
        return (self.instance_type, self.availability_zone, self.market)

    @property
    def vcpus(self) -> int:
        """vCPUs of one instance, from the instance type catalogue."""
        return instance_vcpus(self.instance_type)


def fingerprint(params: Mapping[str, Any]) -> str:
    """What must match for a repeated ClientToken to count as a retry: every RunInstances
    parameter but the token itself."""
    return json.dumps(
        {key: value for key, value in params.items() if key != "ClientToken"},
        sort_keys=True,
        default=str,
    )


class ClientTokens(Generic[A]):
    """The answers given under each ClientToken, with the fingerprint of their parameters.
    ``A`` is whatever a backend answers with (moto's reservation, or instance ids)."""

    def __init__(self) -> None:
        self._answers: dict[str, tuple[str, A]] = {}

    def replay(self, token: str | None, params_fingerprint: str) -> A | None:
        """The first answer under ``token``, or None for a new token (or none at all);
        raises ``IdempotentParameterMismatch`` when the parameters differ."""
        if not token:
            return None
        previous = self._answers.get(token)
        if previous is None:
            return None
        if previous[0] != params_fingerprint:
            raise LaunchRefusedError("IdempotentParameterMismatch", _MISMATCH)
        return previous[1]

    def remember(self, token: str | None, params_fingerprint: str, answer: A) -> None:
        if token:
            self._answers[token] = (params_fingerprint, answer)
