"""Where a ledger is: a file path, or a PostgreSQL database named by a URL
(``postgresql://user[:password]@host[:port]/database[?...]``, also ``postgres://``).

A URL is never resolved as a path. Its password never leaves this object in text: ``str``
and ``repr`` show it as ``***`` (log lines, errors and ``status`` print the location), and
only the store that connects reads ``secret``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias
from urllib.parse import parse_qsl, urlsplit

from steadyscale.errors import ConfigError

SCHEMES = ("postgresql", "postgres")
_ANY_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
REDACTED = "***"


def is_url(text: str) -> bool:
    """Whether ``text`` names a location by URL (of any scheme) rather than a path."""
    return _ANY_SCHEME.match(text) is not None


@dataclass(frozen=True)
class DatabaseURL:
    """A PostgreSQL database URL; ``str()`` is the URL with its password as ``***``."""

    secret: str = field(repr=False)
    # Server settings for every session opened to it (``-c name=value``), after the URL's
    # own ``options``: a replica bounds how long its transaction may sit idle.
    settings: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        problem = url_problem(self.secret)
        if problem:
            raise ConfigError(f"ledger {redact(self.secret)}: {problem}")

    @property
    def redacted(self) -> str:
        return redact(self.secret)

    @property
    def database(self) -> str:
        return urlsplit(self.secret).path.lstrip("/")

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"DatabaseURL({self.redacted!r})"


LedgerLocation: TypeAlias = Path | DatabaseURL


def url_problem(text: str) -> str | None:
    """What is wrong with ``text`` as a ledger URL (one line, password-free), or None."""
    scheme = text.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        return (
            f"a ledger URL must start with postgresql:// or postgres://, not {scheme}://; "
            "or give a file path"
        )
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        return f"not a valid URL ({exc}); write postgresql://user@host:port/database"
    if not parts.hostname and "host" not in dict(parse_qsl(parts.query)):
        return "no host; write postgresql://user@host:port/database"
    if not parts.path.lstrip("/"):
        return (
            "no database; write postgresql://user@host:port/database "
            "(the database is the ledger: one per cluster)"
        )
    return None


def redact(text: str) -> str:
    """``text`` with the password of any database URL in it, and any ``password=`` query
    parameter, shown as ``***``."""
    text = re.sub(
        r"((?:postgresql|postgres)://[^:/@\s?#]*:)[^/\s?#]*(@)",
        rf"\g<1>{REDACTED}\g<2>",
        text,
        flags=re.IGNORECASE,
    )
    return re.sub(r"(password=)[^&\s]*", rf"\g<1>{REDACTED}", text, flags=re.IGNORECASE)


def location(text: str, base: Path) -> LedgerLocation:
    """The ledger at ``text``: a URL as it is, a path relative to ``base``."""
    if is_url(text):
        return DatabaseURL(text)
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path
