"""Asset Administration Shells for a product type and for each unit built from it.

Industry 4.0 tools read products through the AAS, so a product's definition is exported
as a type shell (``AssetKind.TYPE``) and every unit gets an instance shell derived from
it, which production fills in. The objects are built with basyx-python-sdk and the
output is checked with the aas-core3.0 verifier: ``verify_environment`` turns its
findings into readable ``"path: message"`` lines.

Identifiers are URNs derived from the product id and version (type) or serial (unit);
``aas_id_b64`` gives the base64url form AAS Part 2 HTTP paths use.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pyecma376_2
from aas_core3 import jsonization as aas_jsonization
from aas_core3 import verification as aas_verification
from basyx.aas import model
from basyx.aas.adapter import aasx
from basyx.aas.adapter.json import AASToJsonEncoder, object_store_to_json
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from liquidfab.errors import ProductError
from liquidfab.product import aas_submodels as sm
from liquidfab.product.definition import Product
from liquidfab.product.format import Did
from liquidfab.product.resolved import Resolved

__all__ = [
    "AasExport",
    "AasJsonEncoder",
    "AsBuilt",
    "StationResult",
    "aas_id_b64",
    "type_shell",
    "type_shell_id",
    "unit_shell",
    "unit_shell_id",
    "verify_environment",
]

_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def aas_id_b64(identifier: str) -> str:
    """An identifier as AAS Part 2 puts it in a path: base64url, without padding."""
    return base64.urlsafe_b64encode(identifier.encode("utf-8")).rstrip(b"=").decode("ascii")


def type_shell_id(product: Product) -> str:
    """The id of the product type's shell: one per product id and version."""
    return f"urn:liquidfab:aas:type:{product.id}:{product.version}"


def unit_shell_id(product: Product, serial: str) -> str:
    """The id of one unit's shell: one per product id and serial number."""
    return f"urn:liquidfab:aas:unit:{product.id}:{serial}"


class StationResult(BaseModel):
    """One station's outcome for a unit, as production reports it."""

    model_config = ConfigDict(extra="forbid")

    station: str = Field(min_length=1, max_length=200)
    operation: str | None = None
    passed: bool
    seconds: Decimal | None = Field(None, ge=0)
    finished_at: AwareDatetime | None = None
    measurements: dict[str, bool | int | Decimal | str] = Field(default_factory=dict)
    note: str | None = None


class AsBuilt(BaseModel):
    """What production records about a unit; ``unit_shell(as_built=...)`` validates with it."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["in-production", "built", "failed", "scrapped"] = "built"
    program: str | None = Field(None, min_length=1, description="The build program's id.")
    program_digest: str | None = None
    device_did: Did | None = None
    built_at: AwareDatetime | None = None
    station_results: list[StationResult] = Field(default_factory=list)


class AasJsonEncoder(AASToJsonEncoder):
    """basyx's JSON encoder with two fixes; use it to serialize any basyx object we send.

    basyx 2.2 writes ``"specificAssetIds": []`` on every Entity, which the AAS schema
    forbids (an empty list; AASd-014 on co-managed entities): leave it out when empty.
    See eclipse-basyx/basyx-python-sdk#636.

    Also sorts a shell's submodel references, which basyx keeps in a set.
    """

    @classmethod
    def _entity_to_json(cls, obj: model.Entity) -> dict[str, object]:
        data = super()._entity_to_json(obj)
        if not data.get("specificAssetIds"):
            data.pop("specificAssetIds", None)
        return data

    @classmethod
    def _asset_administration_shell_to_json(
        cls, obj: model.AssetAdministrationShell
    ) -> dict[str, object]:
        data = super()._asset_administration_shell_to_json(obj)
        if "submodels" in data:
            data["submodels"] = sorted(data["submodels"], key=lambda r: [k.value for k in r.key])
        return data


def _jsonable(obj: object) -> dict[str, Any]:
    return json.loads(json.dumps(obj, cls=AasJsonEncoder))


class AasExport:
    """A shell with its submodels, held in a basyx object store, and their serializations."""

    def __init__(
        self,
        shell: model.AssetAdministrationShell,
        submodels: Sequence[model.Submodel],
        *,
        title: str,
        creator: str,
        version: str,
    ) -> None:
        self.shell = shell
        self.submodels = {s.id: s for s in submodels}
        self.store: model.DictIdentifiableStore[model.Identifiable] = model.DictIdentifiableStore(
            [shell, *submodels]
        )
        self.shell_id: str = shell.id
        self.submodel_ids: list[str] = [s.id for s in submodels]
        self._title, self._creator, self._version = title, creator, version

    def submodel_id(self, id_short: str) -> str:
        """The id of the submodel with this idShort (``Nameplate``, ``Configuration``…)."""
        for submodel in self.submodels.values():
            if submodel.id_short == id_short:
                return submodel.id
        shorts = ", ".join(str(s.id_short) for s in self.submodels.values())
        raise KeyError(f"no submodel {id_short!r} in {self.shell_id}; there are: {shorts}")

    def to_json(self, *, indent: int | None = None) -> str:
        """The AAS JSON environment (shell, submodels), as the AAS Part 1 JSON schema has it."""
        return object_store_to_json(self.store, encoder=AasJsonEncoder, indent=indent)

    def to_jsonable(self) -> dict[str, Any]:
        """The JSON environment as Python data, for ``verify_environment`` and HTTP bodies."""
        return json.loads(self.to_json())

    def shell_jsonable(self) -> dict[str, Any]:
        """The shell alone, as ``GET /shells/{id}`` returns it."""
        return _jsonable(self.shell)

    def submodel_jsonable(self, submodel_id: str) -> dict[str, Any]:
        """One submodel alone, as ``GET /submodels/{id}`` returns it."""
        if submodel_id not in self.submodels:
            raise KeyError(
                f"no submodel {submodel_id!r} in {self.shell_id}; "
                f"there are: {', '.join(self.submodel_ids)}"
            )
        return _jsonable(self.submodels[submodel_id])

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write the JSON environment; the file appears whole or not at all."""
        _replace(Path(path), lambda tmp: tmp.write_text(self.to_json(indent=2), encoding="utf-8"))

    def write_aasx(self, path: str | os.PathLike[str]) -> None:
        """Write an AASX package (XML part, core properties) with basyx's AASXWriter.

        XML because basyx's JSON writer in the package cannot take our encoder fix.
        """

        def write(tmp: Path) -> None:
            with aasx.AASXWriter(tmp, failsafe=False) as writer:
                writer.write_aas(
                    aas_ids=[self.shell_id],
                    object_store=self.store,
                    file_store=aasx.DictSupplementaryFileContainer(),
                )
                meta = pyecma376_2.OPCCoreProperties()
                meta.creator = self._creator
                meta.created = datetime.now(UTC).replace(microsecond=0)
                meta.title = self._title
                meta.version = self._version
                meta.identifier = self.shell_id
                writer.write_core_properties(meta)

        _replace(Path(path), write)


def _replace(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _administration(version: str) -> model.AdministrativeInformation | None:
    """AAS versions are at most four digits, so major.minor is kept; the full semver is
    in the nameplate (HardwareVersion) and the submodel ids."""
    major, minor = version.split("-")[0].split("+")[0].split(".")[:2]
    if len(major) > 4 or len(minor) > 4:
        return None
    return model.AdministrativeInformation(version=major, revision=minor)


def _shell_id_short(*parts: str) -> str:
    return sm.id_short_map(["_".join(parts)])["_".join(parts)][:128]


def type_shell(product: Product) -> AasExport:
    """The shell of the product type: nameplate, technical data and options, the full
    bill of material with selection conditions, and the software features."""
    asset_id = f"urn:liquidfab:asset:type:{product.id}:{product.version}"
    ctx = sm.Context.of(product, asset_id)

    def sm_id(kind: str) -> str:
        return f"urn:liquidfab:sm:{kind}:{product.id}:{product.version}"

    submodels = [
        sm.nameplate(ctx, sm_id("nameplate")),
        sm.technical_data(ctx, sm_id("technical-data")),
        sm.type_bom(ctx, sm_id("bom")),
        sm.features(ctx, sm_id("software-features"), product.features.values()),
    ]
    for submodel in submodels:
        submodel.administration = _administration(product.version)
    shell = model.AssetAdministrationShell(
        model.AssetInformation(model.AssetKind.TYPE, global_asset_id=asset_id),
        type_shell_id(product),
        id_short=_shell_id_short(product.id),
        display_name=sm.name(product.name),
        description=sm.text(product.spec.description) if product.spec.description else None,
        administration=_administration(product.version),
        submodel={model.ModelReference.from_referable(s) for s in submodels},
    )
    return AasExport(
        shell, submodels, title=product.name, creator=ctx.manufacturer_name, version=product.version
    )


def unit_shell(
    product: Product,
    resolved: Resolved,
    serial: str,
    *,
    as_built: Mapping[str, Any] | AsBuilt | None = None,
) -> AasExport:
    """The shell of one unit, derived from the type shell: nameplate with serial number,
    the configuration, the as-built BOM, the features it can run, and the as-built
    record (placeholders until production reports)."""
    problems: list[tuple[str, int | None, str]] = []
    if not isinstance(serial, str) or not _SERIAL.fullmatch(serial):
        problems.append(
            ("serial", None, f"{serial!r} is not a serial: 1-64 letters, digits, '.', '_', '-'")
        )
    if resolved.product.id != product.id or resolved.product.version != product.version:
        problems.append(
            (
                "resolved",
                None,
                f"the configuration is of {resolved.product.id} {resolved.product.version}, "
                f"not {product.id} {product.version}",
            )
        )
    record = None
    if as_built is not None:
        try:
            record = as_built if isinstance(as_built, AsBuilt) else AsBuilt.model_validate(as_built)
        except ValidationError as e:
            for err in e.errors():
                path = ".".join(str(p) for p in err["loc"])
                problems.append((f"as_built.{path}" if path else "as_built", None, err["msg"]))
    if problems:
        raise ProductError(problems, "<unit shell>")

    asset_id = f"urn:liquidfab:asset:unit:{product.id}:{serial}"
    ctx = sm.Context.of(product, asset_id)

    def sm_id(kind: str) -> str:
        return f"urn:liquidfab:sm:unit:{kind}:{product.id}:{serial}"

    built = record.built_at if record else None
    submodels = [
        sm.nameplate(ctx, sm_id("nameplate"), serial=serial, built=built),
        sm.configuration(ctx, sm_id("configuration"), resolved),
        sm.unit_bom(ctx, sm_id("as-built-bom"), resolved.bom),
        sm.features(ctx, sm_id("software-features"), resolved.features),
        sm.as_built(ctx, sm_id("as-built"), record),
    ]
    type_asset = f"urn:liquidfab:asset:type:{product.id}:{product.version}"
    shell = model.AssetAdministrationShell(
        model.AssetInformation(
            model.AssetKind.INSTANCE, global_asset_id=asset_id, asset_type=type_asset
        ),
        unit_shell_id(product, serial),
        id_short=_shell_id_short(product.id, serial),
        display_name=sm.name(f"{product.name} {serial}"),
        derived_from=model.ModelReference(
            (model.Key(model.KeyTypes.ASSET_ADMINISTRATION_SHELL, type_shell_id(product)),),
            model.AssetAdministrationShell,
        ),
        submodel={model.ModelReference.from_referable(s) for s in submodels},
    )
    return AasExport(
        shell,
        submodels,
        title=f"{product.name} {serial}",
        creator=ctx.manufacturer_name,
        version=product.version,
    )


# ---- verification -----------------------------------------------------------------------------


def verify_environment(jsonable: Mapping[str, Any]) -> list[str]:
    """Check an AAS JSON environment with the aas-core3.0 verifier.

    Returns one ``"path: message"`` per finding, the path naming each step by index and,
    where it has one, idShort (or id); an empty list means valid. Data that does not
    even parse as an environment gives its parse error, not an exception.
    """
    if not isinstance(jsonable, Mapping):
        return [f"(environment): expected a JSON object, got {type(jsonable).__name__}"]
    try:
        env = aas_jsonization.environment_from_jsonable(jsonable)
    except aas_jsonization.DeserializationException as e:
        return [f"{_json_path(e.path)}: {e.cause}"]
    return [f"{_verify_path(err.path)}: {err.cause}" for err in aas_verification.verify(env)]


def _camel(name: str) -> str:
    head, *rest = [p for p in name.split("_") if p]
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _label(item: Any) -> str:
    if isinstance(item, Mapping):
        found = item.get("idShort") or item.get("id")
    else:
        found = getattr(item, "id_short", None) or getattr(item, "id", None)
    return f"({found})" if isinstance(found, str) and found else ""


def _verify_path(path: aas_verification.Path) -> str:
    out = ""
    for seg in path.segments:
        if isinstance(seg, aas_verification.PropertySegment):
            out += ("." if out else "") + _camel(seg.name)
        else:
            out += f"[{seg.index}]{_label(seg.sequence[seg.index])}"
    return out or "(environment)"


def _json_path(path: aas_jsonization.Path) -> str:
    out = ""
    for seg in path.segments:
        if isinstance(seg, aas_jsonization.PropertySegment):
            out += ("." if out else "") + seg.name
        else:
            items = list(seg.container)
            item = items[seg.index] if seg.index < len(items) else None
            out += f"[{seg.index}]{_label(item)}"
    return out or "(environment)"
