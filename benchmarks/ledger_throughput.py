"""Durable ledger transfers per second, against raw inserts of the same rows.

One run measures, on one machine, for batch sizes 1, 100, 1,000 and 8,000:

1. transfers per second through ``Ledger.create_transfers`` (the public batch API, with
   its group-commit writer) on SQLite with ``synchronous=FULL`` (the WAL is synced at
   every commit, so an acknowledged batch survives power loss) and on PostgreSQL;
   batch size 1 called in a loop from one thread is one durable commit per transfer;
2. the ceiling: the same rows (the transfers table's columns) inserted with the
   driver's own ``executemany`` into an unindexed table of the same database, in
   batches of the same size, one commit per batch (``sqlite3`` in WAL mode with
   ``synchronous=FULL``; ``psycopg``).

Transfers move small random amounts between random pairs of 10,000 accounts, all
funded from the treasury first, so none may fail; their ids are UUIDv7 (time-ordered).
Transfers are built before each timed window, and every result is checked afterwards:
one that is not ``ok`` aborts the run rather than being counted.

    python benchmarks/ledger_throughput.py            # small, well under a minute
    python benchmarks/ledger_throughput.py --full     # the headline size
    python benchmarks/ledger_throughput.py --profile  # also cProfile SQLite at batch 1,000
    python benchmarks/ledger_throughput.py --postgres postgresql+psycopg://u@host/db
    python benchmarks/ledger_throughput.py --no-postgres

Without ``--postgres`` a throwaway database is created (and dropped afterwards) on the
server at 127.0.0.1:5432 as user postgres; if that server cannot be reached, the
PostgreSQL rows are skipped with a message.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from liquidfab.db import Database
from liquidfab.db.database import savepoint
from liquidfab.ledger import Account, Ledger, Transfer, account_id_for, apply_transfers
from liquidfab.protocol import uuid7

BATCH_SIZES = (1, 100, 1_000, 8_000)
LEDGER = "LQD"
FUNDING = 10**12  # base units each account gets before the timed runs
GOALS = {1_000: 50_000, 1: 3_000}  # SQLite: batch size -> transfers per second
PG_DEFAULT_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


@dataclass(frozen=True)
class Sizes:
    """How many accounts there are and how many transfers each batch size sends."""

    accounts: int
    transfers: dict[int, int]  # batch size -> transfers timed
    min_seconds: float  # a timed window is repeated (fresh transfers) until this long


SMALL = Sizes(10_000, {1: 1_000, 100: 20_000, 1_000: 50_000, 8_000: 80_000}, 0.0)
FULL = Sizes(10_000, {1: 5_000, 100: 200_000, 1_000: 500_000, 8_000: 800_000}, 0.0)


# --- the rows -----------------------------------------------------------------------------


def fake_did(rng: random.Random) -> str:
    """A did:key-shaped identifier of the real length (Ed25519: z6Mk + 44 base58 chars)."""
    return "did:key:z6Mk" + "".join(rng.choices(_B58, k=44))


def make_transfers(rng: random.Random, accounts: list[str], count: int) -> list[Transfer]:
    """``count`` plain transfers between random distinct accounts, UUIDv7 ids in order."""
    out = []
    n = len(accounts)
    for _ in range(count):
        d = rng.randrange(n)
        c = rng.randrange(n - 1)
        c += c >= d
        out.append(
            Transfer(uuid7(), accounts[d], accounts[c], rng.randint(1, 1000), LEDGER, "bench")
        )
    return out


def rows_of(transfers: list[Transfer], first_ts: int) -> list[tuple[Any, ...]]:
    """The transfers table's columns, as the store writes them, with fresh timestamps."""
    return [
        (
            first_ts + i,
            t.id,
            t.debit_account_id,
            t.credit_account_id,
            t.amount,
            t.pending_id,
            t.ledger,
            t.code,
            t.flags,
            t.timeout,
            t.message_source,
            t.message_id,
        )
        for i, t in enumerate(transfers)
    ]


CEILING_COLUMNS = (
    "timestamp BIGINT NOT NULL, id VARCHAR(36) NOT NULL, debit_account_id VARCHAR(300) NOT NULL, "
    "credit_account_id VARCHAR(300) NOT NULL, amount BIGINT NOT NULL, pending_id VARCHAR(36), "
    "ledger VARCHAR(12) NOT NULL, code VARCHAR(64) NOT NULL, flags INTEGER NOT NULL, "
    "timeout INTEGER NOT NULL, message_source VARCHAR(200), message_id VARCHAR(200)"
)


def check(results: list[Any], transfers: list[Transfer]) -> None:
    """Fail loudly unless every transfer got its own ``ok``."""
    if len(results) != len(transfers):
        raise SystemExit(f"REFUSED: {len(transfers)} transfers, {len(results)} results")
    for r, t in zip(results, transfers, strict=True):
        if not r.ok or r.id != t.id:
            raise SystemExit(f"REFUSED: transfer {t.id} got {r.result!r}")


# --- one database -------------------------------------------------------------------------


@dataclass
class Measured:
    transfers: int = 0
    seconds: float = 0.0
    cpu: float = 0.0  # this process, every thread

    @property
    def rate(self) -> float:
        return self.transfers / self.seconds if self.seconds else float("nan")


class Target:
    """One database under test: its ledger, funded accounts, and a raw-insert connection."""

    def __init__(self, name: str, url: str, sizes: Sizes, rng: random.Random) -> None:
        self.name, self.url, self.rng = name, url, rng
        self.database = Database.open(url, synchronous="FULL")
        self.ledger = Ledger(self.database)
        self.table = f"bench_ceiling_{uuid.uuid4().hex[:8]}"
        owner = fake_did(rng)
        treasury = self.ledger.define_ledger(LEDGER, 6, owner).treasury
        self.accounts = [account_id_for(fake_did(rng)) for _ in range(sizes.accounts)]
        for i in range(0, len(self.accounts), 8_000):
            chunk = self.accounts[i : i + 8_000]
            results = self.ledger.create_accounts([Account(a, LEDGER, "wallet") for a in chunk])
            if not all(r.ok for r in results):
                raise SystemExit(f"account creation failed: {results[0].result}")
            funding = [Transfer(uuid7(), treasury, a, FUNDING, LEDGER, "fund") for a in chunk]
            check(self.ledger.create_transfers(funding), funding)

    def settings(self) -> str:
        """What makes a commit durable here, read back from the writer's connection."""
        if self.database.dialect == "sqlite":
            level = self.database.write(lambda c: c.exec_driver_sql("PRAGMA synchronous").scalar())
            mode = self.database.write(lambda c: c.exec_driver_sql("PRAGMA journal_mode").scalar())
            names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
            return f"journal_mode={mode}, synchronous={names.get(level, level)}"
        names = ("server_version", "fsync", "synchronous_commit", "wal_sync_method")
        values = [
            self.database.read(lambda c, n=n: c.exec_driver_sql(f"SHOW {n}").scalar())
            for n in names
        ]
        return ", ".join(f"{n}={v}" for n, v in zip(names, values, strict=True))

    def transfers(self, batch: int, total: int, min_seconds: float) -> Measured:
        """Time ``total`` transfers in batches of ``batch`` (after a short warm-up)."""
        out = Measured()
        warm = make_transfers(self.rng, self.accounts, batch * (2 if batch > 1 else 20))
        for i in range(0, len(warm), batch):
            check(self.ledger.create_transfers(warm[i : i + batch]), warm[i : i + batch])
        while True:
            todo = make_transfers(self.rng, self.accounts, total)
            groups = [todo[i : i + batch] for i in range(0, total, batch)]
            create = self.ledger.create_transfers
            cpu0, t0 = time.process_time(), time.perf_counter()
            results = [create(g) for g in groups]
            t1, cpu1 = time.perf_counter(), time.process_time()
            for r, g in zip(results, groups, strict=True):
                check(r, g)
            out.transfers += total
            out.seconds += t1 - t0
            out.cpu += cpu1 - cpu0
            if out.seconds >= min_seconds:
                return out

    def ceiling(self, batch: int, total: int, min_seconds: float) -> Measured:
        """The same rows through the bare driver into an unindexed table, a commit a batch."""
        out = Measured()
        insert, connect = self._raw()
        try:
            rows = rows_of(make_transfers(self.rng, self.accounts, batch * 2), 1)
            insert(rows, batch)  # warm-up
            ts = 1 + len(rows)
            while True:
                rows = rows_of(make_transfers(self.rng, self.accounts, total), ts)
                ts += total
                cpu0, t0 = time.process_time(), time.perf_counter()
                insert(rows, batch)
                t1, cpu1 = time.perf_counter(), time.process_time()
                out.transfers += total
                out.seconds += t1 - t0
                out.cpu += cpu1 - cpu0
                if out.seconds >= min_seconds:
                    return out
        finally:
            connect.close()

    def _raw(self) -> tuple[Callable[[list[tuple[Any, ...]], int], None], Any]:
        """An insert function over a fresh driver connection, and that connection."""
        values = ", ".join(["?"] * 12)
        if self.database.dialect == "sqlite":
            conn = sqlite3.connect(self.url[len("sqlite:///") :], isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ({CEILING_COLUMNS})")
            sql = f"INSERT INTO {self.table} VALUES ({values})"

            def insert(rows: list[tuple[Any, ...]], batch: int) -> None:
                for i in range(0, len(rows), batch):
                    conn.execute("BEGIN IMMEDIATE")
                    conn.executemany(sql, rows[i : i + batch])
                    conn.execute("COMMIT")

            return insert, conn
        import psycopg

        conn = psycopg.connect(self.url.replace("postgresql+psycopg://", "postgresql://", 1))
        with conn.transaction():
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ({CEILING_COLUMNS})")
        sql = f"INSERT INTO {self.table} VALUES ({values.replace('?', '%s')})"

        def pg_insert(rows: list[tuple[Any, ...]], batch: int) -> None:
            for i in range(0, len(rows), batch):
                with conn.cursor() as cur:
                    cur.executemany(sql, rows[i : i + batch])
                conn.commit()

        return pg_insert, conn

    def close(self) -> None:
        try:
            self.database.write(lambda c: c.exec_driver_sql(f"DROP TABLE IF EXISTS {self.table}"))
        finally:
            self.ledger.close()
            self.database.close()


# --- PostgreSQL ---------------------------------------------------------------------------


class ThrowawayPostgres:
    """A database created on the server for this run and dropped afterwards."""

    def __init__(self, admin_url: str) -> None:
        import sqlalchemy as sa

        self.sa = sa
        self.admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.name = f"liquidfab_bench_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        self.url = admin_url.rsplit("/", 1)[0] + f"/{self.name}"

    def drop(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(self.sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


# --- profile ------------------------------------------------------------------------------


def profile_sqlite(sizes: Sizes, batch: int = 1_000, top: int = 30) -> str:
    """cProfile of the SQLite batch path in this thread: one write transaction a batch,
    the store's ``apply_transfers`` inside a savepoint, as the group-commit writer runs it."""
    rng = random.Random(2)
    with tempfile.TemporaryDirectory(prefix="liquidfab-prof-") as tmp:
        target = Target("sqlite", f"sqlite:///{Path(tmp) / 'ledger.db'}", sizes, rng)
        database = target.database
        count = min(sizes.transfers[batch], 50_000)
        for _ in range(2):  # warm-up
            warm = make_transfers(rng, target.accounts, batch)
            check(target.ledger.create_transfers(warm), warm)
        todo = make_transfers(rng, target.accounts, count)
        groups = [todo[i : i + batch] for i in range(0, count, batch)]

        def job(group: list[Transfer]) -> Callable[[Any], Any]:
            def run(conn: Any) -> Any:
                with savepoint(conn):
                    return apply_transfers(conn, group, time.time_ns())

            return run

        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        results = [database.write(job(g)) for g in groups]
        prof.disable()
        elapsed = time.perf_counter() - t0
        for r, g in zip(results, groups, strict=True):
            check(r, g)
        target.close()
    buf = io.StringIO()
    buf.write(f"SQLite batch {batch:,}: {count / elapsed:,.0f} transfers/s under cProfile\n")
    stats = pstats.Stats(prof, stream=buf).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return buf.getvalue()


# --- report -------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import psycopg
    import sqlalchemy

    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "psycopg": psycopg.__version__,
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def table(rows: list[tuple[str, int, Measured, Measured]]) -> Iterator[str]:
    head = f"| {'database':<10} | {'batch':>5} | {'transfers/s':>11} | {'ceiling/s':>10}"
    yield head + " | ratio | goal"
    yield f"|{'-' * 12}|{'-' * 7}|{'-' * 13}|{'-' * 12}|-------|------"
    for name, batch, m, ceiling in rows:
        goal = ""
        if name == "sqlite" and batch in GOALS:
            met = "MET" if m.rate >= GOALS[batch] else "NOT MET"
            goal = f">= {GOALS[batch]:,}/s {met}"
        yield (
            f"| {name:<10} | {batch:>5,} | {m.rate:>11,.0f} | {ceiling.rate:>10,.0f} | "
            f"{m.rate / ceiling.rate:>5.2f} | {goal}"
        ).rstrip()


def measure(target: Target, sizes: Sizes) -> list[tuple[str, int, Measured, Measured]]:
    print(f"{target.name}: {target.settings()}", flush=True)
    rows = []
    for batch in BATCH_SIZES:
        total = sizes.transfers[batch]
        m = target.transfers(batch, total, sizes.min_seconds)
        c = target.ceiling(batch, total, sizes.min_seconds)
        print(
            f"  batch {batch:>5,}: {m.transfers:>9,} transfers in {m.seconds:6.2f} s"
            f" = {m.rate:>8,.0f}/s ({m.cpu / m.transfers * 1e6:6.1f} us CPU each);"
            f" raw inserts {c.rate:>9,.0f}/s ({c.cpu / c.transfers * 1e6:5.1f} us CPU each)",
            flush=True,
        )
        rows.append((target.name, batch, m, c))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the headline size")
    parser.add_argument("--profile", action="store_true", help="cProfile SQLite at batch 1,000")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database to use")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()

    sizes = FULL if args.full else SMALL
    print(" ".join(f"{k}: {v};" for k, v in machine().items()).rstrip(";"))
    print(f"accounts: {sizes.accounts:,}; transfers per batch size: {sizes.transfers}")
    started = time.perf_counter()
    rows: list[tuple[str, int, Measured, Measured]] = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="liquidfab-bench-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
            target = Target("sqlite", url, sizes, random.Random(1))
            try:
                rows += measure(target, sizes)
            finally:
                target.close()
    if not args.no_postgres:
        rows += run_postgres(args.postgres, sizes)
    print()
    print("\n".join(table(rows)))
    print(f"\nwhole run: {time.perf_counter() - started:.1f} s")
    if args.profile:
        print()
        print(profile_sqlite(sizes))


def run_postgres(url: str | None, sizes: Sizes) -> list[tuple[str, int, Measured, Measured]]:
    throwaway = None
    try:
        if url is None:
            throwaway = ThrowawayPostgres(PG_DEFAULT_ADMIN)
            url = throwaway.url
        target = Target("postgresql", url, sizes, random.Random(3))
    except Exception as e:  # an unreachable server is a skip, not a failure
        if throwaway is not None:
            throwaway.drop()
        where = url or PG_DEFAULT_ADMIN
        print(f"postgresql: SKIPPED, {where} not usable ({e.__class__.__name__}: {e})")
        return []
    try:
        return measure(target, sizes)
    finally:
        target.close()
        if throwaway is not None:
            throwaway.drop()


if __name__ == "__main__":
    main()
