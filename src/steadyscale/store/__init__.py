"""Durable state: the ledger (demand, launch intents, nodes, transitions) on a SQLite file
or a PostgreSQL database, behind one storage interface (``storage``: the protocol, the
schema and its migrations, one version for both); ``sqlite`` (WAL, the writer lock) also
keeps the Ray provider's state file; ``postgres`` is the only module here that imports
psycopg."""
