"""The submodels of a product's Asset Administration Shells, built with basyx.

Where an IDTA submodel template covers the content (Digital Nameplate 02006-2-0,
Technical Data 02003-1-2, Hierarchical Structures enabling BoM 02011-1-1) its idShorts
and semantic ids are used, so generic AAS viewers understand it; what no template covers
(options, software features, the as-built record) has liquidfab semantic ids.

Product ids such as ``frame-s`` are not valid idShorts, so ``id_short_map`` maps each
id space once per product, deterministically, and every element keeps the original id
in a Property. Decimals carry at most six places, the precision money has everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from basyx.aas import model
from basyx.aas.model import datatypes as dt

from liquidfab.product.definition import Feature, Option, Part, Product
from liquidfab.product.format import BomLine, Component
from liquidfab.product.resolved import BomItem, Resolved, money, money_text

__all__ = ["PLACEHOLDER", "Context", "id_short_map"]

#: Qualifier type on elements that production fills in later.
PLACEHOLDER = "liquidfab.placeholder"
_TD = "https://admin-shell.io/ZVEI/TechnicalData/"
_HS = "https://admin-shell.io/idta/HierarchicalStructures/"
_OWN = "https://liquidfab.org/aas/"


def _own(name: str) -> str:
    return f"{_OWN}{name}/1/0"


_OWN_NAMES = (
    "PostalAddress",
    "Options",
    "AllowedValues",
    "DerivedValues",
    "Constraints",
    "DefinitionDigest",
    "VariantSpace",
    "SoftwareFeatures",
    "PriceModel",
    "Configuration",
    "Choices",
    "PriceLines",
    "PlannedOperations",
    "AsBuilt",
    "Program",
    "StationResults",
)
#: Semantic ids by idShort: the templates' for their elements, liquidfab's for its own.
SEMANTICS = {
    "Nameplate": "https://admin-shell.io/zvei/nameplate/2/0/Nameplate",
    "URIOfTheProduct": "0173-1#02-AAY811#001",
    "ManufacturerName": "0173-1#02-AAO677#002",
    "ManufacturerProductDesignation": "0173-1#02-AAW338#001",
    "ContactInformation": "https://admin-shell.io/zvei/nameplate/1/0/ContactInformations/ContactInformation",
    "Company": "0173-1#02-AAW001#001",
    "NationalCode": "0173-1#02-AAO134#002",
    "ManufacturerProductFamily": "0173-1#02-AAU731#001",
    "ManufacturerProductType": "0173-1#02-AAO057#002",
    "SerialNumber": "0173-1#02-AAM556#002",
    "YearOfConstruction": "0173-1#02-AAP906#001",
    "DateOfManufacture": "0173-1#02-AAR972#002",
    "HardwareVersion": "0173-1#02-AAN270#002",
    "CountryOfOrigin": "0173-1#02-AAO259#004",
    "TechnicalData": _TD + "Submodel/1/2",
    "GeneralInformation": _TD + "GeneralInformation/1/1",
    "ManufacturerArticleNumber": "0173-1#02-AAO676#003",
    "ManufacturerOrderCode": "0173-1#02-AAO227#002",
    "ProductClassifications": _TD + "ProductClassifications/1/1",
    "TechnicalProperties": _TD + "TechnicalProperties/1/1",
    "FurtherInformation": _TD + "FurtherInformation/1/1",
    "TextStatement01": _TD + "TextStatement/1/1",
    "BillOfMaterial": _HS + "1/1/Submodel",
    "AsBuiltBillOfMaterial": _HS + "1/1/Submodel",
    "ArcheType": _HS + "ArcheType/1/0",
    "EntryNode": _HS + "EntryNode/1/0",
    "BulkCount": _HS + "BulkCount/1/0",
    **{n: _own(n) for n in _OWN_NAMES},
}
_TECH_RESERVED = ("Options", "DerivedValues", "Constraints")
_ID_SHORT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
_LANG = "en"


def id_short_map(ids: Iterable[str], reserved: Iterable[str] = ()) -> dict[str, str]:
    """Valid idShorts for ``ids``: an id that already is one keeps it; any other id gets
    its invalid characters replaced by ``_`` (and ``id_`` before a leading non-letter),
    then ``_2``, ``_3``… in sorted order where that would collide.
    """
    taken, out, pending = set(reserved), {}, []
    for ident in dict.fromkeys(ids):
        if _ID_SHORT.match(ident) and ident not in taken:
            out[ident] = ident
            taken.add(ident)
        else:
            pending.append(ident)
    for ident in sorted(pending):
        base = re.sub(r"[^A-Za-z0-9_]", "_", ident)[:120]
        base = base if re.match(r"[A-Za-z]", base) else f"id_{base}"[:120]
        out[ident] = _unique(base, taken)
    return out


def _unique(base: str, taken: set[str]) -> str:
    label, n = base, 2
    while label in taken:
        label, n = f"{base}_{n}", n + 1
    taken.add(label)
    return label


@dataclass
class Context:
    """What every builder needs: the product, the shell's asset id and the idShort maps."""

    product: Product
    asset_id: str
    parts: dict[str, str]
    features: dict[str, str]
    technical: dict[str, str]

    @classmethod
    def of(cls, product: Product, asset_id: str) -> Context:
        return cls(
            product,
            asset_id,
            id_short_map(product.parts),
            id_short_map(product.features),
            id_short_map(product.spec.technical_data, reserved=_TECH_RESERVED),
        )

    @property
    def manufacturer_name(self) -> str:
        """The nameplate's name, else the manufacturer's did, else the id's owner domain."""
        spec = self.product.spec
        if spec.nameplate is not None:
            return spec.nameplate.manufacturer_name
        return spec.manufacturer or ".".join(reversed(spec.id.split(".")[:2]))


# ---- element helpers -------------------------------------------------------------------


def ref(iri: str | None) -> model.ExternalReference | None:
    return (
        model.ExternalReference((model.Key(model.KeyTypes.GLOBAL_REFERENCE, iri),)) if iri else None
    )


def text(value: str, limit: int = 1023) -> model.MultiLanguageTextType:
    """English text, cut to the AAS limit (1023 characters) rather than refused."""
    value = value.strip() or "-"
    return model.MultiLanguageTextType(
        {_LANG: value if len(value) <= limit else value[: limit - 1] + "…"}
    )


def name(value: str) -> model.MultiLanguageNameType:
    """A display name, cut to the AAS limit of 128 characters."""
    value = value.strip() or "-"
    return model.MultiLanguageNameType({_LANG: value if len(value) <= 128 else value[:127] + "…"})


def decimal(value: Fraction | Decimal | int) -> Decimal:
    """Six decimals at most, and never an exponent (xs:decimal has none)."""
    return Decimal(money_text(money(value)))


def _int_type(lo: int, hi: int) -> type:
    if lo >= -(2**31) and hi < 2**31:
        return dt.Int
    return dt.Long if lo >= -(2**63) and hi < 2**63 else dt.Integer


def typed(value: Any) -> tuple[type, Any]:
    """The xsd type and value for a Python value (money and fractions become decimals)."""
    if isinstance(value, bool):
        return dt.Boolean, value
    if isinstance(value, Fraction) and value.denominator == 1:
        value = int(value)
    if isinstance(value, int):
        return _int_type(value, value), value
    if isinstance(value, Fraction | Decimal):
        return dt.Decimal, decimal(value)
    if isinstance(value, float):
        return dt.Double, value
    if isinstance(value, datetime):
        return dt.DateTime, value.replace(microsecond=0)
    if isinstance(value, date):
        return dt.Date, dt.Date(value.year, value.month, value.day)
    return dt.String, str(value)


def _placeholder() -> model.Qualifier:
    return model.Qualifier(PLACEHOLDER, dt.Boolean, True, kind=model.QualifierKind.VALUE_QUALIFIER)


def prop(id_short: str | None, value: Any, xsd: type | None = None) -> model.Property:
    """A Property typed from its value; with no value, a placeholder production fills."""
    if value is not None and xsd is None:
        xsd, value = typed(value)
    element = model.Property(
        id_short, xsd or dt.String, value, semantic_id=ref(SEMANTICS.get(id_short or ""))
    )
    if value is None:
        element.qualifier.add(_placeholder())
        element.description = text("Placeholder: production fills this in.")
    return element


def mlp(id_short: str, value: str | None) -> model.MultiLanguageProperty | None:
    if not value:
        return None
    return model.MultiLanguageProperty(
        id_short, text(value), semantic_id=ref(SEMANTICS.get(id_short))
    )


def fields(values: Mapping[str, Any]) -> list[model.SubmodelElement]:
    """Elements from idShort → value: values become typed Properties, None is left out."""
    return [
        v if isinstance(v, model.SubmodelElement) else prop(k, v)
        for k, v in values.items()
        if v is not None
    ]


def group(
    id_short: str | None,
    values: Mapping[str, Any] | Iterable[model.SubmodelElement | None],
    *,
    display: str | None = None,
    semantic: str | None = None,
) -> model.SubmodelElementCollection:
    elements = (
        fields(values) if isinstance(values, Mapping) else [e for e in values if e is not None]
    )
    return model.SubmodelElementCollection(
        id_short,
        elements,
        semantic_id=ref(semantic or SEMANTICS.get(id_short or "")),
        display_name=name(display) if display else None,
    )


def rows(id_short: str, items: Iterable[Mapping[str, Any]]) -> model.SubmodelElementList | None:
    """A list of collections, one per row; None when there are no rows."""
    elements = [group(None, item) for item in items]
    if not elements:
        return None
    return model.SubmodelElementList(
        id_short,
        model.SubmodelElementCollection,
        elements,
        semantic_id=ref(SEMANTICS.get(id_short)),
    )


def submodel(
    sm_id: str, id_short: str, elements: Iterable[model.SubmodelElement | None]
) -> model.Submodel:
    return model.Submodel(
        sm_id,
        id_short=id_short,
        semantic_id=ref(SEMANTICS[id_short]),
        submodel_element=[e for e in elements if e is not None],
    )


# ---- Nameplate and technical data -----------------------------------------------------------


def nameplate(
    ctx: Context, sm_id: str, *, serial: str | None = None, built: datetime | None = None
) -> model.Submodel:
    """The Digital Nameplate; a unit's adds its serial number and date of manufacture."""
    spec, plate = ctx.product.spec, ctx.product.spec.nameplate
    contact = None
    if plate is not None and (plate.address or plate.country):
        contact = group(
            "ContactInformation",
            [
                mlp("Company", plate.manufacturer_name),
                mlp("NationalCode", plate.country),
                mlp("PostalAddress", plate.address),
            ],
        )
        contact.description = text("The product file gives the address as one text.")
    year = built.year if built else (plate.year_of_construction if plate else None)
    return submodel(
        sm_id,
        "Nameplate",
        [
            prop("URIOfTheProduct", ctx.asset_id),
            mlp("ManufacturerName", ctx.manufacturer_name),
            mlp("ManufacturerProductDesignation", spec.name),
            contact,
            mlp("ManufacturerProductFamily", plate.product_family if plate else None),
            *fields(
                {
                    "ManufacturerProductType": spec.id,
                    "SerialNumber": serial,
                    "YearOfConstruction": str(year) if year else None,
                    "DateOfManufacture": built.date() if built else None,
                }
            ),
            mlp("HardwareVersion", spec.version),
            *fields({"CountryOfOrigin": plate.country if plate else None}),
        ],
    )


def _option_typed(option: Option, value: Any) -> tuple[type, Any]:
    if option.kind == "enum":
        return dt.String, str(value)
    if option.kind == "bool":
        return dt.Boolean, bool(value)
    if option.kind == "int":
        return _int_type(int(option.min), int(option.max)), int(value)
    return dt.Decimal, decimal(value)


def _option_value(id_short: str, option: Option, value: Any) -> model.Property:
    xsd, typed_value = _option_typed(option, value)
    return prop(id_short, typed_value, xsd)


def _option(option: Option, ctx: Context) -> model.SubmodelElementCollection:
    spec = next(o for o in ctx.product.spec.options if o.id == option.id)
    values: dict[str, Any] = {
        "OptionId": option.id,
        "Label": mlp("Label", option.label),
        "Type": option.kind,
        "Group": option.group,
        "Unit": option.unit,
        "Default": None
        if option.default is None
        else _option_value("Default", option, option.default),
    }
    if option.kind == "enum":
        allowed = [
            {
                "Value": v.id,
                "Label": mlp("Label", v.label or v.id),
                "AvailableWhen": None if v.when is None else str(v.when),
            }
            for v in spec.enum_values()
        ]
        values["AllowedValues"] = rows("AllowedValues", allowed)
    elif option.kind in ("int", "decimal"):
        xsd, lo = _option_typed(option, option.min)
        values["ValueRange"] = model.Range(
            "ValueRange", xsd, lo, _option_typed(option, option.max)[1]
        )
        values["Step"] = _option_value("Step", option, option.step)
    return group(option.id, values, display=option.label, semantic=_own("Option"))


def technical_data(ctx: Context, sm_id: str) -> model.Submodel:
    """Technical data with the options (values, ranges, units) and the rules in words."""
    product, spec = ctx.product, ctx.product.spec
    technical: list[model.SubmodelElement | None] = []
    for key, value in spec.technical_data.items():
        xsd, value = typed(value)
        technical.append(model.Property(ctx.technical[key], xsd, value, display_name=name(key)))
    options = group("Options", [_option(o, ctx) for o in product.options.values()])
    options.description = text(
        "What a customer chooses; a unit's choices are in its Configuration."
    )
    derived = [
        {
            "Id": d.id,
            "Label": mlp("Label", d.label or d.id),
            "Expression": str(d.value),
            "Unit": d.unit,
        }
        for d in spec.derived
    ]
    constraints = [
        {"ConstraintId": c.id, "Message": mlp("Message", c.message), "Kind": c.kind, "Rule": c.text}
        for c in product.constraints
    ]
    technical += [options, rows("DerivedValues", derived), rows("Constraints", constraints)]
    general = {
        "ManufacturerName": ctx.manufacturer_name,
        "ManufacturerProductDesignation": mlp("ManufacturerProductDesignation", spec.name),
        "ManufacturerArticleNumber": spec.id,
        "ManufacturerOrderCode": f"{spec.id}@{spec.version}",
    }
    further = {
        "TextStatement01": mlp("TextStatement01", spec.description),
        "DefinitionDigest": product.digest(),
        "VariantSpace": prop("VariantSpace", product.variant_space(), dt.Integer),
    }
    return submodel(
        sm_id,
        "TechnicalData",
        [
            group("GeneralInformation", general),
            group("ProductClassifications", []),
            group("TechnicalProperties", technical),
            group("FurtherInformation", further),
        ],
    )


# ---- Bills of material (IDTA 02011-1-1 Hierarchical Structures) -------------------------------


def _part(ctx: Context, part: Part) -> dict[str, Any]:
    sup = part.supplier
    return {
        "PartId": part.id,
        "Name": part.name,
        "Unit": part.unit,
        "Purchased": sup is not None,
        "Supplier": sup.id if sup else None,
        "SupplierName": sup.name if sup else None,
        "SupplierDid": sup.did if sup else None,
        "UnitCost": decimal(part.unit_cost),
        "Currency": ctx.product.currency,
        "LeadTimeDays": part.lead_time_days,
        "MassKg": None if part.mass_kg is None else decimal(part.mass_kg),
    }


def _node(
    parent: model.Entity, taken: set[str], ctx: Context, part: Part, values: Mapping[str, Any]
) -> model.Entity:
    """A Node entity for ``part`` under ``parent``, with the HasPart relationship to it."""
    node = model.Entity(
        _unique(ctx.parts[part.id], taken),
        model.EntityType.CO_MANAGED_ENTITY,
        fields({**_part(ctx, part), **values}),
        display_name=name(part.name),
        semantic_id=ref(_HS + "Node/1/0"),
    )
    parent.statement.add(node)
    parent.statement.add(
        model.RelationshipElement(
            f"HasPart_{node.id_short}",
            model.ModelReference.from_referable(parent),
            model.ModelReference.from_referable(node),
            semantic_id=ref(_HS + "HasPart/1/0"),
        )
    )
    return node


def _bulk(count: Any) -> model.Property | None:
    whole = isinstance(count, int) and not isinstance(count, bool) and count > 0
    return prop("BulkCount", count, dt.UnsignedLong) if whole else None


def _hierarchy(ctx: Context, sm_id: str, id_short: str) -> tuple[model.Submodel, model.Entity]:
    entry = model.Entity(
        "EntryNode",
        model.EntityType.SELF_MANAGED_ENTITY,
        global_asset_id=ctx.asset_id,
        display_name=name(ctx.product.name),
        semantic_id=ref(SEMANTICS["EntryNode"]),
    )
    return submodel(sm_id, id_short, [prop("ArcheType", "Full"), entry]), entry


def type_bom(ctx: Context, sm_id: str) -> model.Submodel:
    """Every part the product may use, with its quantity and selection condition as text."""
    sm, entry = _hierarchy(ctx, sm_id, "BillOfMaterial")
    specs = {p.id: p for p in ctx.product.spec.parts}

    def add(parent: model.Entity, lines: Sequence[BomLine | Component]) -> None:
        taken: set[str] = set()
        for line in lines:
            values = {
                "Quantity": str(line.quantity),
                "BulkCount": _bulk(line.quantity),
                "SelectionCondition": None if line.when is None else str(line.when),
            }
            node = _node(parent, taken, ctx, ctx.product.parts[line.part], values)
            add(node, specs[line.part].components)

    add(entry, ctx.product.spec.bom)
    return sm


def unit_bom(ctx: Context, sm_id: str, bom: Sequence[BomItem]) -> model.Submodel:
    """The exploded BOM of one configuration: resolved quantities and costs."""
    sm, entry = _hierarchy(ctx, sm_id, "AsBuiltBillOfMaterial")
    stack: list[tuple[model.Entity, set[str]]] = [(entry, set())]
    for item in bom:
        del stack[item.level :]
        values = {
            "Quantity": prop("Quantity", decimal(item.quantity), dt.Decimal),
            "BulkCount": _bulk(int(item.quantity) if item.quantity.denominator == 1 else None),
            "Cost": decimal(item.cost),
        }
        node = _node(*stack[-1], ctx, ctx.product.parts[item.part], values)
        stack.append((node, set()))
    return sm


# ---- Software features, configuration, as-built ----------------------------------------------


def features(ctx: Context, sm_id: str, items: Iterable[Feature]) -> model.Submodel:
    """Software on the unit: what is included and what is sold after sale, at what price."""
    conditions = {f.id: f.available_when for f in ctx.product.spec.features}
    out = []
    for f in items:
        price = {
            "Model": f.price.model,
            "Amount": decimal(f.price.amount),
            "Currency": ctx.product.currency,
            "Period": f.price.period,
            "TrialDays": f.price.trial_days,
            "Unit": f.price.unit,
        }
        values = {
            "FeatureId": f.id,
            "Name": f.name,
            "Kind": f.kind,
            "Included": f.included,
            "AvailableWhen": None if conditions[f.id] is None else str(conditions[f.id]),
            "PriceModel": group("PriceModel", price),
            "MarginalCost": decimal(f.marginal_cost),
            "Description": mlp("Description", f.description),
        }
        out.append(
            group(ctx.features[f.id], values, display=f.name, semantic=_own("SoftwareFeature"))
        )
    return submodel(sm_id, "SoftwareFeatures", out)


def _pairs(values: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    return [{key: k, "Value": v} for k, v in values.items()]


def configuration(ctx: Context, sm_id: str, resolved: Resolved) -> model.Submodel:
    """The chosen options and what they come to: price, cost, planned operations."""
    product = ctx.product
    choices = []
    for option_id, value in resolved.choices.items():
        option = product.options[option_id]
        choice = {
            "OptionId": option_id,
            "Value": _option_value("Value", option, value),
            "Display": option.show(value),
            "Unit": option.unit,
        }
        choices.append(group(option_id, choice, display=option.label, semantic=_own("Choice")))
    operations = [
        {
            "OperationId": op.id,
            "Station": op.station,
            "Name": op.name,
            "Seconds": prop("Seconds", decimal(op.seconds), dt.Decimal),
            "Cost": decimal(op.cost),
            "Parameters": rows("Parameters", _pairs(op.parameters, "Name")),
        }
        for op in resolved.operations
    ]
    prices = [
        {"Id": p.id, "Label": p.label, "Amount": decimal(p.amount)} for p in resolved.price_lines
    ]
    values = {
        "ProductId": product.id,
        "ProductVersion": product.version,
        "DefinitionDigest": product.digest(),
        "Choices": group("Choices", choices),
        "DerivedValues": rows("DerivedValues", _pairs(resolved.derived, "Id")),
        "Price": decimal(resolved.price),
        "Currency": product.currency,
        "PriceLines": rows("PriceLines", prices),
        "UnitCost": decimal(resolved.unit_cost),
        "MaterialCost": decimal(resolved.material_cost),
        "LabourCost": decimal(resolved.labour_cost),
        "BuildSeconds": prop("BuildSeconds", decimal(resolved.build_seconds), dt.Decimal),
        "LeadTimeDays": resolved.lead_time_days,
        "PlannedOperations": rows("PlannedOperations", operations),
    }
    return submodel(sm_id, "Configuration", fields(values))


def as_built(ctx: Context, sm_id: str, record: Any | None) -> model.Submodel:
    """What production recorded (a validated ``aas.AsBuilt``), or placeholders for it."""
    results = [
        {
            "Station": r.station,
            "Operation": r.operation,
            "Passed": r.passed,
            "Seconds": None if r.seconds is None else decimal(r.seconds),
            "FinishedAt": r.finished_at,
            "Measurements": rows("Measurements", _pairs(r.measurements, "Name")),
            "Note": r.note,
        }
        for r in (record.station_results if record else [])
    ]
    stations = rows("StationResults", results) or model.SubmodelElementList(
        "StationResults",
        model.SubmodelElementCollection,
        semantic_id=ref(SEMANTICS["StationResults"]),
        qualifier=[_placeholder()],
        description=text("Placeholder: production fills this in."),
    )

    def field(id_short: str, attribute: str, xsd: type = dt.String) -> model.Property:
        value = getattr(record, attribute) if record else None
        return prop(id_short, value, None if value is not None else xsd)

    return submodel(
        sm_id,
        "AsBuilt",
        [
            prop("Status", record.status if record else "pending"),
            group(
                "Program", [field("ProgramId", "program"), field("ProgramDigest", "program_digest")]
            ),
            stations,
            field("DeviceDid", "device_did"),
            field("BuiltAt", "built_at", dt.DateTime),
        ],
    )
