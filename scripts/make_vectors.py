"""Write the protocol test vectors in docs/vectors/, deterministically.

Every key comes from a fixed seed, every id and time is fixed, so running this
again gives byte-identical files (tests/protocol/test_vectors.py checks that).
The seeds are test keys, published on purpose: never use them for anything real.

    python scripts/make_vectors.py              # rewrites docs/vectors/
    python scripts/make_vectors.py --out DIR    # writes somewhere else
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from liquidfab.identity import SigningKey
from liquidfab.protocol import Envelope, SettlementLeg, sign_message

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "vectors"

REGISTER = "org.liquidfab.identity.register"
UPDATE = "org.liquidfab.identity.update"


def fixed_key(name: str) -> SigningKey:
    """A fixed test key: its seed is SHA-256 of a public label."""
    return SigningKey(hashlib.sha256(f"liquidfab test vector key: {name}".encode()).digest())


ALICE = fixed_key("alice")  # a manufacturer
BOB = fixed_key("bob")  # a device owner
CAROL = fixed_key("carol")  # a creator


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _vector(
    description: str, key: SigningKey, message: dict[str, Any], expect: str
) -> dict[str, Any]:
    """One vector: the message and everything a verifier derives from it."""
    env = Envelope(message)  # no validation: negative vectors must be written as they are
    signed = env.signed_bytes
    vector: dict[str, Any] = {
        "description": description,
        "expect": expect,
        "seed_hex": key.seed.hex(),
        "public_key_hex": key.public.raw.hex(),
        "did": key.did,
        "message": message,
        "canonical_bytes_hex": signed.hex(),
        "canonical_text": signed.decode("utf-8"),
        "signature_b64url": message["signature"],
        "digest_sha256_hex": hashlib.sha256(signed).hexdigest(),
    }
    if expect == "valid":
        headers, body = Envelope.from_dict(message).to_binary()
        vector["binary_mode"] = {"headers": headers, "body": body.decode("utf-8")}
    return vector


def _positive(description: str, key: SigningKey, env: Envelope) -> dict[str, Any]:
    assert env.verify()
    return _vector(description, key, env.to_dict(), "valid")


def build_vectors() -> dict[str, dict[str, Any]]:
    """Every vector, by file name."""
    register = sign_message(
        ALICE,
        REGISTER,
        {
            "did": ALICE.did,
            "role": "manufacturer",
            "display_name": "Alice Bikes GmbH",
            "endpoints": ["https://alice.example/liquidfab", "mqtts://mqtt.alice.example:8883"],
        },
        subject=ALICE.did,
        id="0194a4c8-7a00-7c3e-8a1b-3d5e7f901201",
        time="2025-01-20T10:15:30.000Z",
    )
    update = sign_message(
        ALICE,
        UPDATE,
        {"did": ALICE.did, "display_name": "Alice Bikes AG", "endpoints": []},
        subject=ALICE.did,
        id="0194a4d7-bc40-7d21-9c40-5f6a7b8c9d02",
        time="2025-01-20T10:32:10.250Z",
    )
    extension = sign_message(
        BOB,
        REGISTER,
        {"did": BOB.did, "role": "owner", "display_name": "Bob"},
        id="0194a4e1-0f80-7a55-b3c2-0d1e2f3a4b03",
        time="2025-01-20T10:42:21.500+01:00",
        extensions={
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "zone": "eu-central/ä 50%",
        },
    )
    settlement = sign_message(
        BOB,
        "org.liquidfab.market.purchase",
        {"listing": "carol/route-planner", "price": {"amount": "1250000", "ledger": "LQD"}},
        subject="carol/route-planner",
        id="0194a4f0-5200-7b10-8e77-aa00bb11cc04",
        time="2025-01-20T10:59:00.000Z",
        settlement=[
            SettlementLeg(
                id="0194a4f0-5200-7b10-8e77-aa00bb11cc05",
                debit_account=f"{BOB.did}/wallet",
                credit_account=f"{CAROL.did}/wallet",
                ledger="LQD",
                amount="1000000",
                code="market.sale.creator",
                flags=["linked"],
            ),
            SettlementLeg(
                id="0194a4f0-5200-7b10-8e77-aa00bb11cc06",
                debit_account=f"{BOB.did}/wallet",
                credit_account=f"{ALICE.did}/wallet",
                ledger="LQD",
                amount="250000",
                code="market.sale.manufacturer",
            ),
        ],
    )
    jcs = sign_message(
        CAROL,
        "org.liquidfab.market.listing",
        {
            "a": "plain ASCII",
            "é": "Café crème, Straße, Ελληνικά, 日本語",
            "€": 0.1,
            "\ufb01": "U+FB01 sorts after U+1F600 in UTF-16 order, before it in code points",
            "\U0001f600": "astral key: UTF-16 surrogates D83D DE00",
            "numbers": [1.5, -0.0, 1e21, 1e-7, 3.0, 9007199254740991, -42, 100.25],
            "text": 'quote " backslash \\ tab \t newline \n bell \u0007 del \u007f ls \u2028 😀',
            "nested": {"z": True, "b": None, "B": False, "": "empty key"},
        },
        subject="carol/route-planner",
        id="0194a500-9480-7f00-8123-456789abcd07",
        time="2025-01-20T11:16:30.123456789Z",
    )

    tampered = register.to_dict()
    tampered["data"] = {**tampered["data"], "display_name": "Mallory Bikes GmbH"}
    ext_tampered = extension.to_dict()
    ext_tampered["zone"] = "us-east"
    wrong_key = {k: v for k, v in register.to_dict().items() if k != "signature"}
    wrong_key["signature"] = _b64url(BOB.sign(register.signed_bytes))

    return {
        "01-identity-register.json": _positive(
            "identity.register: a manufacturer registers its own did, with two endpoints "
            "and a subject.",
            ALICE,
            register,
        ),
        "02-identity-update.json": _positive(
            "identity.update: the same participant changes its display name and clears "
            "its endpoints.",
            ALICE,
            update,
        ),
        "03-unknown-extension.json": _positive(
            "identity.register carrying two extension attributes unknown to liquidfab "
            "(traceparent, zone; zone holds non-ASCII, a space and '%'): kept and signed. "
            "The time has a +01:00 offset and no subject.",
            BOB,
            extension,
        ),
        "04-settlement.json": _positive(
            "A message with a settlement attribute: two transfer legs as a JSON array in a "
            "string, signed like any attribute.",
            BOB,
            settlement,
        ),
        "05-jcs-ordering.json": _positive(
            "RFC 8785 corner cases in data: non-ASCII text, floats, escapes, and member "
            "names that sort differently by UTF-16 code units than by code points "
            "(U+1F600 before U+FB01). The time has nine fraction digits.",
            CAROL,
            jcs,
        ),
        "90-bad-tampered-data.json": _vector(
            "Negative: vector 01 with data.display_name changed after signing; the "
            "signature must not verify.",
            ALICE,
            tampered,
            "bad-signature",
        ),
        "91-bad-tampered-extension.json": _vector(
            "Negative: vector 03 with the unknown extension 'zone' changed after signing; "
            "extensions are covered by the signature, so it must not verify.",
            BOB,
            ext_tampered,
            "bad-signature",
        ),
        "92-bad-wrong-key.json": _vector(
            "Negative: vector 01's canonical bytes signed by another key (bob's) while "
            "source stays alice's did; the signature must not verify. seed_hex, "
            "public_key_hex and did are the source's.",
            ALICE,
            wrong_key,
            "bad-signature",
        ),
    }


def render(vector: dict[str, Any]) -> str:
    """The file text: ASCII only (\\u escapes), so no editor can change a byte that matters."""
    return json.dumps(vector, indent=2, ensure_ascii=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write into")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, vector in build_vectors().items():
        (args.out / name).write_text(render(vector), encoding="utf-8")
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
