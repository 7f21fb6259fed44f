"""The ``ha`` block of the cluster config: replicas of ``steadyscale run`` on one PostgreSQL
ledger, one of which leads through a lease (see docs/ha.md). A SQLite ledger ignores it:
its file lock lets one daemon run at a time."""

from __future__ import annotations

import os
import re
import socket

from pydantic import Field, field_validator, model_validator

from steadyscale.config.base import StrictModel

# Safe in a User-Agent, a log line and a database column alike.
REPLICA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def default_replica_id() -> str:
    """``<hostname>-<pid>``: unique per process on a machine, readable in a call log."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname()).strip("-.") or "host"
    return f"{host[:50]}-{os.getpid()}"


def check_replica_id(value: str) -> str:
    if not REPLICA_ID.match(value):
        raise ValueError(
            f"replica id {value!r}: use letters, digits, '-', '_' or '.', starting with a "
            "letter or digit (at most 63 characters)"
        )
    return value


class HaConfig(StrictModel):
    """How replicas share a PostgreSQL ledger: the lease's timing and this replica's name."""

    lease_ttl_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How long the leader's lease lasts without renewal, by the database's "
        "clock: a follower takes over at most this long (plus one tick) after the leader "
        "died or was cut off.",
    )
    renew_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often the leader renews its lease (and a follower tries to take "
        "it). Below lease_ttl_seconds - margin_seconds, so one late renewal is survived.",
    )
    margin_seconds: float = Field(
        default=2.0,
        ge=0,
        description="The leader stops every EC2 call and ledger write this long before its "
        "lease could expire (counted from before the renewal was sent, on its own "
        "monotonic clock): room for the two clocks' rates to differ.",
    )
    replica_id: str | None = Field(
        default=None,
        description="This replica's name, in the lease, the logs and the User-Agent of its "
        "EC2 calls (`steadyscale-replica/<id>`); unique per replica. Default: "
        "`<hostname>-<pid>`; `steadyscale run --replica-id` overrides it.",
    )

    @field_validator("replica_id")
    @classmethod
    def _replica_id(cls, value: str | None) -> str | None:
        return None if value is None else check_replica_id(value)

    @model_validator(mode="after")
    def _timing(self) -> HaConfig:
        trust = self.lease_ttl_seconds - self.margin_seconds
        if trust <= 0:
            raise ValueError(
                f"margin_seconds ({self.margin_seconds:g}) must be below lease_ttl_seconds "
                f"({self.lease_ttl_seconds:g})"
            )
        if self.renew_interval_seconds >= trust:
            raise ValueError(
                f"renew_interval_seconds ({self.renew_interval_seconds:g}) must be below "
                f"lease_ttl_seconds - margin_seconds ({trust:g}), or the leader stops "
                "trusting its lease before it renews it"
            )
        return self


def idle_transaction_limit(ha: HaConfig) -> tuple[tuple[str, str], ...]:
    """A replica's ledger sessions: a transaction left open (its process paused or frozen
    mid-write) is ended by the server before the lease could expire, so the row lock its
    fence holds on the lease never holds a successor's takeover back."""
    limit_ms = max(1, int((ha.lease_ttl_seconds - ha.margin_seconds) * 1000))
    return (("idle_in_transaction_session_timeout", str(limit_ms)),)
