"""Durable state on SQLite: one layer (``sqlite``: WAL, schema versions, migrations, the
writer lock) under the ledger (demand, launch intents, nodes, transitions) and the Ray
provider's state file."""
