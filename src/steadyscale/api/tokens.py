"""The API's bearer tokens: read-write and read-only, read from files or the environment
(never the command line, never the config in clear), known by name or fingerprint. A
token itself is never logged, kept in the audit log or shown; its fingerprint is."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from steadyscale.config import ApiConfig
from steadyscale.errors import SteadyscaleError
from steadyscale.retries.tokenbucket import TokenBucket

WRITE_ENV = "STEADYSCALE_API_TOKEN"
READ_ENV = "STEADYSCALE_API_READ_TOKEN"
# A token shorter than this is refused: guessable in a few thousand tries.
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class Caller:
    """Who sent a request: a token's name (or fingerprint), and whether it may write."""

    who: str
    write: bool


ANONYMOUS = Caller(who="anonymous", write=False)


def fingerprint(secret: str) -> str:
    """What names a token in logs and the audit log: a prefix of its SHA-256."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12]


class Tokens:
    """The tokens a server accepts, by the SHA-256 of each (compared in constant time)."""

    def __init__(self, write: Mapping[str, str], read: Mapping[str, str]) -> None:
        """``write`` and ``read``: name by token."""
        self._known: dict[bytes, Caller] = {}
        for secrets, may_write in ((read, False), (write, True)):
            for secret, name in secrets.items():
                self._known[_digest(secret)] = Caller(who=name, write=may_write)

    @property
    def required(self) -> bool:
        """Any token set: then every request needs one."""
        return bool(self._known)

    @property
    def writers(self) -> int:
        return sum(1 for c in self._known.values() if c.write)

    def identify(self, secret: str) -> Caller | None:
        digest = _digest(secret)
        for known, caller in self._known.items():
            if hmac.compare_digest(known, digest):
                return caller
        return None


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def load_tokens(config: ApiConfig, base: Path, env: Mapping[str, str]) -> Tokens:
    """The tokens of ``config`` (files relative to ``base``) and of the environment."""
    write: dict[str, str] = {}
    read: dict[str, str] = {}
    if config.tokens_file:
        write.update(read_tokens_file(base / config.tokens_file, "api.tokens_file"))
    if config.read_tokens_file:
        read.update(read_tokens_file(base / config.read_tokens_file, "api.read_tokens_file"))
    for variable, into in ((WRITE_ENV, write), (READ_ENV, read)):
        secret = env.get(variable, "").strip()
        if secret:
            _check(secret, variable)
            into[secret] = variable.lower().removeprefix("steadyscale_api_").replace("_", "-")
    return Tokens(write, read)


def read_tokens_file(path: Path, key: str) -> dict[str, str]:
    """Name by token from a file of ``NAME:TOKEN`` lines (or bare tokens); ``#`` comments."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SteadyscaleError(
            f"{key}: cannot read {path} ({exc.strerror}); give the path of a file of tokens, "
            "one NAME:TOKEN per line (the token itself never goes in the config)"
        ) from None
    tokens: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, secret = line.partition(":")
        if not sep:
            name, secret = "", line
        secret = secret.strip()
        _check(secret, f"{path} line {number}")
        tokens[secret] = name.strip() or fingerprint(secret)
    return tokens


def _check(secret: str, where: str) -> None:
    if len(secret) < MIN_TOKEN_LENGTH or any(c.isspace() for c in secret):
        raise SteadyscaleError(
            f"{where}: a token needs at least {MIN_TOKEN_LENGTH} characters and no spaces, "
            'e.g. one made by: python -c "import secrets; print(secrets.token_urlsafe(32))"'
        )


class RateLimits:
    """A token bucket per caller: ``per_second`` sustained, ``burst`` at once."""

    def __init__(self, per_second: float, burst: int) -> None:
        self.per_second = per_second
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def retry_after(self, who: str, now: float) -> float:
        """0 when the request may go; else the seconds until it may."""
        with self._lock:
            bucket = self._buckets.get(who)
            if bucket is None:
                bucket = self._buckets[who] = TokenBucket(self.burst, self.per_second)
            if bucket.try_take(now):
                return 0.0
            return bucket.seconds_until(now)
