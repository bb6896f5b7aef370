"""The fleet's message types: register-device, twin-desired, twin-reported, assign and
entitlements (the rollout types are in ``rollout_messages``).

``org.liquidfab.fleet.register-device`` is signed by the manufacturer of a published
product version. Naming a ``serial`` registers a built unit (#6): the device did, the
product version and the owner must be the unit's. Without one, the manufacturer
registers a device directly and names its owner.

``org.liquidfab.fleet.twin-desired`` is signed by the device's owner, its manufacturer,
the node or an operator; ``org.liquidfab.fleet.twin-reported`` only by the device itself
(its did signs; a device is not a registered participant). Both name the twin version
they read and carry a partial document (see ``registry``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from liquidfab.db import participants as directory
from liquidfab.db.tables import entitlements as ent_table
from liquidfab.errors import IdentityError, Refused
from liquidfab.fleet import director, entitlements, registry, rollouts
from liquidfab.fleet.rollout_messages import (
    ROLLOUT,
    ROLLOUT_CONTROL,
    Rollout,
    RolloutControl,
    Window,
    add_rollout_types,
)
from liquidfab.identity import VerifyKey
from liquidfab.ledger.types import owner_of
from liquidfab.product import catalog
from liquidfab.product.resolved import coerce_choices, money_text, resolve
from liquidfab.production import units
from liquidfab.production.order_messages import price_units
from liquidfab.production.published import published_product
from liquidfab.protocol.registry import Context, MessageType, Registry

__all__ = [
    "ASSIGN",
    "ENTITLEMENT",
    "ENTITLEMENT_REVOKE",
    "REGISTER_DEVICE",
    "ROLLOUT",
    "ROLLOUT_CONTROL",
    "TWIN_DESIRED",
    "TWIN_REPORTED",
    "Assign",
    "BuyFeature",
    "RegisterDevice",
    "RevokeEntitlement",
    "Rollout",
    "RolloutControl",
    "TwinWrite",
    "add_fleet_types",
]

ASSIGN = "org.liquidfab.fleet.assign"
ENTITLEMENT = "org.liquidfab.fleet.entitlement"
ENTITLEMENT_REVOKE = "org.liquidfab.fleet.entitlement-revoke"
REGISTER_DEVICE = "org.liquidfab.fleet.register-device"
TWIN_DESIRED = "org.liquidfab.fleet.twin-desired"
TWIN_REPORTED = "org.liquidfab.fleet.twin-reported"

AttributeValue = str | int | float | bool


class RegisterDevice(BaseModel):
    """Payload of register-device."""

    model_config = ConfigDict(extra="forbid")

    did: str = Field(min_length=1, max_length=200, description="The device's did:key.")
    product: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=100)
    owner: str | None = Field(None, max_length=200, description="Without serial: who owns it.")
    serial: str | None = Field(None, max_length=64, description="The built unit it is.")
    attributes: dict[str, AttributeValue] = Field(default_factory=dict, max_length=50)


class TwinWrite(BaseModel):
    """Payload of twin-desired and twin-reported: a partial document on a version."""

    model_config = ConfigDict(extra="forbid")

    device: str = Field(min_length=1, max_length=200)
    version: int = Field(ge=0, description="The twin version the write is based on.")
    state: dict[str, Any] = Field(max_length=100, description="Merged in; null removes.")


class Assign(BaseModel):
    """Payload of assign: the target a device should run, as the TUF targets list it."""

    model_config = ConfigDict(extra="forbid")

    device: str = Field(min_length=1, max_length=200)
    target: str = Field(min_length=1, max_length=200)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    length: int = Field(gt=0, le=512 * 1024 * 1024)
    custom: dict[str, str] = Field(
        max_length=20, description="The target's custom fields: product, hardware, version, kind."
    )
    mode: Literal["forced", "soft", "download-only"] = "forced"
    window: Window | None = None


def _assign(ctx: Context) -> dict[str, Any]:
    p: Assign = ctx.payload
    device = registry.get_device(ctx.conn, p.device)
    if device is None:
        raise Refused("not-found", f"no device {p.device}.", 404)
    if ctx.signer != device["manufacturer"] and not directory.is_authority(ctx.conn, ctx.signer):
        raise Refused(
            "unauthorized", "the device's manufacturer or an operator assigns its software.", 403
        )
    missing = {"product", "hardware", "version", "kind"} - set(p.custom)
    if missing:
        raise Refused("malformed", f"custom lacks {', '.join(sorted(missing))}.", 400)
    if p.custom["product"] != device["product_id"]:
        raise Refused(
            "incompatible",
            f"the target is for {p.custom['product']}; the device is {device['product_id']}.",
            422,
        )
    hardware = device["attributes"].get("hardware")
    if hardware is not None and p.custom["hardware"] != str(hardware):
        raise Refused(
            "incompatible",
            f"the target runs on {p.custom['hardware']}; the device is {hardware}.",
            422,
        )
    counter = director.store_assignment(
        ctx.conn,
        {
            "device": p.device,
            "target": p.target,
            "sha256": p.sha256,
            "length": p.length,
            "custom": p.custom,
            "assigned_by": f"{ctx.envelope.source} {ctx.envelope.id}",
            "assigned_us": ctx.now_us,
            "mode": p.mode,
            "window": p.window.document() if p.window else None,
        },
    )
    ctx.notices.append(("device", p.device))
    return {"device": p.device, "target": p.target, "counter": counter}


class BuyFeature(BaseModel):
    """Payload of entitlement: a feature of the device's product bought for the device."""

    model_config = ConfigDict(extra="forbid")

    entitlement: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
    device: str = Field(min_length=1, max_length=200)
    feature: str = Field(min_length=1, max_length=100)
    periods: int = Field(1, ge=1, le=120, description="Subscription periods paid now.")


class RevokeEntitlement(BaseModel):
    """Payload of entitlement-revoke."""

    model_config = ConfigDict(extra="forbid")

    entitlement: str = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=500)


def _price_due(
    ctx: Context, device: dict[str, Any], feature: Any, periods: int
) -> tuple[Decimal, int | None, str]:
    """What buying ``feature`` costs now, when the license ends, and the model licensed."""
    price = feature.price
    model = price.model
    period = entitlements.PERIOD_SECONDS.get(price.period or "", 0) * 1_000_000
    if model == "one-time":
        return price.amount, None, model
    if model == "per-use":
        return Decimal(0), None, model
    if model == "trial-then-paid":
        tried = ctx.conn.execute(
            select(ent_table.c.id).where(
                ent_table.c.device == device["did"],
                ent_table.c.feature == feature.id,
                ent_table.c.model == "trial",
            )
        ).first()
        if tried is None:
            return Decimal(0), ctx.now_us + int(price.trial_days or 0) * 86_400_000_000, "trial"
    return price.amount * periods, ctx.now_us + period * periods, "subscription"


def _buy(ctx: Context) -> dict[str, Any]:
    p: BuyFeature = ctx.payload
    device = registry.get_device(ctx.conn, p.device)
    if device is None:
        raise Refused("not-found", f"no device {p.device}.", 404)
    if ctx.signer != device["owner"]:
        raise Refused("unauthorized", "only the device's owner buys features for it.", 403)
    if entitlements.get_entitlement(ctx.conn, p.entitlement) is not None:
        raise Refused("conflict", f"entitlement id {p.entitlement} is taken.", 409)
    version = catalog.get_version(ctx.conn, device["product_id"], device["version"])
    product, _ = published_product(version)
    feature = product.features.get(p.feature)
    if feature is None:
        raise Refused("not-found", f"{device['product_id']} has no feature {p.feature}.", 404)
    if feature.included:
        raise Refused("included", f"{p.feature} comes with every unit; nothing to buy.", 409)
    if device["serial"] is not None:
        unit = units.get_unit(ctx.conn, device["serial"])
        resolved = resolve(
            product, coerce_choices(product, unit["as_built"]["choices"], complete=True)
        )
        if p.feature not in {f.id for f in resolved.features}:
            raise Refused(
                "incompatible", f"{p.feature} is not available on this unit's configuration.", 422
            )
    if any(e["feature"] == p.feature for e in entitlements.active(ctx.conn, p.device, ctx.now_us)):
        raise Refused("conflict", f"the device holds {p.feature} already.", 409)
    amount, expires_us, model = _price_due(ctx, device, feature, p.periods)
    units_due = price_units(amount, 6)
    legs = ctx.settlement
    transfer = None
    if units_due:
        leg = legs[0] if len(legs) == 1 else None
        if (
            leg is None
            or leg.flags
            or owner_of(leg.debit_account) != ctx.signer
            or owner_of(leg.credit_account) != device["manufacturer"]
            or leg.ledger != product.currency
            or leg.amount is None
            or int(leg.amount) != units_due
        ):
            raise Refused(
                "price-mismatch",
                f"{p.feature} costs {money_text(amount)} {product.currency} now: send one "
                f"posted leg of {units_due} base units from your account to an account of "
                f"{device['manufacturer']}.",
                422,
                extra={"amount": str(units_due), "payee": device["manufacturer"]},
            )
        transfer = leg.id
    elif legs:
        raise Refused("settlement-unexpected", f"{p.feature} costs nothing now.", 422)
    entitlements.insert_entitlement(
        ctx.conn,
        {
            "id": p.entitlement,
            "device": p.device,
            "feature": p.feature,
            "owner": ctx.signer,
            "model": model,
            "transfer": transfer,
            "issued_us": ctx.now_us,
            "expires_us": expires_us,
            "revoked_us": None,
            "revoked_by": None,
        },
    )
    ctx.notices.append(("device", p.device))
    return {"entitlement": p.entitlement, "feature": p.feature, "model": model,
            "expires_us": expires_us, "paid": str(units_due or 0)}  # fmt: skip


def _revoke(ctx: Context) -> dict[str, Any]:
    p: RevokeEntitlement = ctx.payload
    row = entitlements.get_entitlement(ctx.conn, p.entitlement)
    if row is None:
        raise Refused("not-found", f"no entitlement {p.entitlement}.", 404)
    device = registry.get_device(ctx.conn, row["device"])
    authority = directory.is_authority(ctx.conn, ctx.signer)
    if device is None or (ctx.signer != device["manufacturer"] and not authority):
        raise Refused("unauthorized", "the manufacturer or an operator revokes.", 403)
    if row["revoked_us"] is not None:
        raise Refused("conflict", f"entitlement {p.entitlement} is revoked already.", 409)
    entitlements.revoke(ctx.conn, p.entitlement, f"{ctx.envelope.source} {ctx.envelope.id}",
                        ctx.now_us)  # fmt: skip
    ctx.notices.append(("device", row["device"]))
    return {"entitlement": p.entitlement, "revoked": True}


def _register(ctx: Context) -> dict[str, Any]:
    p: RegisterDevice = ctx.payload
    try:
        VerifyKey.from_did(p.did)
    except IdentityError as e:
        raise Refused("malformed", f"did is not an Ed25519 did:key: {e}", 400) from e
    for name in p.attributes:
        if not 0 < len(name) <= 64:
            raise Refused("malformed", "an attribute name has 1 to 64 characters", 400)
    product = catalog.get_product(ctx.conn, p.product)
    version = catalog.get_version(ctx.conn, p.product, p.version)
    if product is None or version is None:
        raise Refused("not-found", f"this node holds no product {p.product}@{p.version}.", 404)
    if ctx.signer != product["manufacturer"]:
        raise Refused(
            "unauthorized",
            f"only the manufacturer of {p.product} ({product['manufacturer']}) registers its "
            "devices.",
            403,
        )
    if registry.get_device(ctx.conn, p.did) is not None:
        raise Refused("conflict", f"device {p.did} is registered already.", 409)
    if p.serial is not None:
        unit = units.get_unit(ctx.conn, p.serial)
        if unit is None:
            raise Refused("not-found", f"no unit {p.serial}.", 404)
        if (unit["device_did"], unit["product_id"], unit["version"]) != (
            p.did,
            p.product,
            p.version,
        ):
            raise Refused(
                "unit-mismatch",
                f"unit {p.serial} is {unit['product_id']}@{unit['version']} with device "
                f"{unit['device_did']}.",
                422,
            )
        if p.owner is not None and p.owner != unit["customer"]:
            raise Refused("unit-mismatch", f"unit {p.serial} belongs to {unit['customer']}.", 422)
        owner = unit["customer"]
    else:
        if p.owner is None:
            raise Refused("malformed", "a device registered without a serial names its owner.", 400)
        if directory.get_participant(ctx.conn, p.owner) is None:
            raise Refused("not-found", f"owner {p.owner} is not registered here.", 404)
        owner = p.owner
    registry.insert_device(
        ctx.conn,
        {
            "did": p.did,
            "product_id": p.product,
            "version": p.version,
            "manufacturer": ctx.signer,
            "owner": owner,
            "serial": p.serial,
            "attributes": p.attributes,
            "desired": {},
            "reported": {},
            "twin_version": 0,
            "registered_by": f"{ctx.envelope.source} {ctx.envelope.id}",
            "registered_us": ctx.now_us,
            "updated_us": ctx.now_us,
        },
    )
    for rollout in rollouts.list_rollouts(ctx.conn, limit=1000):  # devices join late
        if rollout["state"] == "running" and rollout["filter"]["product"] == p.product:
            rollouts.advance(ctx, rollout["id"], reported=(), recount=True)
    return {"device": p.did, "owner": owner, "serial": p.serial, "twin_version": 0}


def _twin(ctx: Context, field: str) -> dict[str, Any]:
    p: TwinWrite = ctx.payload
    device = registry.get_device(ctx.conn, p.device)
    if device is None:
        raise Refused("not-found", f"no device {p.device}.", 404)
    if field == "reported":
        if ctx.signer != device["did"]:
            raise Refused("unauthorized", "only the device itself reports its state.", 403)
    else:
        allowed = ctx.signer in (device["owner"], device["manufacturer"]) or (
            directory.is_authority(ctx.conn, ctx.signer)
        )
        if not allowed:
            raise Refused(
                "unauthorized",
                "the device's owner, its manufacturer or an operator sets its desired state.",
                403,
            )
    if p.version != device["twin_version"]:
        raise Refused(
            "stale-version",
            f"the twin is at version {device['twin_version']}, not {p.version}: read it again, "
            "then write.",
            409,
            extra={"current": device["twin_version"]},
        )
    document = registry.merge(device[field], p.state)
    problem = registry.document_problem(document)
    if problem is not None:
        raise Refused("too-large", problem, 413)
    if not registry.write_twin(ctx.conn, p.device, field, document, p.version, ctx.now_us):
        raise Refused("stale-version", "the twin moved on meanwhile; read it again.", 409)
    if field == "reported":  # what the device says may finish a wave or pause a rollout
        for rollout_id in rollouts.rollouts_of(ctx.conn, p.device):
            rollouts.advance(ctx, rollout_id, reported=[p.device])
    desired = document if field == "desired" else device["desired"]
    reported = document if field == "reported" else device["reported"]
    return {
        "device": p.device,
        "twin_version": p.version + 1,
        field: document,
        "delta": registry.delta(desired, reported),
    }


def add_fleet_types(registry_: Registry) -> None:
    """Register the fleet message types in ``registry_``."""
    registry_.add(
        MessageType(
            type=REGISTER_DEVICE,
            payload=RegisterDevice,
            handler=_register,
            summary="Register a device: a built unit by its serial, or directly with its owner.",
            settlement="forbidden",
        )
    )
    registry_.add(
        MessageType(
            type=ASSIGN,
            payload=Assign,
            handler=_assign,
            summary="Assign a device the target it should run (Uptane's director); the node "
            "signs it with a counter that only grows.",
            settlement="forbidden",
        )
    )
    add_rollout_types(registry_)
    registry_.add(
        MessageType(
            type=ENTITLEMENT,
            payload=BuyFeature,
            handler=_buy,
            summary="Buy a product feature for a device, paying its price in the same "
            "message; the node then licenses it to the device's did.",
            settlement="allowed",
        )
    )
    registry_.add(
        MessageType(
            type=ENTITLEMENT_REVOKE,
            payload=RevokeEntitlement,
            handler=_revoke,
            summary="Revoke an entitlement (manufacturer or operator).",
            settlement="forbidden",
        )
    )
    registry_.add(
        MessageType(
            type=TWIN_DESIRED,
            payload=TwinWrite,
            handler=lambda ctx: _twin(ctx, "desired"),
            summary="Set part of a device's desired state, on the twin version read.",
            settlement="forbidden",
        )
    )
    registry_.add(
        MessageType(
            type=TWIN_REPORTED,
            payload=TwinWrite,
            handler=lambda ctx: _twin(ctx, "reported"),
            summary="A device reports part of its state, signed with its own key.",
            signer_must_be_registered=False,
            settlement="forbidden",
        )
    )
