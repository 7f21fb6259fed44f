"""The SQLite layer under the ledger and the Ray state file: versions, migrations, the
read-only mode, transactions across threads and the single-writer lock."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from steadyscale.store.sqlite import Schema, Store, StoreError, WriterLock, statements

V1 = ["CREATE TABLE items (name TEXT PRIMARY KEY)"]
V2 = ["ALTER TABLE items ADD COLUMN size INTEGER"]
SCHEMA = Schema(name="test file", migrations={1: V1, 2: V2})


def _version(path: Path) -> str | None:
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    finally:
        db.close()
    return None if row is None else str(row[0])


def test_statements_splits_a_script_into_what_execute_takes() -> None:
    script = "CREATE TABLE a (x TEXT);\nCREATE TABLE b (\n    y TEXT DEFAULT ';'\n);\n"
    assert statements(script) == [
        "CREATE TABLE a (x TEXT);",
        "CREATE TABLE b (\n    y TEXT DEFAULT ';'\n);",
    ]
    with pytest.raises(ValueError, match="incomplete"):
        statements("CREATE TABLE a (x TEXT")


def test_a_new_file_gets_every_migration_and_the_latest_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db", SCHEMA)
    store.execute("INSERT INTO items VALUES ('a', 1)")
    assert [tuple(r) for r in store.rows("SELECT name, size FROM items")] == [("a", 1)]
    store.close()
    assert _version(tmp_path / "s.db") == "2"


def test_an_older_file_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path, Schema(name="test file", migrations={1: V1})).execute(
        "INSERT INTO items VALUES ('kept')"
    )

    store = Store(path, SCHEMA)

    assert [tuple(r) for r in store.rows("SELECT name, size FROM items")] == [("kept", None)]
    assert _version(path) == "2"


def test_a_failing_migration_leaves_the_file_at_its_last_good_version(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path, Schema(name="test file", migrations={1: V1})).close()
    broken = Schema(
        name="test file", migrations={1: V1, 2: [*V2, "ALTER TABLE nowhere ADD COLUMN x"]}
    )

    with pytest.raises(StoreError, match=r"test file .* is unreadable"):
        Store(path, broken)

    assert _version(path) == "1"
    Store(path, SCHEMA).close()  # the size column was rolled back with the failure
    assert _version(path) == "2"


def test_a_file_written_before_versions_is_recognised_by_its_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE items (name TEXT PRIMARY KEY)")
    db.execute("INSERT INTO items VALUES ('kept')")
    db.commit()
    db.close()
    schema = Schema(
        name="test file",
        migrations=SCHEMA.migrations,
        unversioned={1: "SELECT 1 FROM sqlite_master WHERE name = 'items'"},
    )

    store = Store(path, schema)

    assert [tuple(r) for r in store.rows("SELECT name, size FROM items")] == [("kept", None)]
    assert _version(path) == "2"


def test_a_newer_file_and_one_without_a_version_are_refused_untouched(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    Store(newer, SCHEMA).execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match=r"schema version 9, newer .* upgrade steadyscale"):
        Store(newer, SCHEMA)
    assert _version(newer) == "9"

    foreign = tmp_path / "foreign.db"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="has no schema version"):
        Store(foreign, SCHEMA)
    db = sqlite3.connect(foreign)
    assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == [
        "meta",
        "sqlite_autoindex_meta_1",
    ]
    db.close()


def test_read_only_refuses_a_version_it_does_not_read_and_changes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    Store(path, Schema(name="test file", migrations={1: V1})).close()

    with pytest.raises(StoreError, match="schema version 1, this steadyscale reads version 2"):
        Store(path, SCHEMA, readonly=True)
    assert _version(path) == "1"
    with pytest.raises(StoreError, match="is unreadable"):
        Store(tmp_path / "missing.db", SCHEMA, readonly=True)
    assert not (tmp_path / "missing.db").exists()


def test_read_only_reads_while_a_writer_holds_a_transaction(tmp_path: Path) -> None:
    writer = Store(tmp_path / "s.db", SCHEMA)
    reader = Store(tmp_path / "s.db", SCHEMA, readonly=True)
    with writer.transaction():
        writer.execute("INSERT INTO items VALUES ('a', 1)")
        assert reader.rows("SELECT * FROM items") == []
    assert len(reader.rows("SELECT * FROM items")) == 1
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("INSERT INTO items VALUES ('b', 2)")


def test_a_transaction_is_whole_across_threads_and_rolled_back_on_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db", SCHEMA)
    store.execute("INSERT INTO items VALUES ('n', 0)")

    def add(times: int) -> None:
        for _ in range(times):
            with store.transaction():
                (row,) = store.rows("SELECT size FROM items WHERE name = 'n'")
                store.execute("UPDATE items SET size = ? WHERE name = 'n'", (row["size"] + 1,))

    threads = [threading.Thread(target=add, args=(50,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with pytest.raises(RuntimeError), store.transaction():
        store.execute("UPDATE items SET size = 0")
        raise RuntimeError("abandoned")

    assert tuple(store.rows("SELECT size FROM items")[0]) == (200,)


def test_one_writer_at_a_time_and_the_lock_names_its_holder(tmp_path: Path) -> None:
    first = WriterLock(tmp_path / "s.db", name="state file")
    first.acquire()
    second = WriterLock(tmp_path / "s.db", name="state file")
    with pytest.raises(StoreError, match=r"\(pid \d+\) is running on state file .*s\.db"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()


def test_the_lock_of_a_killed_process_is_released_by_the_os(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from steadyscale.store.sqlite import WriterLock; "
            f"lock = WriterLock({str(path)!r}); lock.acquire(); "
            "print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(StoreError, match=rf"pid {holder.pid}\)"):
            WriterLock(path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()

    lock = WriterLock(path)
    lock.acquire()
    lock.release()
