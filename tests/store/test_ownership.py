"""Whose a ledger is (the config file and cluster name its daemon recorded), which nodes
carry a former cluster name, and carrying a ledger over to a new name."""

from __future__ import annotations

from pathlib import Path

import pytest

from steadyscale.config import DatabaseURL
from steadyscale.core.lifecycle import NodeRecord, Status
from steadyscale.store.ledger import Ledger, LedgerError, WriterLock
from steadyscale.store.ownership import (
    Owner,
    carried,
    carry_over,
    claim,
    ledgers_beside,
    owner,
    set_carried,
)
from tests.ledgers import LedgerAt


def _ledger(path: Path | str, *live: str, done: tuple[str, ...] = ()) -> Ledger:
    ledger = Ledger(path)
    records = [
        NodeRecord(node_id=n, node_type="cpu", status=Status.READY, created_at=1.0) for n in live
    ] + [
        NodeRecord(node_id=n, node_type="cpu", status=Status.TERMINATED, created_at=1.0)
        for n in done
    ]
    with ledger.transaction():
        ledger.save_nodes(records)
    return ledger


def test_a_daemon_start_records_the_config_file_and_the_cluster_name(
    ledger_at: LedgerAt,
) -> None:
    ledger = Ledger(ledger_at("a.db"))
    assert owner(ledger) == Owner(config_file=None, cluster_name=None)
    assert claim(ledger, config_file="/c/cluster.yaml", cluster_name="a") is None
    assert owner(ledger) == Owner(config_file="/c/cluster.yaml", cluster_name="a")
    assert carried(ledger) == {}
    ledger.close()


def test_a_ledger_run_under_a_new_name_carries_its_live_nodes_in_place(
    ledger_at: LedgerAt,
) -> None:
    ledger = _ledger(ledger_at("fixed.db"), "n-1", "n-2", done=("n-0",))
    claim(ledger, config_file="/c/cluster.yaml", cluster_name="a")
    # The ledger's path does not depend on the name (``ledger:`` is set): the same file.
    assert claim(ledger, config_file="/c/cluster.yaml", cluster_name="b") == "a"
    assert carried(ledger) == {"a": {"n-1", "n-2"}}
    assert claim(ledger, config_file="/c/cluster.yaml", cluster_name="b") is None  # once
    # Renamed back: the nodes carry the cluster's own name again.
    assert claim(ledger, config_file="/c/cluster.yaml", cluster_name="a") is None
    assert carried(ledger) == {}
    ledger.close()


def test_carry_over_moves_the_ledger_and_records_which_nodes_carry_the_old_tag(
    tmp_path: Path,
) -> None:
    old, new = tmp_path / "a.db", tmp_path / "b.db"
    ledger = _ledger(old, "n-1", "n-2", done=("n-0",))
    claim(ledger, config_file="/c/cluster.yaml", cluster_name="a")
    ledger.close()
    done = carry_over(old, new, config_file="/c/cluster.yaml", former_name="a", cluster_name="b")
    assert not old.exists() and new.exists()
    assert done.live_nodes == 2 and dict(done.carried) == {"a": 2} and done.replaced is None
    moved = Ledger(new)
    assert owner(moved) == Owner(config_file="/c/cluster.yaml", cluster_name="b")
    assert carried(moved) == {"a": {"n-1", "n-2"}}
    assert {r.node_id for r in moved.nodes(include_terminal=True)} == {"n-0", "n-1", "n-2"}
    moved.close()


def test_a_postgresql_ledger_is_carried_over_in_place_under_its_writer_lock(
    postgres: str,
) -> None:
    url = DatabaseURL(postgres)
    ledger = _ledger(postgres, "n-1", "n-2", done=("n-0",))
    claim(ledger, config_file="/c/cluster.yaml", cluster_name="a")
    ledger.acquire_writer()  # a daemon runs on it
    with pytest.raises(LedgerError, match=r"another steadyscale daemon \(pid \d+"):
        carry_over(url, url, config_file="/c/cluster.yaml", former_name="a", cluster_name="b")
    ledger.close()

    done = carry_over(url, url, config_file="/c/cluster.yaml", former_name="a", cluster_name="b")

    assert (done.live_nodes, dict(done.carried), done.replaced) == (2, {"a": 2}, None)
    again = Ledger(url)
    assert owner(again) == Owner(config_file="/c/cluster.yaml", cluster_name="b")
    assert carried(again) == {"a": {"n-1", "n-2"}}
    again.close()


def test_a_postgresql_ledger_never_moves_to_or_from_a_file(postgres: str, tmp_path: Path) -> None:
    url = DatabaseURL(postgres)
    _ledger(postgres, "n-1").close()
    for old, new in ((url, tmp_path / "b.db"), (tmp_path / "b.db", url)):
        with pytest.raises(LedgerError, match="never into or out of a PostgreSQL database"):
            carry_over(old, new, config_file="/c/x.yaml", former_name="a", cluster_name="b")
    assert not (tmp_path / "b.db").exists()


def test_carry_over_of_an_empty_database_is_refused(postgres: str) -> None:
    url = DatabaseURL(postgres)
    with pytest.raises(LedgerError, match=r"no ledger of cluster a at postgresql://"):
        carry_over(url, url, config_file="/c/x.yaml", former_name="a", cluster_name="b")


def test_carry_over_refuses_while_a_daemon_holds_either_ledger(tmp_path: Path) -> None:
    old, new = tmp_path / "a.db", tmp_path / "b.db"
    _ledger(old, "n-1").close()
    for held in (old, new):
        lock = WriterLock(held)
        lock.acquire()
        with pytest.raises(LedgerError, match=r"another steadyscale daemon \(pid \d+\)"):
            carry_over(old, new, config_file="/c/x.yaml", former_name="a", cluster_name="b")
        lock.release()
        assert old.exists() and not new.exists()


def test_carry_over_refuses_a_new_name_whose_ledger_has_live_nodes(tmp_path: Path) -> None:
    old, new = tmp_path / "a.db", tmp_path / "b.db"
    _ledger(old, "n-1").close()
    _ledger(new, "n-9").close()
    with pytest.raises(LedgerError, match=r"b.db already tracks 1 live node\(s\) of cluster b"):
        carry_over(old, new, config_file="/c/x.yaml", former_name="a", cluster_name="b")
    assert old.exists()


def test_carry_over_keeps_an_empty_ledger_of_the_new_name_aside(tmp_path: Path) -> None:
    old, new = tmp_path / "a.db", tmp_path / "b.db"
    _ledger(old, "n-1").close()
    _ledger(new, done=("n-9",)).close()
    done = carry_over(old, new, config_file="/c/x.yaml", former_name="a", cluster_name="b")
    assert done.replaced == tmp_path / "b.db.replaced-1"
    aside, moved = Ledger(done.replaced), Ledger(new)
    assert [r.node_id for r in aside.nodes(include_terminal=True)] == ["n-9"]
    assert [r.node_id for r in moved.nodes()] == ["n-1"]
    aside.close()
    moved.close()


def test_carry_over_refuses_the_ledger_of_another_config_that_still_exists(
    tmp_path: Path,
) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("cluster_name: a\n")
    old, new = tmp_path / "a.db", tmp_path / "b.db"
    ledger = _ledger(old, "n-1")
    claim(ledger, config_file=str(other), cluster_name="a")
    ledger.close()
    with pytest.raises(LedgerError, match=r"is run by config .*other.yaml \(cluster a\)"):
        carry_over(old, new, config_file="/c/x.yaml", former_name="a", cluster_name="b")
    other.unlink()  # that config is gone (moved or renamed): the ledger may be carried
    carry_over(old, new, config_file="/c/x.yaml", former_name="a", cluster_name="b")
    assert new.exists()


def test_a_second_carry_over_keeps_each_nodes_first_tag(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    ledger = _ledger(a, "n-1")
    claim(ledger, config_file="/c/x.yaml", cluster_name="a")
    ledger.close()
    carry_over(a, b, config_file="/c/x.yaml", former_name="a", cluster_name="b")
    ledger = Ledger(b)
    with ledger.transaction():
        ledger.save_nodes(
            [NodeRecord(node_id="n-2", node_type="cpu", status=Status.READY, created_at=2.0)]
        )
    ledger.close()
    done = carry_over(b, c, config_file="/c/x.yaml", former_name="b", cluster_name="c")
    assert dict(done.carried) == {"a": 1, "b": 1}
    ledger = Ledger(c)
    assert carried(ledger) == {"a": {"n-1"}, "b": {"n-2"}}
    ledger.close()


def test_ledgers_beside_reads_the_others_and_skips_files_that_are_not_ledgers(
    tmp_path: Path,
) -> None:
    ledger = _ledger(tmp_path / "a.db", "n-1", "n-2", done=("n-0",))
    claim(ledger, config_file="/c/x.yaml", cluster_name="a")  # its daemon still runs
    set_carried(ledger, {"old": {"n-0", "n-1"}})
    (tmp_path / "junk.db").write_bytes(b"not a database")
    [found] = ledgers_beside(tmp_path / "b.db")
    assert (found.path.name, found.owner.cluster_name, found.live_nodes) == ("a.db", "a", 2)
    assert found.carried == {"old": 1}  # live nodes only
    assert ledgers_beside(tmp_path / "a.db") == []
    assert ledgers_beside(tmp_path / "nowhere" / "b.db") == []
    ledger.close()
