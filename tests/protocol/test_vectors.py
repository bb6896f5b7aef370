"""The published test vectors (docs/vectors) hold, checked without trusting our own code.

Each vector is recomputed with the reference libraries a peer would use (rfc8785,
PyNaCl, base58) and with liquidfab's own functions; both must agree with the file.
"""

import base64
import hashlib
import importlib.util
import json
import re
from pathlib import Path

import base58
import nacl.exceptions
import nacl.signing
import pytest
import rfc8785

from liquidfab.identity import SigningKey
from liquidfab.protocol import Envelope, canonical_bytes, parse_json

ROOT = Path(__file__).resolve().parents[2]
VECTORS_DIR = ROOT / "docs" / "vectors"
SCRIPT = ROOT / "scripts" / "make_vectors.py"

FILES = sorted(VECTORS_DIR.glob("*.json"))
VECTORS = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in FILES}
POSITIVE = [name for name, v in VECTORS.items() if v["expect"] == "valid"]
NEGATIVE = [name for name, v in VECTORS.items() if v["expect"] != "valid"]


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _unsigned(message: dict) -> dict:
    return {k: v for k, v in message.items() if k != "signature"}


def _load_script():
    spec = importlib.util.spec_from_file_location("make_vectors", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vectors_cover_what_the_spec_promises():
    types = {VECTORS[n]["message"]["type"] for n in POSITIVE}
    assert {"org.liquidfab.identity.register", "org.liquidfab.identity.update"} <= types
    assert any("settlement" in VECTORS[n]["message"] for n in POSITIVE)
    assert any(Envelope.from_dict(VECTORS[n]["message"]).extensions for n in POSITIVE)
    assert len(POSITIVE) >= 5
    assert len(NEGATIVE) >= 3
    assert {VECTORS[n]["expect"] for n in NEGATIVE} == {"bad-signature"}


@pytest.mark.parametrize("name", VECTORS)
def test_did_is_the_seeds_public_key(name):
    v = VECTORS[name]
    key = SigningKey(bytes.fromhex(v["seed_hex"]))
    public = bytes.fromhex(v["public_key_hex"])
    assert key.public.raw == public
    assert bytes(nacl.signing.SigningKey(bytes.fromhex(v["seed_hex"])).verify_key) == public
    assert v["did"] == "did:key:z" + base58.b58encode(b"\xed\x01" + public).decode()
    assert key.did == v["did"]
    assert v["message"]["source"] == v["did"]


@pytest.mark.parametrize("name", VECTORS)
def test_canonical_bytes_recomputed(name):
    v = VECTORS[name]
    expected = bytes.fromhex(v["canonical_bytes_hex"])
    assert expected.decode("utf-8") == v["canonical_text"]
    assert rfc8785.dumps(_unsigned(v["message"])) == expected
    assert canonical_bytes(_unsigned(v["message"])) == expected
    assert Envelope(v["message"]).signed_bytes == expected


@pytest.mark.parametrize("name", VECTORS)
def test_digest_is_sha256_of_the_signed_bytes(name):
    v = VECTORS[name]
    expected = hashlib.sha256(bytes.fromhex(v["canonical_bytes_hex"])).hexdigest()
    assert v["digest_sha256_hex"] == expected
    assert Envelope(v["message"]).digest == expected


@pytest.mark.parametrize("name", POSITIVE)
def test_positive_vector_verifies(name):
    v = VECTORS[name]
    assert v["signature_b64url"] == v["message"]["signature"]
    signature = _unb64url(v["signature_b64url"])
    assert len(signature) == 64
    verify_key = nacl.signing.VerifyKey(bytes.fromhex(v["public_key_hex"]))
    verify_key.verify(bytes.fromhex(v["canonical_bytes_hex"]), signature)  # raises if bad
    env = Envelope.from_dict(v["message"])
    assert env.verify()
    assert env.digest == v["digest_sha256_hex"]
    assert env.to_dict() == v["message"]


@pytest.mark.parametrize("name", POSITIVE)
def test_positive_vector_structured_bytes_parse_back(name):
    v = VECTORS[name]
    env = Envelope.from_dict(parse_json(Envelope.from_dict(v["message"]).to_json()))
    assert env.verify()
    assert env.digest == v["digest_sha256_hex"]


@pytest.mark.parametrize("name", POSITIVE)
def test_positive_vector_binary_mode(name):
    v = VECTORS[name]
    binary = v["binary_mode"]
    assert all(h.isascii() for h in binary["headers"].values())
    data = parse_json(binary["body"]) if binary["body"] else None
    env = Envelope.from_binary(binary["headers"], data)
    assert env.to_dict() == v["message"]
    assert env.digest == v["digest_sha256_hex"]
    assert env.verify()


@pytest.mark.parametrize("name", NEGATIVE)
def test_negative_vector_fails(name):
    v = VECTORS[name]
    assert v["expect"] == "bad-signature"
    verify_key = nacl.signing.VerifyKey(bytes.fromhex(v["public_key_hex"]))
    with pytest.raises(nacl.exceptions.BadSignatureError):
        verify_key.verify(bytes.fromhex(v["canonical_bytes_hex"]), _unb64url(v["signature_b64url"]))
    env = Envelope.from_dict(v["message"])  # well-formed: only the signature is wrong
    assert not env.verify()


def test_jcs_vector_orders_members_by_utf16_code_units():
    text = VECTORS["05-jcs-ordering.json"]["canonical_text"]
    # U+1F600 is D83D DE00 in UTF-16, below U+FB01; by code point it would come after.
    assert text.index('"\U0001f600"') < text.index('"\ufb01"')
    assert text.index('"\u00e9"') < text.index('"\u20ac"') < text.index('"\U0001f600"')
    assert '"numbers":[1.5,0,1e+21,1e-7,3,' in text


def test_script_is_deterministic(tmp_path):
    module = _load_script()
    assert module.main(["--out", str(tmp_path)]) == 0
    generated = sorted(p.name for p in tmp_path.glob("*.json"))
    assert generated == [p.name for p in FILES], "docs/vectors is stale: run make_vectors.py"
    for name in generated:
        assert (tmp_path / name).read_bytes() == (VECTORS_DIR / name).read_bytes(), name


@pytest.mark.parametrize("name", POSITIVE)
def test_signing_again_gives_the_same_signature(name):
    """Ed25519 is deterministic: a peer signing the canonical bytes gets the vector's value."""
    v = VECTORS[name]
    signed = nacl.signing.SigningKey(bytes.fromhex(v["seed_hex"])).sign(
        bytes.fromhex(v["canonical_bytes_hex"])
    )
    assert base64.urlsafe_b64encode(signed.signature).rstrip(b"=").decode() == v["signature_b64url"]


# the specification quotes the vectors and lists every refusal code --------------

SPEC = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = SPEC.index(title)
    end = SPEC.find("\n## ", start + 1)
    return SPEC[start:] if end < 0 else SPEC[start:end]


def _fenced(text: str) -> str:
    start = text.index("```")
    start = text.index("\n", start) + 1
    return text[start : text.index("```", start)]


def test_spec_example_is_vector_01():
    vector = VECTORS["01-identity-register.json"]
    example = _fenced(SPEC[SPEC.index("### 2.4 Example") :])
    assert json.loads(example) == vector["message"]
    worked = SPEC[SPEC.index("### 4.4 Worked example") :]
    assert _fenced(worked).replace("\n", "") == vector["canonical_text"]
    assert vector["digest_sha256_hex"] in worked


def test_spec_lists_every_vector_file():
    table = _section("## 14. Checking")
    for name in VECTORS:
        assert f"`{name}`" in table


def test_spec_documents_every_refusal_code_of_the_protocol_package():
    source = "\n".join(
        p.read_text(encoding="utf-8")
        for folder in ("protocol", "ledger")
        for p in (ROOT / "src/liquidfab" / folder).glob("*.py")
    )
    codes = set(re.findall(r'(?:ProtocolError|Refused)\(\s*"([a-z-]+)"', source))
    assert {"bad-signature", "stale-time", "malformed", "schema-invalid"} <= codes
    errors = _section("## 11. Errors")
    for code in sorted(codes):
        assert f"| `{code}` |" in errors, f"{code} is missing from the table in §11"
