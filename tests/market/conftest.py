"""Fixtures of the market tests: a served copy of the e-bike world."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from market_support import Market

from liquidfab.node import create_app, open_world_node
from liquidfab.node.world import load_world

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ebike"


def copy_world(tmp_path: Path, *, market: bool) -> Path:
    """A copy of the e-bike world; without its market section unless ``market``, so a
    test claims and publishes what it needs itself."""
    folder = tmp_path / "ebike"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("keys", "state"))
    if not market:
        path = folder / "world.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data.pop("market", None)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return folder


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
