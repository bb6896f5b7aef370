"""Fleet: devices as served nodes. This part holds the node's TUF repository of device
software (``repository``) and the adapter of our Ed25519 keys to TUF (``tuf_keys``)."""

from liquidfab.fleet.repository import (
    EXPIRY,
    KINDS,
    FleetRepository,
    RepositoryKeys,
    TargetInfo,
)
from liquidfab.fleet.tuf_keys import KeySigner, tuf_key

__all__ = [
    "EXPIRY",
    "KINDS",
    "FleetRepository",
    "KeySigner",
    "RepositoryKeys",
    "TargetInfo",
    "tuf_key",
]
