"""The node's TUF repository, checked by python-tuf's own client, attack by attack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tuf.api import exceptions
from tuf.api.metadata import Metadata
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from liquidfab.errors import LiquidfabError
from liquidfab.fleet import FleetRepository, KeySigner, RepositoryKeys, tuf_key
from liquidfab.identity import SigningKey

FIRMWARE = {"product": "com.voltwerk.trail", "hardware": "mcu-a", "version": "1.1.0",
            "kind": "firmware"}  # fmt: skip


class FolderFetcher(FetcherInterface):
    """Serves the repository's folder as a web server would (URLs under http://repo/)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _fetch(self, url: str) -> Iterator[bytes]:
        path = self.folder / url.removeprefix("http://repo/")
        if not path.is_file():
            raise exceptions.DownloadHTTPError(f"not found: {url}", 404)
        return iter([path.read_bytes()])


@pytest.fixture
def keys() -> RepositoryKeys:
    return RepositoryKeys(
        root=[SigningKey.generate()],
        targets=SigningKey.generate(),
        snapshot=SigningKey.generate(),
        timestamp=SigningKey.generate(),
    )


@pytest.fixture
def repo(tmp_path, keys) -> FleetRepository:
    return FleetRepository.create(tmp_path / "repo", keys)


def _publish(repo: FleetRepository, keys: RepositoryKeys, name: str, data: bytes, **custom):
    return repo.publish(
        name,
        data,
        {**FIRMWARE, **custom},
        targets_key=keys.targets,
        snapshot_key=keys.snapshot,
        timestamp_key=keys.timestamp,
    )


def _device(repo: FleetRepository, tmp_path: Path, name: str = "device") -> Updater:
    """A device trusting the first root, with its own metadata and download folders."""
    state = tmp_path / name
    (state / "metadata").mkdir(parents=True, exist_ok=True)
    (state / "downloads").mkdir(exist_ok=True)
    return Updater(
        str(state / "metadata"),
        "http://repo/metadata/",
        str(state / "downloads"),
        "http://repo/targets/",
        fetcher=FolderFetcher(repo.folder),
        bootstrap=repo.root_bytes(),
    )


def test_a_device_downloads_and_verifies_a_published_target(repo, keys, tmp_path):
    info = _publish(repo, keys, "trail/firmware-1.1.0.bin", b"firmware 1.1.0")
    assert info.custom["hardware"] == "mcu-a" and info.length == 14
    device = _device(repo, tmp_path)
    device.refresh()
    found = device.get_targetinfo("trail/firmware-1.1.0.bin")
    assert found is not None and found.unrecognized_fields["custom"] == FIRMWARE
    path = device.download_target(found)
    assert Path(path).read_bytes() == b"firmware 1.1.0"
    assert device.get_targetinfo("trail/other.bin") is None
    assert [t.name for t in repo.target_infos()] == ["trail/firmware-1.1.0.bin"]


def test_arbitrary_software_with_a_bad_hash_is_refused(repo, keys, tmp_path):
    info = _publish(repo, keys, "fw.bin", b"good firmware")
    (repo.targets_dir / info.stored_as).write_bytes(b"evil firmware")  # same length
    device = _device(repo, tmp_path)
    device.refresh()
    with pytest.raises(exceptions.LengthOrHashMismatchError):
        device.download_target(device.get_targetinfo("fw.bin"))


def test_endless_data_is_cut_at_the_signed_length(repo, keys, tmp_path):
    info = _publish(repo, keys, "fw.bin", b"short")
    (repo.targets_dir / info.stored_as).write_bytes(b"short" + b"x" * 10_000)
    device = _device(repo, tmp_path)
    device.refresh()
    with pytest.raises(exceptions.DownloadError):
        device.download_target(device.get_targetinfo("fw.bin"))


def test_an_unsigned_target_list_is_refused(repo, keys, tmp_path):
    _publish(repo, keys, "fw.bin", b"v1")
    device = _device(repo, tmp_path)
    device.refresh()
    # an attacker without the targets key adds a target and signs with its own key
    md = repo.targets()
    md.signed.targets["evil.bin"] = md.signed.targets["fw.bin"]
    md.signed.version += 1
    md.signatures.clear()
    md.sign(KeySigner(SigningKey.generate()))
    repo._write(md)
    repo._snapshot_and_timestamp(keys.snapshot, keys.timestamp)  # the node's online keys
    fresh = _device(repo, tmp_path, "device-2")
    with pytest.raises(exceptions.UnsignedMetadataError):
        fresh.refresh()


def test_rollback_to_an_older_timestamp_is_refused(repo, keys, tmp_path):
    _publish(repo, keys, "fw.bin", b"v1")
    old = (repo.metadata_dir / "timestamp.json").read_bytes()
    _publish(repo, keys, "fw.bin", b"v2")
    device = _device(repo, tmp_path)
    device.refresh()
    (repo.metadata_dir / "timestamp.json").write_bytes(old)  # replay the older state
    again = _device(repo, tmp_path)  # same device folder: it remembers the newer one
    with pytest.raises(exceptions.BadVersionNumberError):
        again.refresh()


def test_a_frozen_repository_is_refused_once_the_timestamp_expires(repo, keys, tmp_path):
    md = Metadata.from_file(str(repo.metadata_dir / "timestamp.json"))
    md.signed.expires = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    md.signed.version += 1
    md.signatures.clear()
    md.sign(KeySigner(keys.timestamp))
    repo._write(md, versioned=False)
    with pytest.raises(exceptions.ExpiredMetadataError):
        _device(repo, tmp_path).refresh()


def test_mix_and_match_of_snapshot_and_targets_is_refused(repo, keys, tmp_path):
    _publish(repo, keys, "fw.bin", b"v1")
    _publish(repo, keys, "fw.bin", b"v2")
    snapshot = repo._latest("snapshot")
    version = snapshot.signed.meta["targets.json"].version
    # serve an older targets file under the version the snapshot names
    older = (repo.metadata_dir / f"{version - 1}.targets.json").read_bytes()
    (repo.metadata_dir / f"{version}.targets.json").write_bytes(older)
    with pytest.raises(exceptions.RepositoryError):
        _device(repo, tmp_path).refresh()


def test_the_timestamp_is_re_signed_before_it_expires(repo, keys, tmp_path):
    before = json.loads((repo.metadata_dir / "timestamp.json").read_bytes())["signed"]
    assert repo.refresh_timestamp(keys.timestamp) is False  # fresh: nothing to do
    assert repo.refresh_timestamp(keys.timestamp, within=timedelta(days=2)) is True
    after = json.loads((repo.metadata_dir / "timestamp.json").read_bytes())["signed"]
    assert after["version"] == before["version"] + 1
    assert after["meta"] == before["meta"]
    _device(repo, tmp_path).refresh()


def test_the_snapshot_is_re_signed_before_it_expires(repo, keys, tmp_path):
    before = repo._latest("snapshot").signed
    assert repo.refresh_snapshot(keys.snapshot, keys.timestamp) is False  # fresh
    assert repo.refresh_snapshot(keys.snapshot, keys.timestamp, within=timedelta(days=8))
    after = repo._latest("snapshot").signed
    assert after.version == before.version + 1 and after.meta == before.meta
    stamp = json.loads((repo.metadata_dir / "timestamp.json").read_bytes())["signed"]
    assert stamp["meta"]["snapshot.json"]["version"] == after.version
    _device(repo, tmp_path).refresh()


def test_root_rotation_is_followed_by_devices_that_trust_the_old_root(repo, keys, tmp_path):
    _publish(repo, keys, "fw.bin", b"v1")
    device = _device(repo, tmp_path)
    device.refresh()
    new_root = [SigningKey.generate(), SigningKey.generate()]
    assert repo.rotate_root(keys.root, new_root, threshold=2) == 2
    _publish(repo, keys, "fw.bin", b"v2")
    again = _device(repo, tmp_path)
    again.refresh()
    assert again._trusted_set.root.version == 2
    assert Path(again.download_target(again.get_targetinfo("fw.bin"))).read_bytes() == b"v2"
    # a rotation signed only by the new keys would not be trusted
    md = repo.root()
    md.signed.version += 1
    md.signatures.clear()
    for key in new_root[:1]:
        md.sign(KeySigner(key), append=True)
    repo._write(md)
    with pytest.raises(exceptions.UnsignedMetadataError):
        _device(repo, tmp_path, "device-3").refresh()


def test_publishing_refuses_bad_input_and_foreign_keys(repo, keys):
    with pytest.raises(LiquidfabError, match="custom fields"):
        repo.publish("fw.bin", b"x", {"kind": "firmware"}, targets_key=keys.targets,
                     snapshot_key=keys.snapshot, timestamp_key=keys.timestamp)  # fmt: skip
    with pytest.raises(LiquidfabError, match="kind"):
        _publish(repo, keys, "fw.bin", b"x", kind="virus")
    for bad in ("../etc/passwd", "/abs", "", "a\\b", "sp ace"):
        with pytest.raises(LiquidfabError, match="target name"):
            _publish(repo, keys, bad, b"x")
    with pytest.raises(LiquidfabError, match="targets key"):
        repo.publish("fw.bin", b"x", FIRMWARE, targets_key=keys.snapshot,
                     snapshot_key=keys.snapshot, timestamp_key=keys.timestamp)  # fmt: skip
    assert repo.target_infos() == [] and repo.targets().signed.version == 1
    with pytest.raises(LiquidfabError, match="already"):
        FleetRepository.create(repo.folder, keys)
    with pytest.raises(LiquidfabError, match="no file"):
        repo.read("../outside")
    assert tuf_key(keys.root[0]).keyid in repo.root().signed.roles["root"].keyids
