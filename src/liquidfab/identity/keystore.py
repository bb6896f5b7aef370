"""A folder of named private keys.

One JSON file per key, written 0600 inside a 0700 folder, created atomically so
a crash never leaves half a key. The secret is read only when a key is used.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from liquidfab.errors import IdentityError
from liquidfab.identity.keys import SigningKey

__all__ = ["KeyInfo", "Keystore"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_SUFFIX = ".key.json"


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a stored key: never the secret."""

    name: str
    did: str
    created: str
    path: Path


class Keystore:
    """Named Ed25519 keys in one folder."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def _file(self, name: str) -> Path:
        if not _NAME.match(name):
            raise IdentityError(
                f"key name {name!r} is not allowed: use 1-64 characters from a-z, 0-9, '.', '_', "
                "'-', starting with a letter or digit"
            )
        return self.path / f"{name}{_SUFFIX}"

    def exists(self, name: str) -> bool:
        return self._file(name).exists()

    def new(self, name: str, key: SigningKey | None = None) -> SigningKey:
        """Create and store a key; refuses to overwrite an existing one."""
        file = self._file(name)
        key = key or SigningKey.generate()
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        record = {
            "name": name,
            "did": key.did,
            "alg": "Ed25519",
            "seed": base64.urlsafe_b64encode(key.seed).decode("ascii").rstrip("="),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, file)  # fails if the name is taken: no overwrite race
            except FileExistsError as e:
                raise IdentityError(f"a key named {name!r} already exists in {self.path}") from e
        finally:
            tmp.unlink(missing_ok=True)
        return key

    def get(self, name: str) -> SigningKey:
        file = self._file(name)
        try:
            record = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise IdentityError(
                f"no key named {name!r} in {self.path}; create it with 'liquidfab keys new {name}'"
            ) from e
        except (OSError, json.JSONDecodeError) as e:
            raise IdentityError(f"key file {file} is unreadable: {e}") from e
        try:
            seed = base64.urlsafe_b64decode(record["seed"] + "=" * (-len(record["seed"]) % 4))
            key = SigningKey(seed)
        except (KeyError, TypeError, ValueError) as e:
            raise IdentityError(f"key file {file} is malformed (no valid 'seed')") from e
        if record.get("did") != key.did:
            raise IdentityError(f"key file {file} is corrupt: its did does not match its seed")
        return key

    def get_or_create(self, name: str) -> SigningKey:
        return self.get(name) if self.exists(name) else self.new(name)

    def info(self, name: str) -> KeyInfo:
        file = self._file(name)
        try:
            record = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise IdentityError(f"no key named {name!r} in {self.path}") from e
        except (OSError, json.JSONDecodeError) as e:
            raise IdentityError(f"key file {file} is unreadable: {e}") from e
        return KeyInfo(
            name=name, did=record.get("did", "?"), created=record.get("created", "?"), path=file
        )

    def list(self) -> list[KeyInfo]:
        if not self.path.is_dir():
            return []
        names = sorted(p.name[: -len(_SUFFIX)] for p in self.path.glob(f"*{_SUFFIX}"))
        return [self.info(n) for n in names if _NAME.match(n)]
