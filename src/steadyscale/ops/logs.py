"""Log output: human lines by default, one JSON object per line with ``--log-format json``,
and never a credential, token or piece of user data, whoever logged it.

Redaction runs on the handler, so it covers our loggers and botocore's alike (botocore's
debug output carries request headers and bodies: session tokens, signatures, UserData).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

LogFormat = Literal["human", "json"]
REDACTED = "[redacted]"
# Environment variables whose values are secrets wherever they turn up.
SECRET_ENV = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)
_PATTERNS = (
    # Access key ids (long-term AKIA, temporary ASIA).
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    # Header or key/value forms of secrets, tokens, signatures and user data: keep the
    # name, drop the value.
    re.compile(
        r"(?i)(['\"]?(?:x-amz-security-token|authorization|aws_secret_access_key|"
        r"aws_session_token|secretaccesskey|sessiontoken|secret_key|token|userdata|"
        r"user_data|password)['\"]?\s*[:=]\s*)(b?'[^']*'|\"[^\"]*\"|[^\s,&}]+)"
    ),
    re.compile(r"(Signature=)[0-9a-f]{16,}"),
    re.compile(r"(Credential=)[^,\s]+"),
)
# Fields of a record that JSON output carries beyond the message, when a caller sets them.
EXTRA_FIELDS = (
    "node_id",
    "instance_id",
    "node_type",
    "from_status",
    "to_status",
    "reason",
    "event",
    "count",
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret value and secret-looking field replaced."""
    for value in secrets:
        if value:
            text = text.replace(value, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    return text


def secrets_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    env = os.environ if environ is None else environ
    # Very short values (a test's "x") would blank out ordinary words.
    return tuple(v for name in SECRET_ENV if len(v := env.get(name, "")) >= 8)


# What every LogRecord carries; anything else on a record came from a caller's ``extra``.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


class RedactingFilter(logging.Filter):
    """Rewrites each record without secrets: its message with its arguments merged in, every
    string a caller passed in ``extra`` (a lifecycle reason quotes EC2's error text), and its
    traceback. The one place redaction happens, whatever the output format."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_ATTRIBUTES and isinstance(value, str):
                setattr(record, name, redact(value, self.secrets))
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        if record.exc_info:
            record.exc_text = redact(
                logging.Formatter().formatException(record.exc_info), self.secrets
            )
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_text:
            entry["traceback"] = record.exc_text
        return json.dumps(entry, default=str)


# The logger of every node's state change (steadyscale.lifecycle: one line a move, with
# its reason).
NODE_CHANGES_LOGGER = "steadyscale.lifecycle"


def configure_logging(
    *,
    level: str,
    log_format: LogFormat = "human",
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    node_changes: bool = False,
) -> logging.Handler:
    """Set up the root logger once for the process (the CLI's job). With ``node_changes``,
    every node's state change is logged (at info) even when ``level`` is quieter."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name("steadyscale")
    handler.addFilter(RedactingFilter(secrets_from_env(environ)))
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "steadyscale":  # ours from an earlier call; others stay
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    logging.getLogger(NODE_CHANGES_LOGGER).setLevel(
        logging.INFO if node_changes else logging.NOTSET
    )
    return handler


__all__ = ["JsonFormatter", "RedactingFilter", "configure_logging", "redact"]
