"""Group commit: jobs share a transaction (SQLite) but not each other's fate.

The tests that need jobs in one group run on SQLite, where the committer groups; the
rest run on PostgreSQL too, where each job is its own transaction.
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text
from test_store_contract import _participant

from liquidfab.db import DuplicateKey, GroupCommitter, participants
from liquidfab.errors import StoreError
from support import failing_commits


@pytest.fixture
def committer(database):
    group = GroupCommitter(database)
    yield group
    group.close()


@pytest.fixture
def grouped(sqlite_database):
    group = GroupCommitter(sqlite_database)
    assert group.grouped
    yield group
    group.close()


def _count(database) -> int:
    return database.read(participants.count_participants)


def _insert(did: str):
    def job(conn):
        participants.insert_participant(conn, _participant(did))
        return did

    return job


def _held_group(committer, jobs):
    """Run ``jobs`` so that they all land in one group (the writer is held busy by another
    job meanwhile); what each returned or raised, in order."""
    started, release = threading.Event(), threading.Event()

    def hold(conn):
        started.set()
        release.wait(10)
        return "held"

    with ThreadPoolExecutor(len(jobs) + 1) as pool:
        first = pool.submit(committer.run, hold)
        assert started.wait(10)
        futures = [pool.submit(committer.run, job) for job in jobs]
        while committer._queue.qsize() < len(jobs):  # every job queued behind the held one
            threading.Event().wait(0.001)
        release.set()
        return [f.exception() or f.result() for f in [first, *futures]][1:]


def test_every_job_commits_and_gets_its_own_result(committer, database):
    dids = [f"did:key:zgroup{i:03d}" for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda d: committer.run(_insert(d)), dids))
    assert results == dids
    assert _count(database) == 40


def test_a_failing_job_undoes_only_its_own_writes(grouped, sqlite_database):
    committer, database = grouped, sqlite_database

    def half_then_fail(conn):
        participants.insert_participant(conn, _participant("did:key:zhalf"))
        raise ValueError("refused after writing")

    results = _held_group(
        committer, [_insert("did:key:zone"), half_then_fail, _insert("did:key:ztwo")]
    )
    assert results[0] == "did:key:zone" and results[2] == "did:key:ztwo"
    assert isinstance(results[1], ValueError)
    rows = database.read(participants.list_participants)
    assert sorted(r["did"] for r in rows) == ["did:key:zone", "did:key:ztwo"]


def test_a_database_error_in_a_job_is_a_store_error_and_the_group_goes_on(grouped, sqlite_database):
    committer, database = grouped, sqlite_database

    results = _held_group(
        committer,
        [_insert("did:key:zsame"), _insert("did:key:zsame"), _insert("did:key:zother")],
    )
    assert results[0] == "did:key:zsame"
    assert isinstance(results[1], DuplicateKey)
    assert results[2] == "did:key:zother"
    assert _count(database) == 2


def test_a_failed_commit_reaches_every_job_and_keeps_nothing(sqlite_database):
    database = sqlite_database
    committer = GroupCommitter(database)
    try:
        with failing_commits(database):
            results = _held_group(committer, [_insert("did:key:za"), _insert("did:key:zb")])
        assert all(isinstance(r, StoreError) for r in results)
        assert _count(database) == 0
        assert committer.run(_insert("did:key:zc")) == "did:key:zc"  # the writer lives on
    finally:
        committer.close()


def test_close_finishes_queued_jobs_then_refuses(database):
    committer = GroupCommitter(database)
    assert committer.run(_insert("did:key:zbefore")) == "did:key:zbefore"
    committer.close()
    with pytest.raises(StoreError, match="closed"):
        committer.run(_insert("did:key:zafter"))
    assert _count(database) == 1


def test_a_job_may_not_wait_for_another(grouped):
    with pytest.raises(StoreError, match="may not wait"):
        grouped.run(lambda conn: grouped.run(lambda c: c.execute(text("select 1"))))


def test_a_job_raising_base_exception_does_not_kill_the_writer(grouped, sqlite_database):
    def interrupt(conn):
        participants.insert_participant(conn, _participant("did:key:zgone"))
        raise KeyboardInterrupt

    results = _held_group(grouped, [_insert("did:key:zkept"), interrupt])
    assert results[0] == "did:key:zkept" and isinstance(results[1], KeyboardInterrupt)
    assert grouped.run(_insert("did:key:zlater")) == "did:key:zlater"
    assert _count(sqlite_database) == 2


def test_a_job_is_never_told_a_doomed_transaction_committed(committer, database):
    """On PostgreSQL a failed statement dooms the transaction even when the job catches
    the error, and COMMIT then silently rolls back: the job must hear of it."""
    committer.run(_insert("did:key:zexisting"))

    def swallow(conn):
        with contextlib.suppress(Exception):
            participants.insert_participant(conn, _participant("did:key:zexisting"))
        participants.insert_participant(conn, _participant("did:key:zafter"))
        return "done"

    def swallow_only(conn):
        with contextlib.suppress(Exception):
            participants.insert_participant(conn, _participant("did:key:zexisting"))
        return "done"

    try:
        result = committer.run(swallow)
    except StoreError:
        result = None
    rows = {r["did"] for r in database.read(participants.list_participants)}
    assert (result == "done") == ("did:key:zafter" in rows)
    if database.dialect == "postgresql":
        with pytest.raises(StoreError):
            committer.run(swallow_only)
    else:  # SQLite undoes the failed statement alone; the transaction stays good
        assert committer.run(swallow_only) == "done"


def test_a_lost_transaction_fails_every_job_of_its_group(grouped, sqlite_database):
    """SQLite rolls back the whole transaction on a full disk: no job may be told it
    committed, and none may be written outside the transaction."""
    pages = grouped.run(lambda c: c.exec_driver_sql("PRAGMA page_count").scalar())
    grouped.run(lambda c: c.exec_driver_sql(f"PRAGMA max_page_count={pages + 30}").scalar())

    def huge(conn):
        for i in range(200):
            row = _participant(f"did:key:zbig{i:03d}")
            row["display_name"] = "y" * 190
            row["endpoints"] = ["http://127.0.0.1/" + "z" * 3000]
            participants.insert_participant(conn, row)

    results = _held_group(grouped, [_insert("did:key:za"), huge, _insert("did:key:zb")])
    assert all(isinstance(r, StoreError) for r in results), results
    assert _count(sqlite_database) == 0
