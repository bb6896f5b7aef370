"""Who is speaking: Ed25519 keys, did:key identifiers and the keystore."""

from liquidfab.identity.didkey import decode_did_key, encode_did_key
from liquidfab.identity.keys import SIGNATURE_LENGTH, SigningKey, VerifyKey
from liquidfab.identity.keystore import KeyInfo, Keystore

__all__ = [
    "SIGNATURE_LENGTH",
    "KeyInfo",
    "Keystore",
    "SigningKey",
    "VerifyKey",
    "decode_did_key",
    "encode_did_key",
]
