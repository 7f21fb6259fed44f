"""The ``api`` block of the cluster config: where ``steadyscale run`` serves the HTTP API
(demand, nodes, usage, drain, events, the web page), where its bearer tokens are read
from, and its limits. Tokens are never in the config itself: a file, or the environment
(``STEADYSCALE_API_TOKEN``, ``STEADYSCALE_API_READ_TOKEN``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from steadyscale.config.base import StrictModel

DEFAULT_PORT = 8470
# Keys a user might write a token under: refused with where tokens go instead.
_TOKEN_KEYS = ("token", "tokens", "read_token", "read_tokens", "api_token", "bearer")


class ApiConfig(StrictModel):
    """Where the HTTP API listens, its tokens' files and its limits."""

    listen: str = Field(
        default=f"127.0.0.1:{DEFAULT_PORT}",
        description="HOST:PORT the API listens on (port 0 picks a free one, printed at "
        "start). Beyond loopback, the daemon refuses to start without tokens.",
    )
    tokens_file: str | None = Field(
        default=None,
        description="File of read-write bearer tokens, one per line as `NAME:TOKEN` (or a "
        "bare token, named by its fingerprint); relative to the config file. Also "
        "`STEADYSCALE_API_TOKEN` in the environment. Every mutation needs one.",
    )
    read_tokens_file: str | None = Field(
        default=None,
        description="File of read-only bearer tokens, same format; also "
        "`STEADYSCALE_API_READ_TOKEN`. With any token set, every request needs one.",
    )
    max_body_bytes: int = Field(
        default=1_048_576, gt=0, description="Larger request bodies are refused (413)."
    )
    rate_limit_per_second: float = Field(
        default=50.0, gt=0, description="Requests per second allowed per token (429 beyond)."
    )
    rate_limit_burst: int = Field(
        default=200, gt=0, description="Requests a token may send at once before the limit."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_tokens_here(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in _TOKEN_KEYS:
                if key in data:
                    raise ValueError(
                        f"api.{key}: tokens never go in the config file; put them in a file "
                        "named by api.tokens_file (or api.read_tokens_file), or in "
                        "STEADYSCALE_API_TOKEN / STEADYSCALE_API_READ_TOKEN"
                    )
        return data

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, port = split_listen(value)
        return f"{host}:{port}"

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]


def split_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``[::1]:PORT``) as (host, port); ValueError saying how to fix it."""
    host, sep, number = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not number.isdigit() or not 0 <= int(number) <= 65535:
        raise ValueError(
            f"give HOST:PORT, e.g. 127.0.0.1:{DEFAULT_PORT} (port 0 picks a free one), got {text!r}"
        )
    return host, int(number)
