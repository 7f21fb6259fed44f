"""Reading YAML into validated models: one clear line naming the key path on any error.

``load_config(path)`` returns a ``ClusterConfig`` or raises ``ConfigError`` whose message
names the key path (``available_node_types.cpu.max_workers: ...``) and what is wrong. The
helpers serve every YAML steadyscale reads (the emulator's settings, the Ray provider's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from steadyscale.config.location import DatabaseURL, LedgerLocation, location
from steadyscale.config.models import ClusterConfig
from steadyscale.config.validation import check_node_types
from steadyscale.errors import ConfigError


def read_text_file(path: str | Path) -> str:
    """The text of a UTF-8 file, or a ConfigError that says why it cannot be read."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(not_utf8(file, raw, exc.start)) from None


def not_utf8(file: Path, raw: bytes, start: int) -> str:
    """What is wrong with a file that is not UTF-8, and the command that converts it: YAML
    is UTF-8, and editors on some systems save Latin-1 or UTF-16 by default."""
    converted = file.with_name(f"{file.stem}.utf8{file.suffix}")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        where, how = "it starts with a UTF-16 byte-order mark", ""
        encoding = "UTF-16"
    else:
        line = raw.count(b"\n", 0, start) + 1
        column = start - (raw.rfind(b"\n", 0, start) + 1) + 1
        where = f"byte 0x{raw[start]:02x} at line {line}, column {column}"
        how, encoding = "if it is Latin-1: ", "LATIN1"
    return (
        f"{file} is not UTF-8 text ({where}); save it as UTF-8 "
        f"({how}iconv -f {encoding} -t UTF-8 {file} > {converted})"
    )


_MERGE = "tag:yaml.org,2002:merge"


class _RepeatedKey(yaml.YAMLError):
    """A mapping names a key twice: where the second is, in words."""

    def __init__(self, key: object, first: int, mark: yaml.Mark) -> None:
        super().__init__(
            f"line {mark.line + 1}, column {mark.column + 1}: {key} is given twice "
            f"(first at line {first}); give each key once"
        )


class _OnceEachKey(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping: YAML itself keeps the
    last silently, and a node type or a bundle's resource written twice would vanish."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}  # key -> the line it is first given at
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue  # `<<: *defaults`: keys given beside it override the merged ones
            key = self.construct_object(key_node, deep=deep)
            try:
                line = first.get(key)
            except TypeError:
                continue  # not a key YAML can map: the constructor below refuses it
            if line is not None:
                raise _RepeatedKey(key, line, key_node.start_mark)
            first[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, file: Path) -> Any:
    """The YAML value in ``text`` (read from ``file``), or a ConfigError that says what is
    wrong with it and where."""
    try:
        return yaml.load(text, Loader=_OnceEachKey)  # a SafeLoader
    except _RepeatedKey as exc:
        raise ConfigError(f"{file}: {exc}") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise ConfigError(
            f"{file}: character U+{exc.character:04X} at line {line}, column {column} "
            "is not allowed in YAML (a control character); remove it"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{file}: malformed YAML{where}: {problem}") from None


def read_yaml_document(path: str | Path) -> Any:
    """The YAML value in a UTF-8 file, or a ConfigError that says what is wrong with it."""
    file = Path(path)
    return parse_yaml(read_text_file(file), file)


def read_yaml_file(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file, or a ConfigError that says what is wrong with it."""
    file = Path(path)
    data = read_yaml_document(file)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of settings, got {type(data).__name__}")
    return data


def describe_validation_error(exc: ValidationError, *, source: str = "") -> str:
    """The first problem of a pydantic error as ``key.path: what is wrong``."""
    first = exc.errors()[0]
    path = ".".join(str(part) for part in first["loc"])
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key (check the spelling; see the documented settings)"
    message = message.removeprefix("Value error, ")
    prefix = f"{source}: " if source else ""
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return (f"{prefix}{path}: {message}" if path else f"{prefix}{message}") + suffix


def parse_config(data: dict[str, Any], *, source: str = "") -> ClusterConfig:
    try:
        config = ClusterConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source=source)) from None
    check_node_types(config, source=source)
    return config


def load_config(path: str | Path) -> ClusterConfig:
    data = read_yaml_file(path)
    return parse_config(data, source=str(path))


def ledger_location(config: ClusterConfig, config_path: str | Path | None) -> LedgerLocation:
    """Where the ledger lives: ``ledger`` from the config (a PostgreSQL URL as it is, a
    path relative to the config file), else a file beside the config file."""
    base = Path(config_path).resolve().parent if config_path else Path.cwd()
    if config.ledger:
        return location(config.ledger, base)
    return base / ".steadyscale" / f"{config.cluster_name}.db"


def ledger_path(config: ClusterConfig, config_path: str | Path | None) -> Path:
    """The ledger's file, for what works on files only; a PostgreSQL ledger is refused
    with one line."""
    found = ledger_location(config, config_path)
    if isinstance(found, DatabaseURL):
        raise ConfigError(
            f"ledger {found} is a PostgreSQL database; this works on a ledger file only"
        )
    return found
