"""Ed25519 signing and verification.

libsodium (through PyNaCl) verifies about twice as fast as ``cryptography`` on
our machines, and verification is the ceiling of message ingest, so it is the
backend. Keys never print their secret half.
"""

from __future__ import annotations

from functools import cached_property

import nacl.exceptions
import nacl.signing

from liquidfab.errors import IdentityError
from liquidfab.identity.didkey import decode_did_key, encode_did_key

__all__ = ["SIGNATURE_LENGTH", "SigningKey", "VerifyKey"]

SIGNATURE_LENGTH = 64
_SEED_LENGTH = 32


class VerifyKey:
    """A public Ed25519 key, known by its did:key."""

    __slots__ = ("__dict__", "_key")

    def __init__(self, raw: bytes) -> None:
        try:
            self._key = nacl.signing.VerifyKey(bytes(raw))
        except (nacl.exceptions.CryptoError, TypeError, ValueError) as e:
            raise IdentityError(f"not an Ed25519 public key: {e}") from e

    @classmethod
    def from_did(cls, did: str) -> VerifyKey:
        return cls(decode_did_key(did))

    @property
    def raw(self) -> bytes:
        return bytes(self._key)

    @cached_property
    def did(self) -> str:
        return encode_did_key(self.raw)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's signature of ``message``; never raises."""
        if len(signature) != SIGNATURE_LENGTH:
            return False
        try:
            self._key.verify(message, signature)
        except nacl.exceptions.BadSignatureError:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VerifyKey) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"VerifyKey({self.did})"


class SigningKey:
    """A private Ed25519 key; ``repr`` and ``str`` show only its public did."""

    __slots__ = ("_key", "public")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != _SEED_LENGTH:
            raise IdentityError(f"an Ed25519 seed is {_SEED_LENGTH} bytes, got {len(seed)}")
        self._key = nacl.signing.SigningKey(bytes(seed))
        self.public = VerifyKey(bytes(self._key.verify_key))

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @property
    def seed(self) -> bytes:
        """The 32-byte secret; handle with care (the keystore writes it 0600)."""
        return bytes(self._key)

    @property
    def did(self) -> str:
        return self.public.did

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached Ed25519 signature of ``message``."""
        return self._key.sign(message).signature

    def __repr__(self) -> str:
        return f"SigningKey({self.did})"

    __str__ = __repr__
