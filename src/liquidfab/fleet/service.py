"""The node's repository service: where the repository lives, which keys sign online, and
the freshness of its timestamp.

A world keeps its repository in ``state/tuf``. The first start creates it with the
world's ``tuf-root`` and ``tuf-targets`` keys (the operator's, offline: the node never
holds them after that) and the node's online ``tuf-snapshot`` and ``tuf-timestamp``
keys. Publishing a release needs the targets key, so it is an operator's act
(``liquidfab fleet publish``). Whenever a device reads the timestamp, the node first
re-signs it (and the snapshot) if less than half its life is left, so a repository
nobody publishes to stays fresh while one whose node is stopped freezes visibly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from liquidfab.fleet.repository import FleetRepository, RepositoryKeys, TargetInfo
from liquidfab.identity import Keystore, SigningKey

__all__ = ["OFFLINE_KEYS", "ONLINE_KEYS", "RepositoryService", "open_repository"]

OFFLINE_KEYS = ("tuf-root", "tuf-targets")
ONLINE_KEYS = ("tuf-snapshot", "tuf-timestamp", "tuf-market")


class RepositoryService:
    """A repository and the node's online keys; the repository's file lock orders writers."""

    def __init__(
        self,
        repository: FleetRepository,
        snapshot_key: SigningKey,
        timestamp_key: SigningKey,
        market_key: SigningKey | None = None,
    ) -> None:
        self.repository = repository
        self._snapshot = snapshot_key
        self._timestamp = timestamp_key
        self.market_key = market_key
        # creators' uploaded artifacts wait here (by SHA-256) until a signed release names
        # them; outside the repository folder, so nothing unsigned is ever served
        self.uploads = repository.folder.parent / "market-uploads"

    def write_delegated(self, roles: Mapping[str, Any], files: Mapping[str, bytes]) -> bool:
        return self.repository.write_delegated(
            roles, files, snapshot_key=self._snapshot, timestamp_key=self._timestamp
        )

    def publish(
        self, name: str, data: bytes, custom: Mapping[str, Any], *, targets_key: SigningKey
    ) -> TargetInfo:
        return self.repository.publish(
            name,
            data,
            custom,
            targets_key=targets_key,
            snapshot_key=self._snapshot,
            timestamp_key=self._timestamp,
        )

    def read(self, relative: str) -> bytes:
        """A repository file; the timestamp re-signed first when it is getting old."""
        if relative == "metadata/timestamp.json":
            self.repository.refresh_snapshot(self._snapshot, self._timestamp)
            self.repository.refresh_timestamp(self._timestamp)
        return self.repository.read(relative)


def open_repository(folder: Path, keystore: Keystore) -> RepositoryService:
    """The repository in ``folder``, created on first use with ``keystore``'s keys."""
    snapshot, timestamp, market = (keystore.get_or_create(name) for name in ONLINE_KEYS)
    repository = FleetRepository(folder)
    if not (repository.metadata_dir / "1.root.json").exists():
        root, targets = (keystore.get_or_create(name) for name in OFFLINE_KEYS)
        keys = RepositoryKeys([root], targets, snapshot, timestamp, market=market)
        repository = FleetRepository.create(folder, keys)
    elif keystore.exists(OFFLINE_KEYS[1]):  # made before the market: delegate to it now
        repository.delegate_market(
            market,
            targets_key=keystore.get(OFFLINE_KEYS[1]),
            snapshot_key=snapshot,
            timestamp_key=timestamp,
        )
    return RepositoryService(repository, snapshot, timestamp, market)
