"""A node type's drain: how its workload is asked to let go of a node before steadyscale
terminates it (a command or an HTTP call per node), and how long to wait for its ack."""

from __future__ import annotations

import string
from typing import Literal

from pydantic import Field, field_validator, model_validator

from steadyscale.config.base import StrictModel

# What a hook's URL or argv may name of the node it drains.
PLACEHOLDERS = ("instance_id", "node_id", "node_type", "private_ip")


def check_placeholders(text: str) -> str:
    """``text`` if it names only known placeholders (``{instance_id}``...), else ValueError."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc} (write a literal brace as {{{{ or }}}})") from None
    for name in names:
        if name not in PLACEHOLDERS:
            raise ValueError(
                f"{text!r}: unknown placeholder {{{name}}}; use "
                + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            )
    return text


class HttpHook(StrictModel):
    """An HTTP request per node to drain."""

    url: str = Field(
        description="URL to call; may use `{instance_id}`, `{node_id}`, `{node_type}` and "
        "`{private_ip}`. A 2xx answer is a success."
    )
    method: Literal["POST", "PUT", "GET", "DELETE"] = Field(
        default="POST", description="HTTP method of the call."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r}: give an http:// or https:// URL")
        return check_placeholders(value)


class DrainHookConfig(StrictModel):
    """What asks the workload to drain a node: a command or an HTTP call (one of them)."""

    command: list[str] | None = Field(
        default=None,
        description="A command run without a shell, as an argv list (placeholders as in "
        "`http.url` in each argument); exit status 0 is a success.",
    )
    http: HttpHook | None = Field(default=None, description="An HTTP call.")

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value or not value[0]:
                raise ValueError("give the command as a list: [program, argument, ...]")
            for argument in value:
                check_placeholders(argument)
        return value

    @model_validator(mode="after")
    def _one(self) -> DrainHookConfig:
        if (self.command is None) == (self.http is None):
            raise ValueError("set exactly one of command or http")
        return self


class Drain(StrictModel):
    """Drain a node of this type before terminating it."""

    hook: DrainHookConfig | None = Field(
        default=None,
        description="Called once per node when its drain starts. Without one, the drain "
        "waits for the workload's ack (through the API) or the timeout.",
    )
    hook_timeout_seconds: float = Field(
        default=30.0, gt=0, description="A hook call that takes longer fails."
    )
    timeout_seconds: float = Field(
        default=300.0,
        ge=0,
        description="How long to wait for the workload's ack before terminating anyway. "
        "A node the workload never reported usage for goes as soon as its hook succeeds.",
    )


ScaleDownMode = Literal["packed", "reported"]
