import stat

import pytest

from liquidfab.errors import IdentityError
from liquidfab.identity import Keystore


def test_new_key_is_private_and_reloads(tmp_path):
    store = Keystore(tmp_path / "keys")
    key = store.new("alice")
    file = tmp_path / "keys" / "alice.key.json"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert store.get("alice").did == key.did
    assert [k.name for k in store.list()] == ["alice"]
    assert store.info("alice").did == key.did
    assert not list((tmp_path / "keys").glob(".*tmp"))


def test_refuses_to_overwrite(tmp_path):
    store = Keystore(tmp_path)
    first = store.new("bob")
    with pytest.raises(IdentityError, match="already exists"):
        store.new("bob")
    assert store.get("bob").did == first.did


def test_get_or_create_is_stable(tmp_path):
    store = Keystore(tmp_path)
    assert store.get_or_create("x").did == store.get_or_create("x").did


@pytest.mark.parametrize("name", ["", "../escape", "UPPER", "a/b", ".hidden", "x" * 65])
def test_bad_names_refused(tmp_path, name):
    with pytest.raises(IdentityError, match="not allowed"):
        Keystore(tmp_path).new(name)
    assert list(tmp_path.iterdir()) == []


def test_missing_and_corrupt_keys(tmp_path):
    store = Keystore(tmp_path)
    with pytest.raises(IdentityError, match="liquidfab keys new nobody"):
        store.get("nobody")
    store.new("carol")
    file = tmp_path / "carol.key.json"
    file.write_text(file.read_text().replace('"did": "did:key:z', '"did": "did:key:zX'))
    with pytest.raises(IdentityError, match="corrupt"):
        store.get("carol")
    file.write_text("{not json")
    with pytest.raises(IdentityError, match="unreadable"):
        store.get("carol")


def test_list_of_empty_or_missing_folder(tmp_path):
    assert Keystore(tmp_path / "none").list() == []
