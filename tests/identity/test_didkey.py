import json
from pathlib import Path

import base58
import pytest

from liquidfab.errors import IdentityError
from liquidfab.identity import SigningKey, VerifyKey, decode_did_key, encode_did_key

VECTORS = json.loads((Path(__file__).parent / "didkey_spec_vectors.json").read_text())["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["did"][-8:])
def test_spec_vector_seed_to_did(vector):
    key = SigningKey(bytes.fromhex(vector["seed"]))
    assert key.did == vector["did"]
    assert key.public.raw == base58.b58decode(vector["publicKeyBase58"])


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["did"][-8:])
def test_spec_vector_did_decodes_to_key(vector):
    assert decode_did_key(vector["did"]) == base58.b58decode(vector["publicKeyBase58"])
    assert encode_did_key(decode_did_key(vector["did"])) == vector["did"]


def test_sign_and_verify_round_trip():
    key = SigningKey.generate()
    sig = key.sign(b"hello")
    assert len(sig) == 64
    assert VerifyKey.from_did(key.did).verify(b"hello", sig)
    assert not key.public.verify(b"hellO", sig)
    assert not key.public.verify(b"hello", sig[:-1] + bytes([sig[-1] ^ 1]))
    assert not key.public.verify(b"hello", sig[:10])
    assert not SigningKey.generate().public.verify(b"hello", sig)


@pytest.mark.parametrize(
    ("did", "reason"),
    [
        ("did:web:example.org", "must start with 'did:key:'"),
        ("did:key:u6MkiTBz1ymuepAQ4HEHYSF1H8quG", "base58btc"),
        ("did:key:z0OIl", "not valid base58btc"),
        ("did:key:zTjsVPtY", "32 bytes"),  # the did:key test suite's short key
        # secp256k1 multicodec (0xe7 0x01) is not accepted
        ("did:key:" + "z" + base58.b58encode(b"\xe7\x01" + bytes(33)).decode(), "ed25519-pub"),
        ("did:key:" + "z" + base58.b58encode(b"\xed\x01" + bytes(31)).decode(), "32 bytes"),
        ("did:key:z" + "1" * 100, "too long"),
        (42, "not a did:key"),
    ],
)
def test_malformed_did_is_refused_with_reason(did, reason):
    with pytest.raises(IdentityError, match=reason):
        decode_did_key(did)


def test_secret_never_in_repr():
    key = SigningKey(bytes(range(32)))
    text = repr(key) + str(key)
    assert key.seed.hex() not in text
    assert "did:key:" in text
