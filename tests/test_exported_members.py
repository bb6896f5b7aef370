"""The public API is what each package's __all__ says, and all of it imports."""

import importlib
import inspect

import pytest

PACKAGES = [
    "liquidfab",
    "liquidfab.errors",
    "liquidfab.identity",
    "liquidfab.protocol",
    "liquidfab.db",
    "liquidfab.node",
    "liquidfab.ledger",
    "liquidfab.product",
    "liquidfab.factory",
    "liquidfab.production",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_exist(name):
    module = importlib.import_module(name)
    assert module.__all__, f"{name} declares no public API"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == []
    assert len(set(module.__all__)) == len(module.__all__)


@pytest.mark.parametrize("name", PACKAGES)
def test_public_members_are_documented(name):
    module = importlib.import_module(name)
    assert module.__doc__
    for member in module.__all__:
        obj = getattr(module, member)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, f"{name}.{member} has no docstring"
