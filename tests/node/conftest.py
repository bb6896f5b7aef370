"""A node over the contract-test database (SQLite and PostgreSQL), and signers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from liquidfab.identity import SigningKey
from liquidfab.node import Node, create_app
from support import post, register_message


@pytest.fixture
def node_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def operator_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def node(database, node_key, operator_key) -> Iterator[Node]:
    yield Node(database, node_key, operators=[operator_key.did], title="test node")


@pytest.fixture
def client(node) -> Iterator[TestClient]:
    with TestClient(create_app(node)) as c:
        yield c


@pytest.fixture
def registered(client) -> SigningKey:
    """A key registered as an owner."""
    key = SigningKey.generate()
    assert post(client, register_message(key, name="Registered Owner")).status_code == 201
    return key
