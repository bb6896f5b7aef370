"""A publisher's side of a release: the territory's next role metadata, signed with the
publisher's own key, and the messages that list and publish an app.

The node never holds a creator's key: the creator builds the next version of their
territory's TUF role (the one the node serves, plus the new target) and signs it here,
on their machine (``liquidfab market publish``).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from tuf.api.metadata import Metadata, TargetFile, Targets

from liquidfab.fleet.tuf_keys import KeySigner
from liquidfab.identity import SigningKey
from liquidfab.market.delegation import target_name
from liquidfab.market.listing_messages import release_custom
from liquidfab.market.messages import PUBLISH
from liquidfab.protocol import Envelope, sign_message

__all__ = ["ROLE_LIFETIME", "next_role", "publish_message"]

ROLE_LIFETIME = timedelta(days=365)


def next_role(
    current: Mapping[str, Any] | None,
    target: str,
    data: bytes,
    custom: Mapping[str, Any],
    key: SigningKey,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The territory role's next version with ``target`` added, signed by ``key``."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    if current is None:
        md: Metadata[Targets] = Metadata(Targets(version=1, expires=now + ROLE_LIFETIME))
    else:
        md = Metadata.from_dict(copy.deepcopy(dict(current)))
        md.signed.version += 1
        md.signed.expires = now + ROLE_LIFETIME
    md.signed.targets[target] = TargetFile(
        length=len(data),
        hashes={"sha256": hashlib.sha256(data).hexdigest()},
        path=target,
        unrecognized_fields={"custom": dict(custom)},
    )
    md.signatures.clear()
    md.sign(KeySigner(key))
    return md.to_dict()


def publish_message(
    key: SigningKey,
    listing: Mapping[str, Any],
    version: str,
    data: bytes,
    current_role: Mapping[str, Any] | None,
) -> Envelope:
    """The signed ``market.publish`` of ``data`` as ``version`` of ``listing``'s app
    (upload the bytes first)."""
    target = target_name(listing["app"], version)
    role = next_role(current_role, target, data, release_custom(dict(listing), version), key)
    payload = {"app": listing["app"], "version": version, "length": len(data),
               "sha256": hashlib.sha256(data).hexdigest(), "role": role}  # fmt: skip
    return sign_message(key, PUBLISH, payload)
