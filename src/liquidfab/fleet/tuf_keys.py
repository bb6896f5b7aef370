"""Our Ed25519 keys as TUF keys and signers, so python-tuf signs and verifies with them.

A participant's did:key and a TUF key are the same Ed25519 public key; the TUF key id is
python-tuf's (SHA-256 of the canonical key), so any TUF client recognises it.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from securesystemslib.signer import Key, Signature, Signer, SSlibKey

from liquidfab.identity import SigningKey, VerifyKey

__all__ = ["KeySigner", "tuf_key"]


def tuf_key(key: VerifyKey | SigningKey) -> SSlibKey:
    """The TUF public key of an Ed25519 key (scheme ``ed25519``)."""
    public = key.public if isinstance(key, SigningKey) else key
    return SSlibKey.from_crypto(Ed25519PublicKey.from_public_bytes(public.raw))


class KeySigner(Signer):
    """Signs TUF metadata with a liquidfab ``SigningKey``."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key
        self._public = tuf_key(key)

    @property
    def public_key(self) -> Key:
        return self._public

    def sign(self, payload: bytes) -> Signature:
        return Signature(self._public.keyid, self._key.sign(payload).hex())

    @classmethod
    def from_priv_key_uri(
        cls, priv_key_uri: str, public_key: Key, secrets_handler: Any = None
    ) -> Signer:
        raise NotImplementedError("liquidfab keys come from a Keystore, not a URI")
