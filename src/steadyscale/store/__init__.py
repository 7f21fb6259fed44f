"""Durable state: the ledger (demand, launch intents, nodes, transitions) on SQLite."""
