"""What the ledger holds, on either backend: its tables, and the migrations that take a
ledger of any earlier version to ``SCHEMA_VERSION`` (one version number for SQLite and
PostgreSQL; the types are SQLite's, rendered for PostgreSQL by ``storage.postgres_ddl``).
"""

from __future__ import annotations

from steadyscale.store.errors import LedgerError, LedgerUnavailableError
from steadyscale.store.sqlite import statements
from steadyscale.store.storage import Schema
from steadyscale.store.workload import WORKLOAD_SCHEMA

# Version 1 of the ledger; MIGRATIONS take a file of any version to SCHEMA_VERSION.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS demand (
    position INTEGER PRIMARY KEY,
    bundle TEXT NOT NULL,
    count INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    node_type TEXT NOT NULL,
    count INTEGER NOT NULL,
    client_token TEXT NOT NULL UNIQUE,
    subnet_id TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    sent_at REAL,
    launched INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT PRIMARY KEY,
    node_type TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    request_id TEXT,
    instance_id TEXT UNIQUE,
    instance_type TEXT,
    availability_zone TEXT,
    private_ip TEXT,
    launched_at REAL,
    first_seen_at REAL,
    last_seen_at REAL,
    running_at REAL,
    terminate_requested_at REAL,
    terminate_accepted_at REAL,
    idle_since REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS nodes_by_status ON nodes (status);
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id TEXT NOT NULL,
    status TEXT NOT NULL,
    at REAL NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_by_node ON transitions (node_id);
"""

# Each entry moves a ledger from version N-1 to N, in one transaction.
MIGRATIONS: dict[int, list[str]] = {
    1: statements(_SCHEMA),
    # The launch parameters of a request, so a resend after a restart sends exactly what
    # the first attempt sent even if the config changed (else EC2 answers
    # IdempotentParameterMismatch for the same ClientToken).
    # And when a node EC2 showed before went missing, so LOST is measured from then.
    2: [
        "ALTER TABLE requests ADD COLUMN spec TEXT",
        "ALTER TABLE nodes ADD COLUMN missing_since REAL",
    ],
    # What the workload says: per node usage reports with a time to live, and drains asked
    # and acknowledged through the API (``store.workload``).
    3: statements(WORKLOAD_SCHEMA),
    # What each node costs per hour (USD), recorded at launch from its pool's price, for
    # the cost per hour ``status`` and the metrics show. (A fleet request's spec, its
    # template version and overrides, goes in ``requests.spec`` as a RunInstances one does.)
    4: ["ALTER TABLE nodes ADD COLUMN hourly_price REAL"],
    # The HTTP API: demand in named entries (a workload owns its entry; the demand table
    # keeps their sum, which the loop reads; what was demanded before becomes the entry
    # "default"), the answers kept for idempotency keys, and the audit log of mutations.
    5: [
        "CREATE TABLE IF NOT EXISTS demand_entries (name TEXT NOT NULL, "
        "position INTEGER NOT NULL, bundle TEXT NOT NULL, count INTEGER NOT NULL, "
        "updated_at REAL NOT NULL, PRIMARY KEY (name, position))",
        "INSERT INTO demand_entries (name, position, bundle, count, updated_at) "
        "SELECT 'default', position, bundle, count, updated_at FROM demand",
        "CREATE TABLE IF NOT EXISTS idempotency_keys (who TEXT NOT NULL, key TEXT NOT NULL, "
        "request_hash TEXT NOT NULL, status INTEGER NOT NULL, answer TEXT NOT NULL, "
        "at REAL NOT NULL, PRIMARY KEY (who, key))",
        "CREATE TABLE IF NOT EXISTS audit_log (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "at REAL NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, "
        "detail TEXT NOT NULL)",
    ],
}

SCHEMA = Schema(
    name="ledger",
    migrations=MIGRATIONS,
    error=LedgerError,
    unavailable=LedgerUnavailableError,
    unreadable_hint="move it aside only if you are sure no instance it tracks is still running",
    migrate_hint="run the daemon of this version once to migrate it",
)
SCHEMA_VERSION = SCHEMA.version
