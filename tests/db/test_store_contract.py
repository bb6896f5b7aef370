"""The store contract: every test here runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text

from liquidfab.db import Database, DuplicateKey, messages, participants, tables
from liquidfab.errors import ProtocolError, StoreError


def _message(i: int, source: str = "did:key:zsource", **over) -> dict:
    row = {
        "source": source,
        "msg_id": f"m-{i}",
        "type": "org.liquidfab.test.thing",
        "subject": None,
        "time": "2026-11-22T10:00:00Z",
        "received_us": 1_000_000 + i,
        "digest": f"{i:064x}",
        "envelope": {
            "id": f"m-{i}",
            "data": {"n": i, "text": "Grüße 😀", "nested": [1, {"a": None}]},
        },
        "result": {"ok": True},
    }
    row.update(over)
    return row


def _participant(did: str, created_us: int = 1) -> dict:
    return {
        "did": did,
        "role": "owner",
        "display_name": f"Owner {did[-4:]}",
        "endpoints": ["http://127.0.0.1:1/"],
        "version": 1,
        "created_us": created_us,
        "updated_us": created_us,
        "registered_by": f"{did} m-1",
    }


def test_migrations_create_the_tables_and_are_idempotent(database, database_url):
    again = Database.open(database_url)  # a second open runs the migration check again
    try:
        names = again.read(
            lambda c: {
                t.name
                for t in tables.metadata.sorted_tables
                if c.execute(select(t).limit(1)) is not None
            }
        )
        assert names == {t.name for t in tables.metadata.sorted_tables}
        assert {"participants", "messages", "accounts", "transfers", "products"} <= names
        version = again.read(
            lambda c: c.execute(text("select version_num from alembic_version")).scalar()
        )
        assert version == "0011"
        # The migrations build exactly the schema tables.py declares.
        diff = again.read(
            lambda c: compare_metadata(MigrationContext.configure(c), tables.metadata)
        )
        assert diff == []
    finally:
        again.close()


def test_write_commits_and_read_sees_it(database):
    seq = database.write(lambda c: messages.insert_message(c, **_message(1)))
    assert seq >= 1
    row = database.read(lambda c: messages.get_message(c, "did:key:zsource", "m-1"))
    assert row["seq"] == seq and row["digest"] == f"{1:064x}"


def test_json_round_trip(database):
    database.write(lambda c: messages.insert_message(c, **_message(7)))
    row = database.read(lambda c: messages.get_message(c, "did:key:zsource", "m-7"))
    assert row["envelope"] == _message(7)["envelope"]
    assert row["result"] == {"ok": True}


def test_exception_rolls_back_everything_and_is_reraised_unchanged(database):
    error = ProtocolError("unauthorized", "no, on purpose.", 403)

    def write_then_fail(conn):
        messages.insert_message(conn, **_message(1))
        participants.insert_participant(conn, _participant("did:key:za"))
        raise error

    empty = database.snapshot()
    with pytest.raises(ProtocolError) as caught:
        database.write(write_then_fail)
    assert caught.value is error
    assert database.snapshot() == empty
    assert empty["participants"] == [] and empty["messages"] == []


def test_database_errors_become_store_errors_with_cause(database):
    with pytest.raises(StoreError) as caught:
        database.write(lambda c: c.execute(text("select * from no_such_table")))
    assert caught.value.__cause__ is not None
    assert "no_such_table" in str(caught.value)


def test_duplicate_key_is_its_own_error_and_changes_nothing(database):
    database.write(lambda c: messages.insert_message(c, **_message(1)))
    before = database.snapshot()
    with pytest.raises(DuplicateKey):
        database.write(lambda c: messages.insert_message(c, **_message(1, digest="f" * 64)))
    assert database.snapshot() == before


def test_duplicate_key_is_raised_at_the_insert_so_a_savepoint_can_recover(database):
    """The dispatcher relies on this to answer a concurrent identical retry."""
    database.write(lambda c: messages.insert_message(c, **_message(1)))

    def work(conn):
        savepoint = conn.begin_nested()
        try:
            messages.insert_message(conn, **_message(1, digest="f" * 64))
        except DuplicateKey:
            savepoint.rollback()
        else:  # pragma: no cover - the assertion below reports it
            savepoint.commit()
        messages.insert_message(conn, **_message(2))

    database.write(work)
    rows = database.snapshot()["messages"]
    assert [r["msg_id"] for r in rows] == ["m-1", "m-2"]
    assert rows[0]["digest"] != "f" * 64


def test_savepoint_rollback_keeps_the_outer_writes(database):
    def work(conn):
        messages.insert_message(conn, **_message(1))
        savepoint = conn.begin_nested()
        messages.insert_message(conn, **_message(2))
        savepoint.rollback()
        inner = conn.begin_nested()
        messages.insert_message(conn, **_message(3))
        inner.commit()

    database.write(work)
    ids = [r["msg_id"] for r in database.snapshot()["messages"]]
    assert ids == ["m-1", "m-3"]


def test_concurrent_writers_lose_nothing(database):
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for i in range(50):
                database.write(
                    lambda c, i=i: messages.insert_message(c, **_message(i, source=f"did:key:z{t}"))
                )
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert database.read(messages.count_messages) == 400


def test_readers_run_beside_a_writer(database):
    database.write(lambda c: messages.insert_message(c, **_message(1)))
    inside = threading.Event()
    release = threading.Event()

    def slow_write(conn):
        messages.insert_message(conn, **_message(2))
        inside.set()
        assert release.wait(10)

    t = threading.Thread(target=database.write, args=(slow_write,))
    t.start()
    assert inside.wait(10)
    # The reader sees the committed row, not the uncommitted one, and is not blocked.
    assert database.read(messages.count_messages) == 1
    release.set()
    t.join()
    assert database.read(messages.count_messages) == 2


def test_get_messages_finds_exact_pairs_only(database):
    rows = [_message(1, "did:key:za"), _message(2, "did:key:za"), _message(1, "did:key:zb")]
    database.write(lambda c: messages.insert_messages(c, rows))
    wanted = [("did:key:za", "m-1"), ("did:key:zb", "m-2"), ("did:key:zb", "m-1")]
    found = database.read(lambda c: messages.get_messages(c, wanted))
    # (zb, m-2) pairs a stored source with a stored id, but no such message exists.
    assert sorted(found) == [("did:key:za", "m-1"), ("did:key:zb", "m-1")]
    assert found[("did:key:zb", "m-1")]["digest"] == rows[2]["digest"]


def test_batch_lookup_searches_the_index_not_the_table(sqlite_database):
    """A batch's dedup lookup must not grow with the log (it once scanned every row)."""

    def plan(conn):
        stmt = messages._GET_MANY.params(source="did:key:za", ids=["m-1", "m-2"])
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        return [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]

    steps = sqlite_database.read(plan)
    assert any("USING INDEX" in step for step in steps), steps
    assert not any(step.startswith("SCAN messages") for step in steps), steps


def test_latest_messages_newest_first(database):
    database.write(lambda c: messages.insert_messages(c, [_message(i) for i in range(5)]))
    latest = database.read(lambda c: messages.latest_messages(c, limit=3))
    assert [r["msg_id"] for r in latest] == ["m-4", "m-3", "m-2"]


def test_participants_update_bumps_version_and_list_filters(database):
    database.write(lambda c: participants.insert_participant(c, _participant("did:key:zb", 2)))
    database.write(lambda c: participants.insert_participant(c, _participant("did:key:za", 1)))
    row = database.write(
        lambda c: participants.update_participant(c, "did:key:zb", {"display_name": "B"}, 99)
    )
    assert row["version"] == 2 and row["display_name"] == "B" and row["updated_us"] == 99
    listed = database.read(participants.list_participants)
    assert [r["did"] for r in listed] == ["did:key:za", "did:key:zb"]
    assert database.read(lambda c: participants.list_participants(c, "creator")) == []
    assert database.read(participants.count_participants) == 2


def test_snapshot_reflects_content(database):
    assert database.snapshot()["participants"] == []
    database.write(lambda c: participants.insert_participant(c, _participant("did:key:za")))
    assert database.snapshot()["participants"][0]["did"] == "did:key:za"


@pytest.mark.parametrize(
    "url",
    ["mysql://root@localhost/x", "sqlite://", "sqlite:///:memory:", "postgres://x", "nonsense"],
)
def test_unsupported_urls_are_refused_clearly(url):
    with pytest.raises(StoreError, match=r"sqlite|in-memory"):
        Database(url)
