"""Built units: serial number, as-built record, device identity and passport.

When an order's unit comes off the line, ``record_unit`` (in the caller's write
transaction, after the order reached ``built``) gives it

- a **serial number** ``<CODE>-<yyyymmdd>-<sequence>``: ``CODE`` is the last segment of
  the product id in capitals (``org.example.lamp`` → ``LAMP``, at most 16 letters and
  digits), the date is the build date (UTC), and the sequence counts the units of that
  code from 1 (six digits, more when needed), so a serial is unique even when two
  products share a code;
- an **as-built record**: the program digest, the configuration and features, every
  part of the as-built BOM with its supplier and supplier lot, the station results, the
  station that flashed the device identity;
- a **device identity**: an Ed25519 key created at the flashing station, which sends
  only its did (the ``built`` message carries it). Without one, the key is generated
  here and its private half is in the provisioning bundle returned to the caller once,
  never written anywhere by the node;
- the **unit passport**: the AAS of ``product.aas.unit_shell`` with its AsBuilt filled,
  derived from the stored record when read (``unit_environment``).

Supplier lots: parts the manufacturer stocks (``stock``) are drawn from stock and carry
the lots delivered by supply contracts. Other parts get a lot synthesized
deterministically from their supplier (did, or id when the product gives no did), the
part and the build date: ``<yyyymmdd>-<8 hex>``. A caller that knows the real lots
passes ``lots``.

The passport is read in three tiers (``passport``): ``public`` (nameplate, product,
version, manufacturer, device did), ``owner`` (adds the configuration, features, the
as-built BOM and record, without supplier lots and station results) and ``authority``
(everything).
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Connection, func, insert, select

from liquidfab.db.database import store_errors
from liquidfab.db.tables import units
from liquidfab.errors import IdentityError, ProductError, Refused
from liquidfab.identity import SigningKey, VerifyKey
from liquidfab.product import catalog
from liquidfab.product.aas import AsBuilt, StationResult, unit_shell
from liquidfab.product.resolved import coerce_choices, resolve
from liquidfab.production import orders, stock
from liquidfab.production.executor import BuildRecord
from liquidfab.production.published import published_product

__all__ = [
    "TIERS",
    "RecordedUnit",
    "Tier",
    "get_unit",
    "passport",
    "product_code",
    "record_unit",
    "synthesized_lot",
    "unit_environment",
    "unit_for_order",
]

Tier = Literal["public", "owner", "authority"]
TIERS: tuple[str, ...] = ("public", "owner", "authority")

_PUBLIC_SUBMODELS = frozenset({"Nameplate"})
_AUTHORITY_ONLY_ELEMENTS = {"AsBuilt": frozenset({"StationResults"})}


@dataclass(frozen=True)
class RecordedUnit:
    """What ``record_unit`` made: the stored row and the one-time provisioning bundle.

    ``bundle`` holds the device's private key. Hand it to the flashing station and drop
    it: the node has no other copy.
    """

    unit: dict[str, Any]
    bundle: dict[str, Any]

    def __repr__(self) -> str:  # never print the private key
        return f"RecordedUnit(serial={self.unit['serial']!r}, device={self.unit['device_did']!r})"


def product_code(product_id: str) -> str:
    """The serial prefix of a product: its id's last segment, capitals, letters and digits."""
    last = product_id.rsplit(".", 1)[-1].rsplit(":", 1)[-1]
    code = re.sub(r"[^A-Za-z0-9]", "", last).upper()[:16]
    return code or "UNIT"


def synthesized_lot(supplier: str, part: str, day: str) -> str:
    """A deterministic lot for ``part`` from ``supplier`` on ``day`` (yyyymmdd)."""
    digest = hashlib.sha256(f"{supplier}\n{part}\n{day}".encode()).hexdigest()[:8]
    return f"{day}-{digest.upper()}"


def get_unit(conn: Connection, serial: str) -> dict[str, Any] | None:
    row = conn.execute(select(units).where(units.c.serial == serial)).first()
    return dict(row._mapping) if row else None


def unit_for_order(conn: Connection, order_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(units).where(units.c.order_id == order_id)).first()
    return dict(row._mapping) if row else None


def _next_sequence(conn: Connection, code: str) -> int:
    last = conn.execute(select(func.max(units.c.sequence)).where(units.c.code == code)).scalar()
    return 1 if last is None else int(last) + 1


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def _flashing_station(program: Mapping[str, Any]) -> str | None:
    """The station that flashes the firmware: the first step that names firmware or
    features in its station, operation or parameters; else the last station."""
    steps = program.get("steps") or []
    for step in steps:
        text = " ".join([step["station"], step["operation"], *step.get("parameters", {})]).lower()
        if "flash" in text or "firmware" in text:
            return step["station"]
    return steps[-1]["station"] if steps else None


def record_unit(
    conn: Connection,
    order: str | Mapping[str, Any],
    build_record: BuildRecord,
    *,
    lots: Mapping[str, str] | None = None,
    now_us: int | None = None,
    device_did: str | None = None,
    from_stock: bool = False,
    scrapped: int = 0,
) -> RecordedUnit:
    """Record the unit built for ``order`` (an id or its row) from ``build_record``.

    The order must be ``built``, have no unit yet, and the record must be a successful
    run of the order's program. ``lots`` maps part ids to supplier lots; parts without
    one get a synthesized lot (see the module). ``device_did`` is the identity the
    flashing station created (the bundle then holds no key: the station has it);
    without one the node makes the key and returns it in the bundle. ``from_stock``
    draws the unit's kit of every stocked part from the manufacturer's stock (``stock``),
    one kit more for each of ``scrapped`` units thrown away on the way, and records the
    lots drawn. Raises ``Refused`` otherwise.
    """
    row = orders.get_order(conn, order) if isinstance(order, str) else dict(order)
    if row is None:
        raise Refused("not-found", f"no order {order}.", 404)
    order_id = row["id"]
    if row["state"] != "built":
        raise Refused(
            "transition-invalid",
            f"order {order_id} is {row['state']}; a unit is recorded once it is built.",
            409,
            extra={"state": row["state"]},
        )
    if not build_record.ok:
        raise Refused(
            "build-failed",
            f"the build of order {order_id} stopped at step {build_record.failed_step}: "
            f"{build_record.reason}; a failed unit goes to rework or scrap, not to a passport.",
            409,
        )
    if build_record.program_digest != row["program_digest"]:
        raise Refused(
            "as-built-mismatch",
            f"the build ran program {build_record.program_digest}, order {order_id} compiled "
            f"{row['program_digest']}.",
            409,
        )
    steps = len(row["program"].get("steps", []))
    if len(build_record.results) != steps:
        raise Refused(
            "as-built-mismatch",
            f"the program has {steps} steps; the build record has {len(build_record.results)} "
            "results.",
            409,
        )
    if unit_for_order(conn, order_id) is not None:
        raise Refused("conflict", f"order {order_id} already has its unit.", 409)
    if device_did is not None:
        try:
            VerifyKey.from_did(device_did)
        except IdentityError as e:
            raise Refused("malformed", f"device_did is not an Ed25519 did:key: {e}", 400) from e
        taken = conn.execute(select(units.c.serial).where(units.c.device_did == device_did))
        if taken.first() is not None:
            raise Refused("conflict", f"device {device_did} is already another unit's.", 409)
    if scrapped < 0:
        raise ValueError("scrapped counts units, it is not negative")
    version = catalog.get_version(conn, row["product_id"], row["version"])
    if version is None:  # pragma: no cover - an order names a published version
        raise Refused("not-found", f"no product {row['product_id']}@{row['version']}.", 404)

    now_us = now_us if now_us is not None else int(datetime.now(UTC).timestamp() * 1_000_000)
    built_at = datetime.fromtimestamp(now_us / 1_000_000, UTC).replace(microsecond=0)
    day = built_at.strftime("%Y%m%d")
    code = product_code(row["product_id"])
    sequence = _next_sequence(conn, code)
    serial = f"{code}-{day}-{sequence:06d}"

    product, _ = published_product(version)
    try:
        resolved = resolve(product, coerce_choices(product, row["choices"], complete=True))
    except ProductError as e:  # pragma: no cover - checked when the order was placed
        raise Refused("configuration-invalid", str(e), 422) from e

    lots = dict(lots or {})
    if from_stock:
        kit = stock.kit_of(resolved.bom)
        stocked = stock.stocked_parts(conn, row["manufacturer"])
        needs = {p: k.milli * (1 + scrapped) for p, k in kit.items() if p in stocked}
        lots.update(stock.consume(conn, row["manufacturer"], needs))
    parts = []
    for item in resolved.bom:
        line: dict[str, Any] = {
            "part": item.part,
            "name": item.name,
            "quantity": item.to_dict()["quantity"],
            "unit": item.unit,
        }
        if item.purchased:
            supplier = item.supplier_did or item.supplier or ""
            line["supplier"] = item.supplier
            line["supplier_did"] = item.supplier_did
            line["lot"] = lots.get(item.part) or synthesized_lot(supplier, item.part, day)
            line["lot_source"] = "stock" if item.part in lots else "synthesized"
        parts.append(line)

    device = SigningKey.generate() if device_did is None else None
    did = device.did if device is not None else device_did
    station = _flashing_station(row["program"])
    results = [r.model_dump(mode="json") for r in build_record.results]
    record = {
        "serial": serial,
        "order": order_id,
        "status": "built",
        "product": row["product_id"],
        "version": row["version"],
        "program_digest": build_record.program_digest,
        "choices": row["choices"],
        "features": row["features"],
        "parts": parts,
        "station_results": results,
        "flashing_station": station,
        "device_did": did,
        "built_at": built_at.isoformat().replace("+00:00", "Z"),
    }
    unit = {
        "serial": serial,
        "order_id": order_id,
        "code": code,
        "sequence": sequence,
        "product_id": row["product_id"],
        "version": row["version"],
        "manufacturer": row["manufacturer"],
        "customer": row["customer"],
        "device_did": did,
        "program_digest": build_record.program_digest,
        "as_built": record,
        "built_us": now_us,
    }
    with store_errors():
        conn.execute(insert(units), unit)
    bundle = {
        "serial": serial,
        "device_did": did,
        "key_type": "Ed25519",
        "product": row["product_id"],
        "version": row["version"],
        "features": row["features"],
        "flashing_station": station,
        "manufacturer": row["manufacturer"],
    }
    if device is not None:
        seed = base64.urlsafe_b64encode(device.seed).rstrip(b"=").decode("ascii")
        bundle["private_key_seed"] = seed
    return RecordedUnit(unit=unit, bundle=bundle)


# --- the passport, by tier ----------------------------------------------------------------


def _environment(env: Mapping[str, Any], tier: str) -> dict[str, Any]:
    """The AAS environment a tier sees: public only the nameplate; owner all but the
    station results; authority all."""
    if tier == "authority":
        return dict(env)
    submodels = []
    for submodel in env.get("submodels", []):
        short = submodel.get("idShort")
        if tier == "public" and short not in _PUBLIC_SUBMODELS:
            continue
        hidden = _AUTHORITY_ONLY_ELEMENTS.get(short, frozenset())
        if hidden:
            elements = [
                e for e in submodel.get("submodelElements", []) if e["idShort"] not in hidden
            ]
            submodel = {**submodel, "submodelElements": elements}
        submodels.append(submodel)
    kept = {s["id"] for s in submodels}
    shells = []
    for shell in env.get("assetAdministrationShells", []):
        refs = [r for r in shell.get("submodels", []) if r["keys"][-1]["value"] in kept]
        shells.append({**shell, "submodels": refs})
    out = {**env, "assetAdministrationShells": shells, "submodels": submodels}
    return out


_ENVIRONMENTS: OrderedDict[str, dict[str, Any]] = OrderedDict()
_ENVIRONMENTS_KEPT = 256
_environments_lock = threading.Lock()


def unit_environment(conn: Connection, unit: Mapping[str, Any]) -> dict[str, Any]:
    """The unit's AAS environment (``product.aas.unit_shell`` with the AsBuilt filled).

    It is derived from what is stored (the product version, the configuration and the
    as-built record), so it is made when first read rather than at build time, where it
    would cost a fifth of a second and some 200 KB per unit; the last few are kept.
    """
    serial = unit["serial"]
    with _environments_lock:
        found = _ENVIRONMENTS.get(serial)
        if found is not None:
            _ENVIRONMENTS.move_to_end(serial)
            return found
    version = catalog.get_version(conn, unit["product_id"], unit["version"])
    if version is None:  # pragma: no cover - a unit names a published version
        raise Refused("not-found", f"no product {unit['product_id']}@{unit['version']}.", 404)
    product, _ = published_product(version)
    record = unit["as_built"]
    resolved = resolve(product, coerce_choices(product, record["choices"], complete=True))
    built_at = datetime.fromisoformat(record["built_at"].replace("Z", "+00:00"))
    as_built = AsBuilt(
        status=record["status"],
        program=f"urn:liquidfab:program:{unit['order_id']}",
        program_digest=record["program_digest"],
        device_did=record["device_did"],
        built_at=built_at,
        station_results=[
            StationResult(
                station=r["station"],
                operation=r["operation"],
                passed=r["ok"],
                seconds=_decimal(max(r["finished"] - r["started"], 0.0)),
                measurements={k: _decimal(v) for k, v in r["measurements"].items()},
                note=r["message"] or None,
            )
            for r in record["station_results"]
        ],
    )
    environment = unit_shell(product, resolved, serial, as_built=as_built).to_jsonable()
    with _environments_lock:
        _ENVIRONMENTS[serial] = environment
        while len(_ENVIRONMENTS) > _ENVIRONMENTS_KEPT:
            _ENVIRONMENTS.popitem(last=False)
    return environment


def passport(conn: Connection, unit: Mapping[str, Any], tier: str) -> dict[str, Any]:
    """A unit's passport as ``tier`` sees it (``public``, ``owner`` or ``authority``)."""
    if tier not in TIERS:
        raise ValueError(f"no tier {tier!r}; tiers are {', '.join(TIERS)}")
    record = unit["as_built"]
    out: dict[str, Any] = {
        "serial": unit["serial"],
        "tier": tier,
        "product": unit["product_id"],
        "version": unit["version"],
        "manufacturer": unit["manufacturer"],
        "device_did": unit["device_did"],
        "built_at": record["built_at"],
    }
    if tier in ("owner", "authority"):
        parts = record["parts"]
        if tier == "owner":
            keep = ("part", "name", "quantity", "unit")
            parts = [{k: p[k] for k in keep} for p in parts]
        as_built = {
            "status": record["status"],
            "program_digest": record["program_digest"],
            "parts": parts,
        }
        if tier == "authority":
            as_built["station_results"] = record["station_results"]
            as_built["flashing_station"] = record["flashing_station"]
        out.update(
            {
                "order": unit["order_id"],
                "customer": unit["customer"],
                "choices": record["choices"],
                "features": record["features"],
                "as_built": as_built,
            }
        )
    out["aas"] = _environment(unit_environment(conn, unit), tier)
    return out
