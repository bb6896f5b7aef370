"""The node's TUF repository of device software, kept with python-tuf's Metadata API.

Four top-level roles, as TUF advises: ``root`` and ``targets`` are signed with keys the
operator keeps offline (its keystore), so a stolen node cannot make a device install
anything new; ``snapshot`` and ``timestamp`` are signed online by the node, which
re-signs the timestamp before it expires so devices can tell a frozen repository from a
quiet one. Consistent snapshots: metadata is published as ``<version>.<role>.json``
(``timestamp.json`` alone unversioned) and each target with its SHA-256 before its
base name, so a client never mixes files of two states.

A target carries custom fields (``product``, ``hardware``, ``version``, ``kind``) that
a device checks against itself before installing.

The repository lives in a folder::

    metadata/1.root.json … metadata/<n>.targets.json, <n>.snapshot.json, timestamp.json
    targets/<folders of the name>/<sha256>.<base name>
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from liquidfab.errors import LiquidfabError
from liquidfab.fleet.tuf_keys import KeySigner, tuf_key
from liquidfab.identity import SigningKey

__all__ = [
    "EXPIRY",
    "KINDS",
    "MARKET_PATHS",
    "MARKET_ROLE",
    "FleetRepository",
    "RepositoryKeys",
    "TargetInfo",
]

# How long each role's signature is good for: the offline roles for long, the online
# ones briefly (the timestamp is the freshness a device relies on).
EXPIRY = {
    "root": timedelta(days=365),
    "targets": timedelta(days=90),
    "snapshot": timedelta(days=7),
    "timestamp": timedelta(days=1),
}
KINDS = frozenset({"firmware", "app", "model", "config"})
# The market's delegated role and the target names it answers for: @territory/app/version.
MARKET_ROLE = "market"
MARKET_PATHS = ("@*/*/*",)
MAX_TARGET_BYTES = 512 * 1024 * 1024
_SERIALIZER = JSONSerializer(compact=False)


@dataclass(frozen=True)
class RepositoryKeys:
    """The keys of the four roles. ``root`` and ``targets`` are the offline ones."""

    root: Sequence[SigningKey]
    targets: SigningKey
    snapshot: SigningKey
    timestamp: SigningKey
    root_threshold: int = 1
    market: SigningKey | None = None  # online: the creators' market (see delegate_market)


@dataclass(frozen=True)
class TargetInfo:
    """A published target: its name, length, SHA-256 and custom fields."""

    name: str
    length: int
    sha256: str
    custom: Mapping[str, Any]

    @property
    def stored_as(self) -> str:
        """Its path below ``targets/``, as TUF clients ask for it: the hash prefixes the
        file's base name (``trail/<sha256>.firmware.bin``)."""
        folder, sep, base = self.name.rpartition("/")
        return f"{folder}{sep}{self.sha256}.{base}"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class FleetRepository:
    """A TUF repository in ``folder`` (see the module). Open one with ``create`` or
    ``open``; publishing needs the targets key, refreshing only the online keys."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.metadata_dir = self.folder / "metadata"
        self.targets_dir = self.folder / "targets"

    # -- reading ----------------------------------------------------------------------

    def _latest(self, role: str) -> Metadata[Any]:
        if role == "timestamp":
            return Metadata.from_file(str(self.metadata_dir / "timestamp.json"))
        versions = [
            int(p.name.split(".", 1)[0])
            for p in self.metadata_dir.glob(f"*.{role}.json")
            if p.name.split(".", 1)[0].isdigit()
        ]
        if not versions:
            raise LiquidfabError(f"no {role} metadata in {self.metadata_dir}")
        return Metadata.from_file(str(self.metadata_dir / f"{max(versions)}.{role}.json"))

    def root(self) -> Metadata[Root]:
        return self._latest("root")

    def targets(self) -> Metadata[Targets]:
        return self._latest("targets")

    def role_versions(self) -> dict[str, int]:
        """The latest version of each targets role held (top-level and delegated), as
        the snapshot lists them."""
        out: dict[str, int] = {}
        for p in self.metadata_dir.glob("*.json"):
            version, _, rest = p.name.partition(".")
            role = rest.removesuffix(".json")
            if version.isdigit() and role not in ("root", "snapshot", "timestamp"):
                out[role] = max(out.get(role, 0), int(version))
        return out

    def delegated(self, role: str) -> Metadata[Targets] | None:
        """The latest metadata of delegated role ``role``, or None."""
        try:
            return self._latest(role)
        except LiquidfabError:
            return None

    def root_bytes(self, version: int = 1) -> bytes:
        """A root to bootstrap a device's trust with (shipped in its image)."""
        return (self.metadata_dir / f"{version}.root.json").read_bytes()

    def target_infos(self) -> list[TargetInfo]:
        out = []
        for name, target in sorted(self.targets().signed.targets.items()):
            custom = target.unrecognized_fields.get("custom", {})
            out.append(TargetInfo(name, target.length, target.hashes["sha256"], custom))
        return out

    def read(self, relative: str) -> bytes:
        """A file of the repository by its path below the folder (``metadata/...`` or
        ``targets/...``); LiquidfabError when there is none or the path leaves it."""
        path = (self.folder / relative).resolve()
        base = self.folder.resolve()
        if base not in path.parents or not path.is_file():
            raise LiquidfabError(f"no file {relative} in the repository")
        return path.read_bytes()

    # -- writing ----------------------------------------------------------------------

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the repository's file lock: a node refreshing its timestamp and an
        operator publishing from another process take turns."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write(self, md: Metadata[Any], versioned: bool = True) -> None:
        role = md.signed.type
        name = "timestamp.json" if not versioned else f"{md.signed.version}.{role}.json"
        _write_atomic(self.metadata_dir / name, md.to_bytes(_SERIALIZER))

    @classmethod
    def create(cls, folder: Path, keys: RepositoryKeys) -> FleetRepository:
        """A new repository with no targets; refuses a folder that holds one already."""
        repo = cls(folder)
        if (repo.metadata_dir / "1.root.json").exists():
            raise LiquidfabError(f"{folder} already holds a repository")
        repo.metadata_dir.mkdir(parents=True, exist_ok=True)
        repo.targets_dir.mkdir(parents=True, exist_ok=True)
        now = _now()
        root = Root(expires=now + EXPIRY["root"], consistent_snapshot=True)
        for key in keys.root:
            root.add_key(tuf_key(key), "root")
        root.roles["root"].threshold = keys.root_threshold
        root.add_key(tuf_key(keys.targets), "targets")
        root.add_key(tuf_key(keys.snapshot), "snapshot")
        root.add_key(tuf_key(keys.timestamp), "timestamp")
        md_root = Metadata(root)
        for key in keys.root:
            md_root.sign(KeySigner(key), append=True)
        repo._write(md_root)
        md_targets = Metadata(Targets(expires=now + EXPIRY["targets"]))
        if keys.market is not None:
            repo._delegate_market(md_targets.signed, keys.market)
        md_targets.sign(KeySigner(keys.targets))
        repo._write(md_targets)
        repo._snapshot_and_timestamp(keys.snapshot, keys.timestamp)
        return repo

    def _delegate_market(self, targets: Targets, market_key: SigningKey) -> None:
        """Delegate every territory's names (``@name/app/version``) to the online market
        role, terminating: no other role is asked for them. Its first version is empty."""
        key = tuf_key(market_key)
        role = DelegatedRole(MARKET_ROLE, [key.keyid], 1, True, paths=list(MARKET_PATHS))
        targets.delegations = Delegations({key.keyid: key}, roles={MARKET_ROLE: role})
        md = Metadata(Targets(expires=_now() + EXPIRY["targets"]))
        md.sign(KeySigner(market_key))
        self._write_role(md, MARKET_ROLE)

    def delegate_market(
        self,
        market_key: SigningKey,
        *,
        targets_key: SigningKey,
        snapshot_key: SigningKey,
        timestamp_key: SigningKey,
    ) -> bool:
        """Add the market delegation to a repository made without it; False if it has one.
        Needs the offline targets key, once."""
        with self.lock():
            md = self.targets()
            if md.signed.delegations is not None and MARKET_ROLE in (
                md.signed.delegations.roles or {}
            ):
                return False
            if tuf_key(targets_key).keyid not in self.root().signed.roles["targets"].keyids:
                raise LiquidfabError("that key is not the repository's targets key")
            self._delegate_market(md.signed, market_key)
            md.signed.version += 1
            md.signed.expires = _now() + EXPIRY["targets"]
            md.signatures.clear()
            md.sign(KeySigner(targets_key))
            self._write(md)
            self._snapshot_and_timestamp(snapshot_key, timestamp_key)
            return True

    def _write_role(self, md: Metadata[Targets], role: str) -> bool:
        """Write a delegated role's metadata as ``<version>.<role>.json``; False when that
        version is there already (written by an earlier sync)."""
        path = self.metadata_dir / f"{md.signed.version}.{role}.json"
        if path.exists():
            return False
        _write_atomic(path, md.to_bytes(_SERIALIZER))
        return True

    def write_delegated(
        self,
        roles: Mapping[str, Metadata[Targets]],
        files: Mapping[str, bytes],
        *,
        snapshot_key: SigningKey,
        timestamp_key: SigningKey,
    ) -> bool:
        """Write delegated roles' metadata and the target files they list (``files``: the
        path below ``targets/`` -> bytes), then a new snapshot and timestamp if anything
        was new. The caller checked the signatures; devices check them again."""
        with self.lock():
            changed = False
            for relative, data in files.items():
                path = self.targets_dir / relative
                if not path.exists():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    _write_atomic(path, data)
            for role, md in roles.items():
                changed |= self._write_role(md, role)
            if changed:
                self._snapshot_and_timestamp(snapshot_key, timestamp_key)
            return changed

    def _snapshot_and_timestamp(self, snapshot_key: SigningKey, timestamp_key: SigningKey) -> None:
        now = _now()
        targets_version = self.targets().signed.version
        try:
            previous = self._latest("snapshot").signed.version
        except LiquidfabError:
            previous = 0
        snapshot = Snapshot(version=previous + 1, expires=now + EXPIRY["snapshot"])
        versions = self.role_versions()
        versions["targets"] = targets_version
        for role, version in sorted(versions.items()):
            snapshot.meta[f"{role}.json"] = MetaFile(version=version)
        md_snapshot = Metadata(snapshot)
        md_snapshot.sign(KeySigner(snapshot_key))
        self._write(md_snapshot)
        self._timestamp(timestamp_key, snapshot.version)

    def _timestamp(self, timestamp_key: SigningKey, snapshot_version: int) -> None:
        path = self.metadata_dir / "timestamp.json"
        previous = self._latest("timestamp").signed.version if path.exists() else 0
        timestamp = Timestamp(version=previous + 1, expires=_now() + EXPIRY["timestamp"])
        timestamp.snapshot_meta = MetaFile(version=snapshot_version)
        md = Metadata(timestamp)
        md.sign(KeySigner(timestamp_key))
        self._write(md, versioned=False)

    def publish(
        self,
        name: str,
        data: bytes,
        custom: Mapping[str, Any],
        *,
        targets_key: SigningKey,
        snapshot_key: SigningKey,
        timestamp_key: SigningKey,
    ) -> TargetInfo:
        """Add (or replace) target ``name`` with ``data``; a new targets, snapshot and
        timestamp. Raises ``LiquidfabError`` for a bad name, an unknown kind, missing
        custom fields, a target too large, or a targets key the root does not name."""
        _check_name(name)
        missing = {"product", "hardware", "version", "kind"} - set(custom)
        if missing:
            raise LiquidfabError(f"target {name}: custom fields {sorted(missing)} are missing")
        if custom["kind"] not in KINDS:
            raise LiquidfabError(f"target {name}: kind is one of {sorted(KINDS)}")
        if len(data) > MAX_TARGET_BYTES:
            raise LiquidfabError(f"target {name} is larger than {MAX_TARGET_BYTES} bytes")
        with self.lock():
            return self._publish(name, data, custom, targets_key, snapshot_key, timestamp_key)

    def _publish(
        self,
        name: str,
        data: bytes,
        custom: Mapping[str, Any],
        targets_key: SigningKey,
        snapshot_key: SigningKey,
        timestamp_key: SigningKey,
    ) -> TargetInfo:
        root = self.root().signed
        if tuf_key(targets_key).keyid not in root.roles["targets"].keyids:
            raise LiquidfabError("that key is not the repository's targets key")
        digest = hashlib.sha256(data).hexdigest()
        info = TargetInfo(name, len(data), digest, dict(custom))
        path = self.targets_dir / info.stored_as
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, data)
        md = self.targets()
        target = TargetFile(
            length=len(data),
            hashes={"sha256": digest},
            path=name,
            unrecognized_fields={"custom": dict(custom)},
        )
        md.signed.targets[name] = target
        md.signed.version += 1
        md.signed.expires = _now() + EXPIRY["targets"]
        md.signatures.clear()
        md.sign(KeySigner(targets_key))
        self._write(md)
        self._snapshot_and_timestamp(snapshot_key, timestamp_key)
        return info

    def refresh_timestamp(
        self, timestamp_key: SigningKey, *, within: timedelta | None = None
    ) -> bool:
        """Re-sign the timestamp if it expires within ``within`` (default: half its life);
        True when it did. The node calls this on a schedule."""
        within = within if within is not None else EXPIRY["timestamp"] / 2
        with self.lock():
            current = self._latest("timestamp").signed
            if current.expires - _now() > within:
                return False
            self._timestamp(timestamp_key, current.snapshot_meta.version)
            return True

    def refresh_snapshot(
        self,
        snapshot_key: SigningKey,
        timestamp_key: SigningKey,
        *,
        within: timedelta | None = None,
    ) -> bool:
        """Re-sign the snapshot (and so the timestamp) if it expires within ``within``
        (default: half its life); True when it did. Without it a repository nobody
        publishes to would freeze for devices after the snapshot's week."""
        within = within if within is not None else EXPIRY["snapshot"] / 2
        with self.lock():
            if self._latest("snapshot").signed.expires - _now() > within:
                return False
            self._snapshot_and_timestamp(snapshot_key, timestamp_key)
            return True

    def rotate_root(
        self,
        old_keys: Sequence[SigningKey],
        new_keys: Sequence[SigningKey],
        *,
        threshold: int = 1,
    ) -> int:
        """A new root naming ``new_keys`` for the root role, signed by the old keys (a
        threshold of them) and the new ones, as TUF's root rotation asks; its version."""
        with self.lock():
            return self._rotate_root(old_keys, new_keys, threshold)

    def _rotate_root(
        self, old_keys: Sequence[SigningKey], new_keys: Sequence[SigningKey], threshold: int
    ) -> int:
        md = self.root()
        root = md.signed
        for keyid in list(root.roles["root"].keyids):
            root.revoke_key(keyid, "root")
        for key in new_keys:
            root.add_key(tuf_key(key), "root")
        root.roles["root"].threshold = threshold
        root.version += 1
        root.expires = _now() + EXPIRY["root"]
        md.signatures.clear()
        for key in [*old_keys, *new_keys]:
            md.sign(KeySigner(key), append=True)
        self._write(md)
        return root.version


def _check_name(name: str) -> None:
    if name.startswith("@"):  # devices look at top-level targets before the market's
        raise LiquidfabError(f"target name {name!r}: names starting with @ are the market's")
    if (
        not name
        or len(name) > 200
        or name.startswith((".", "/"))
        or ".." in name
        or "\\" in name
        or any(ord(c) < 33 for c in name)
    ):
        raise LiquidfabError(f"target name {name!r}: letters, digits, '-', '_', '.', '/' only")
