"""Fixtures of the fleet tests: a served copy of the e-bike world and its helpers."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient
from fleet_support import EXAMPLE, Fleet

from liquidfab.node import create_app, open_world_node


@pytest.fixture
def served(tmp_path):
    folder = tmp_path / "ebike"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("keys", "state"))
    node = open_world_node(folder)
    with TestClient(create_app(node)) as client:
        yield folder, node, client
    node.close()


@pytest.fixture
def fleet(served, tmp_path) -> Fleet:
    return Fleet(*served, tmp_path)
