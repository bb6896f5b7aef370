"""did:key identifiers for Ed25519 keys (W3C CCG did:key method).

A did:key is the public key itself: ``did:key:z`` + base58btc(multicodec
``ed25519-pub`` prefix 0xed 0x01 + 32 key bytes). Nothing needs to be looked up
to verify a signature from its source, which is why the envelope uses it.
"""

from __future__ import annotations

import base58

from liquidfab.errors import IdentityError

__all__ = ["DID_KEY_PREFIX", "decode_did_key", "encode_did_key"]

DID_KEY_PREFIX = "did:key:"
_MULTIBASE_BASE58BTC = "z"
_ED25519_PUB_MULTICODEC = b"\xed\x01"
_KEY_LENGTH = 32
# base58btc of 34 bytes is at most 47 characters; anything longer is not ours.
_MAX_DID_LENGTH = len(DID_KEY_PREFIX) + 1 + 48


def encode_did_key(public_key: bytes) -> str:
    """The did:key of a raw 32-byte Ed25519 public key."""
    if len(public_key) != _KEY_LENGTH:
        raise IdentityError(f"an Ed25519 public key is {_KEY_LENGTH} bytes, got {len(public_key)}")
    encoded = base58.b58encode(_ED25519_PUB_MULTICODEC + public_key).decode("ascii")
    return f"{DID_KEY_PREFIX}{_MULTIBASE_BASE58BTC}{encoded}"


def decode_did_key(did: str) -> bytes:
    """The raw Ed25519 public key inside a did:key; IdentityError says what is wrong."""
    if not isinstance(did, str) or not did.startswith(DID_KEY_PREFIX):
        raise IdentityError(f"{did!r} is not a did:key: it must start with 'did:key:'")
    if len(did) > _MAX_DID_LENGTH:
        raise IdentityError(f"{did[:60]!r}… is too long to be an Ed25519 did:key")
    multibase = did[len(DID_KEY_PREFIX) :]
    if not multibase.startswith(_MULTIBASE_BASE58BTC):
        raise IdentityError(
            f"{did!r}: only base58btc multibase ('z' prefix) is supported for did:key"
        )
    try:
        raw = base58.b58decode(multibase[1:])
    except ValueError as e:
        raise IdentityError(f"{did!r}: the key is not valid base58btc") from e
    if not raw.startswith(_ED25519_PUB_MULTICODEC):
        raise IdentityError(f"{did!r}: not an Ed25519 key (multicodec must be ed25519-pub, 0xed01)")
    key = raw[len(_ED25519_PUB_MULTICODEC) :]
    if len(key) != _KEY_LENGTH:
        raise IdentityError(
            f"{did!r}: an Ed25519 public key is {_KEY_LENGTH} bytes, got {len(key)}"
        )
    return key
