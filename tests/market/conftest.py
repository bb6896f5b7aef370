"""Fixtures of the market tests: a served copy of the e-bike world."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from market_support import Market, copy_world

from liquidfab.node import create_app, open_world_node
from liquidfab.node.world import load_world

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ebike"


@pytest.fixture
def served(tmp_path):
    folder = copy_world(tmp_path, market=False)
    node = open_world_node(folder)
    with TestClient(create_app(node)) as client:
        yield folder, node, client
    node.close()


@pytest.fixture
def world(served):
    folder, node, client = served
    return node, client, load_world(folder).keystore(folder)


@pytest.fixture
def market(served, tmp_path) -> Market:
    return Market(*served, tmp_path)
