"""The ledger's side tables in a ledger export (version 2 on): the workloads' named demand
entries, usage reports, drains, what EC2's events said of nodes, the API's kept answers
and its audit log. Each table as its rows, columns by name, in a fixed order; an import
checks every value's type and every node it names before one row is written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from steadyscale.store.storage import Storage

_TEXT, _REAL, _INT = "text", "real", "integer"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # _TEXT, _REAL or _INT
    nullable: bool = False


@dataclass(frozen=True)
class SideTable:
    name: str
    columns: tuple[Column, ...]
    order: str  # the export's row order (its primary key, or the audit log's id)
    names_nodes: bool = False  # its node_id must be a node of the export

    def select(self) -> str:
        listed = ", ".join(c.name for c in self.columns)
        return f"SELECT {listed} FROM {self.name} ORDER BY {self.order}"

    def insert(self) -> str:
        listed = ", ".join(c.name for c in self.columns)
        marks = ", ".join("?" for _ in self.columns)
        return f"INSERT INTO {self.name} ({listed}) VALUES ({marks})"


def _columns(spec: str) -> tuple[Column, ...]:
    """Columns from ``"name:kind ..."``; a kind ending in ``?`` may be null."""
    columns = []
    for item in spec.split():
        name, kind = item.split(":")
        columns.append(Column(name, kind.rstrip("?"), kind.endswith("?")))
    return tuple(columns)


SIDE_TABLES = (
    SideTable(
        "demand_entries",
        _columns("name:text position:integer bundle:text count:integer updated_at:real"),
        "CASE WHEN name = 'default' THEN 0 ELSE 1 END, name, position",
    ),
    SideTable(
        "usage",
        _columns(
            "node_id:text busy:integer bundles:text reported_at:real expires_at:real "
            "idle_since:real? reporter:text"
        ),
        "node_id",
        names_nodes=True,
    ),
    SideTable(
        "drains",
        _columns("node_id:text asked_by:text? asked_at:real? acked_by:text? acked_at:real?"),
        "node_id",
        names_nodes=True,
    ),
    SideTable(
        "node_marks",
        _columns("node_id:text kind:text at:real deadline:real? event_id:text"),
        "node_id, kind",
        names_nodes=True,
    ),
    SideTable(
        "idempotency_keys",
        _columns("who:text key:text request_hash:text status:integer answer:text at:real"),
        "who, key",
    ),
    # Its ids are the new ledger's own (a PostgreSQL sequence would not follow given ids);
    # the order is kept.
    SideTable("audit_log", _columns("at:real who:text action:text target:text detail:text"), "id"),
)


def export_tables(db: Storage) -> dict[str, list[dict[str, Any]]]:
    """Every side table's rows, as JSON-ready objects."""
    return {
        table.name: [
            {c.name: row[c.name] for c in table.columns} for row in db.rows(table.select())
        ]
        for table in SIDE_TABLES
    }


def parse_tables(raw: Any, nodes: set[str]) -> dict[str, list[tuple[Any, ...]]]:
    """The rows to insert, by table, from an export's ``tables``; ValueError or TypeError
    (a damaged export) for an unknown table or column, a value of the wrong type, or a
    row naming a node the export does not have."""
    if not isinstance(raw, Mapping):
        raise TypeError(f"tables must be an object, got {type(raw).__name__}")
    known = {t.name: t for t in SIDE_TABLES}
    unknown = set(raw) - set(known)
    if unknown:
        raise ValueError(f"unknown tables {sorted(unknown)}")
    parsed: dict[str, list[tuple[Any, ...]]] = {}
    for name, rows in raw.items():
        table = known[name]
        if not isinstance(rows, list):
            raise TypeError(f"{name} must be a list of rows, got {type(rows).__name__}")
        parsed[name] = [_row(table, row, nodes) for row in rows]
    return parsed


def _row(table: SideTable, raw: Any, nodes: set[str]) -> tuple[Any, ...]:
    if not isinstance(raw, Mapping):
        raise TypeError(f"a row of {table.name} must be an object, got {type(raw).__name__}")
    wanted = {c.name for c in table.columns}
    if set(raw) != wanted:
        raise ValueError(f"a row of {table.name} has columns {sorted(raw)}, not {sorted(wanted)}")
    values = tuple(_value(table, column, raw[column.name]) for column in table.columns)
    if table.names_nodes and raw["node_id"] not in nodes:
        raise ValueError(f"{table.name} names node {raw['node_id']!r}, which is not in nodes")
    return values


def _value(table: SideTable, column: Column, value: Any) -> Any:
    if value is None and column.nullable:
        return None
    fits = {
        _TEXT: isinstance(value, str),
        _INT: isinstance(value, int) and not isinstance(value, bool),
        _REAL: isinstance(value, int | float) and not isinstance(value, bool),
    }[column.kind]
    if not fits:
        raise TypeError(f"{table.name}.{column.name} is {column.kind}, got {value!r}")
    return float(value) if column.kind == _REAL else value


def import_tables(db: Storage, tables: Mapping[str, Sequence[tuple[Any, ...]]]) -> None:
    """Write the parsed rows, inside the caller's transaction (the tables are empty: the
    import goes into a new ledger, whose demand entry ``default`` these replace)."""
    for table in SIDE_TABLES:
        if table.name in tables:
            db.execute(f"DELETE FROM {table.name}")
            db.executemany(table.insert(), tables[table.name])
