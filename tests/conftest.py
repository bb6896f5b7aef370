"""Shared fixtures: the store contract runs every database test on SQLite and PostgreSQL.

PostgreSQL is the machine's server at 127.0.0.1:5432 (user postgres, trust). Each test
gets a fresh database cloned from a migrated template, so tests never see each other's
rows. Without the server the PostgreSQL cases skip, unless LIQUIDFAB_REQUIRE_SERVICES=1,
which turns the skip into a failure (CI sets it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from liquidfab.db import Database
from support import service_missing

PG_ADMIN_URL = os.environ.get(
    "LIQUIDFAB_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


class _Postgres:
    """Creates throwaway databases from one migrated template for the test session."""

    def __init__(self) -> None:
        import sqlalchemy as sa

        self.sa = sa
        self.admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(sa.text("select 1"))
        self.prefix = f"liquidfab_test_{uuid.uuid4().hex[:8]}"
        self.template = f"{self.prefix}_template"
        self.created: list[str] = []
        self._create(self.template)
        Database.open(self.url(self.template)).close()

    def url(self, name: str) -> str:
        return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    def _create(self, name: str, template: str | None = None) -> None:
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        with self.admin.connect() as conn:
            conn.execute(self.sa.text(sql))
        self.created.append(name)

    def fresh(self) -> str:
        name = f"{self.prefix}_{uuid.uuid4().hex[:8]}"
        self._create(name, self.template)
        return self.url(name)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in reversed(self.created):
                conn.execute(self.sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres() -> Iterator[_Postgres]:
    try:
        server = _Postgres()
    except Exception as e:  # any failure to reach the server is "service missing"
        service_missing("PostgreSQL at 127.0.0.1:5432", e)
    yield server
    server.drop_all()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'node.db'}"
    return request.getfixturevalue("postgres").fresh()


@pytest.fixture
def database(database_url) -> Iterator[Database]:
    db = Database.open(database_url)
    yield db
    db.close()


@pytest.fixture
def sqlite_database(tmp_path) -> Iterator[Database]:
    db = Database.open(f"sqlite:///{tmp_path / 'node.db'}")
    yield db
    db.close()
