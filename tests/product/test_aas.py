"""AAS export: every shell passes the aas-core3.0 verifier, broken ones are caught at the
right place, and the files round-trip through basyx's own readers."""

from __future__ import annotations

import base64
import copy
import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aas_core3 import verification as aas_verification
from aas_core3 import xmlization as aas_xmlization
from basyx.aas import model
from basyx.aas.adapter import aasx
from basyx.aas.adapter.json import object_store_to_json, read_aas_json_file

from liquidfab.errors import ProductError
from liquidfab.product import Product, load_product
from liquidfab.product.aas import (
    AasExport,
    AasJsonEncoder,
    aas_id_b64,
    type_shell,
    type_shell_id,
    unit_shell,
    unit_shell_id,
    verify_environment,
)
from liquidfab.product.aas_submodels import PLACEHOLDER, id_short_map
from liquidfab.product.expressions import evaluate
from liquidfab.product.resolved import Resolved, coerce_choices, resolve

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
LAMP = HERE / "lamp.yaml"
LAMP_CHOICES = {"shade": "glass", "colour": "white", "dimmer": True, "arm_cm": 50, "watts": "6.5"}
DID = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
AS_BUILT = {
    "program": "prog-0001",
    "program_digest": "ab" * 32,
    "device_did": DID,
    "built_at": "2025-03-01T10:00:00Z",
    "station_results": [
        {
            "station": "assembly",
            "operation": "mount-arm",
            "passed": True,
            "seconds": 55.5,
            "measurements": {"torque_nm": 1.25, "ok": True, "label": "A"},
        },
        {"station": "test", "operation": "burn-in", "passed": True},
    ],
}

# Part and feature ids that are not idShorts, and that collide once made into one.
AWKWARD = """
id: org.example.awkward
version: 12.3.4-rc.1+build.5
name: Awkward ids
description: Ids that are not idShorts.
nameplate:
  manufacturer_name: Example Works
  country: DE
  product_family: Oddities
  year_of_construction: 2025
  address: Musterstrasse 1, 12345 Musterstadt
technical_data:
  Options: clashes with the options collection
  max speed: 25
  9 volts: true
  ratio: 0.5
options:
  - {id: size, type: enum, values: [s, "9", S-2]}
suppliers:
  - {id: acme, name: Acme, did: "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"}
parts:
  - {id: frame-s, name: Frame dash, supplier: acme, unit_cost: 10.125, mass_kg: 1.5}
  - {id: frame_s, name: Frame underscore, supplier: acme, unit_cost: 1000000}
  - {id: 9v-cell, name: Cell, supplier: acme, unit_cost: 0.000001, lead_time_days: 30}
  - id: kit
    name: Kit
    components:
      - {part: 9v-cell, quantity: 3}
      - {part: 9v-cell, quantity: "1/3", when: "size == 's'"}
bom:
  - {part: frame-s, when: "size == 's'"}
  - {part: frame_s}
  - {part: kit}
  - {part: kit, quantity: 2, when: "size != 's'"}
features:
  - {id: 2fa, name: Two factor, kind: app, price: {model: one-time, amount: 5}}
  - {id: two-fa, name: Two factor again, kind: firmware, included: true}
pricing: {base: 100}
"""


def _lamp() -> Product:
    return load_product(LAMP)


def _complete(product: Product) -> dict[str, Any]:
    """Some valid complete configuration: defaults first, by backtracking."""
    options = list(product.options.values())
    chosen: dict[str, Any] = {}

    def ok() -> bool:
        return all(
            evaluate(c.expr, chosen) for c in product.constraints if c.options <= chosen.keys()
        )

    def search(i: int) -> bool:
        if i == len(options):
            return True
        option = options[i]
        domain = option.domain()
        if option.default is not None:
            domain = [option.default, *(v for v in domain if v != option.default)]
        for value in domain[:200]:
            chosen[option.id] = value
            if ok() and search(i + 1):
                return True
        del chosen[option.id]
        return False

    assert search(0), f"no valid configuration of {product.id} found"
    return chosen


def _resolved(product: Product) -> Resolved:
    if product.id == "org.example.lamp":
        return resolve(product, coerce_choices(product, LAMP_CHOICES, complete=True))
    return resolve(product, _complete(product))


def _example(name: str) -> Product:
    path = ROOT / "examples" / name / "product.yaml"
    if not path.exists():
        pytest.skip(f"{path.relative_to(ROOT)} is not written yet")
    return load_product(path)


def _product(name: str) -> Product:
    if name == "lamp":
        return _lamp()
    if name == "awkward":
        return load_product(AWKWARD)
    return _example(name)


def _export(name: str, kind: str) -> AasExport:
    product = _product(name)
    if kind == "type":
        return type_shell(product)
    resolved = _resolved(product)
    return unit_shell(product, resolved, "SN-0001", as_built=AS_BUILT if kind == "built" else None)


CASES = [
    (name, kind)
    for name in ("lamp", "awkward", "ebike", "heatpump")
    for kind in ("type", "unit", "built")
]


def _walk(elements: list[dict[str, Any]], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for i, e in enumerate(elements):
        here = f"{path}/{e.get('idShort', i)}"
        yield here, e
        for key in ("value", "statements"):
            children = e.get(key)
            if isinstance(children, list) and children and "modelType" in children[0]:
                yield from _walk(children, here)


def _elements(jsonable: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every element of every submodel, by 'SubmodelIdShort/idShort/…' path."""
    out = {}
    for sub in jsonable["submodels"]:
        for path, e in _walk(sub.get("submodelElements", []), sub["idShort"]):
            out[path] = e
    return out


def _submodel(jsonable: dict[str, Any], id_short: str) -> dict[str, Any]:
    return next(s for s in jsonable["submodels"] if s["idShort"] == id_short)


# ---- every export is valid --------------------------------------------------------------


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_export_passes_the_verifier(name: str, kind: str) -> None:
    export = _export(name, kind)
    jsonable = json.loads(export.to_json())
    assert verify_environment(jsonable) == []
    assert jsonable == export.to_jsonable()
    assert len(jsonable["assetAdministrationShells"]) == 1
    assert [s["id"] for s in jsonable["submodels"]] == export.submodel_ids


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_decimals_have_no_exponent_and_idshorts_are_valid(name: str, kind: str) -> None:
    for path, e in _elements(_export(name, kind).to_jsonable()).items():
        if "idShort" in e:
            assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,127}", e["idShort"]), path
        if e.get("valueType") == "xs:decimal" and "value" in e:
            assert re.fullmatch(r"-?\d+(\.\d+)?", e["value"]), (path, e["value"])


# ---- a broken export is caught, at its place ------------------------------------------------


@pytest.fixture
def lamp_json() -> dict[str, Any]:
    return type_shell(_lamp()).to_jsonable()


def test_an_invalid_idshort_is_caught_by_name(lamp_json: dict[str, Any]) -> None:
    nameplate = _submodel(lamp_json, "Nameplate")
    nameplate["submodelElements"][1]["idShort"] = "9-bad"
    errors = verify_environment(lamp_json)
    assert len(errors) == 1
    assert errors[0].startswith("submodels[0](Nameplate).submodelElements[1](9-bad).idShort: ")


def test_a_duplicate_idshort_is_caught(lamp_json: dict[str, Any]) -> None:
    elements = _submodel(lamp_json, "Nameplate")["submodelElements"]
    elements[2]["idShort"] = elements[1]["idShort"]
    errors = verify_environment(lamp_json)
    assert errors and all(e.startswith("submodels[0](Nameplate)") for e in errors)
    assert any("unique" in e.lower() for e in errors)


def test_a_missing_required_field_is_caught(lamp_json: dict[str, Any]) -> None:
    uri = _submodel(lamp_json, "Nameplate")["submodelElements"][0]
    assert uri["idShort"] == "URIOfTheProduct"
    del uri["valueType"]
    errors = verify_environment(lamp_json)
    assert len(errors) == 1
    assert errors[0].startswith("submodels[0](Nameplate).submodelElements[0](URIOfTheProduct): ")
    assert "valueType" in errors[0]


def test_a_value_of_the_wrong_type_is_caught(lamp_json: dict[str, Any]) -> None:
    bom = _submodel(lamp_json, "BillOfMaterial")
    shade = bom["submodelElements"][1]["statements"][0]
    lead = next(e for e in shade["statements"] if e["idShort"] == "LeadTimeDays")
    assert lead["valueType"] == "xs:int"
    lead["value"] = "two weeks"
    errors = verify_environment(lamp_json)
    assert len(errors) == 1
    assert "(BillOfMaterial)" in errors[0]
    assert ".statements[0](shade_paper).statements[" in errors[0]
    assert "(LeadTimeDays): Value must be consistent with the value type" in errors[0]


def test_a_wrong_range_bound_is_caught(lamp_json: dict[str, Any]) -> None:
    elements = _elements(lamp_json)
    elements["TechnicalData/TechnicalProperties/Options/arm_cm/ValueRange"]["min"] = "twenty"
    [error] = verify_environment(lamp_json)
    assert "(Options).value[3](arm_cm).value[" in error
    assert "(ValueRange): Min must be consistent with the value type" in error


@pytest.mark.parametrize(
    "broken",
    [
        [],
        None,
        {"submodels": "not a list"},
        {"submodels": [None]},
        {"submodels": [{"modelType": "Nope"}]},
        {"unknown": 1},
    ],
)
def test_what_does_not_parse_gives_errors_not_exceptions(broken: Any) -> None:
    errors = verify_environment(broken)
    assert len(errors) == 1
    assert ": " in errors[0]


# ---- JSON and AASX round-trip through basyx -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"), [("lamp", "type"), ("lamp", "built"), ("awkward", "type")]
)
def test_json_round_trips_through_basyx(name: str, kind: str, tmp_path: Path) -> None:
    export = _export(name, kind)
    path = tmp_path / "env.json"
    export.write_json(path)
    store = read_aas_json_file(path, failsafe=False)
    assert {o.id for o in store} == {export.shell_id, *export.submodel_ids}
    again = json.loads(object_store_to_json(store, encoder=AasJsonEncoder))
    assert again == export.to_jsonable()
    assert json.loads(path.read_text(encoding="utf-8")) == export.to_jsonable()


@pytest.mark.parametrize("kind", ["type", "built"])
def test_aasx_is_read_back_by_basyx(kind: str, tmp_path: Path) -> None:
    export = _export("lamp", kind)
    path = tmp_path / "lamp.aasx"
    export.write_aasx(path)
    store: model.DictIdentifiableStore[model.Identifiable] = model.DictIdentifiableStore()
    files = aasx.DictSupplementaryFileContainer()
    with aasx.AASXReader(path, failsafe=False) as reader:
        reader.read_into(store, files)
        meta = reader.get_core_properties()
    assert {o.id for o in store} == {export.shell_id, *export.submodel_ids}
    shell = store.get_item(export.shell_id)
    assert isinstance(shell, model.AssetAdministrationShell)
    assert {r.key[0].value for r in shell.submodel} == set(export.submodel_ids)
    again = json.loads(object_store_to_json(store, encoder=AasJsonEncoder))
    assert verify_environment(again) == []
    assert meta.identifier == export.shell_id
    assert meta.title and meta.creator and meta.created
    assert not list(tmp_path.glob(".*.tmp"))


def test_aasx_xml_part_passes_the_verifier(tmp_path: Path) -> None:
    """basyx 2.2 writes the AAS 3.1 XML namespace; aas-core3.0 reads 3.0. The elements we
    use are the same in both, so the part is checked under the 3.0 namespace."""
    path = tmp_path / "lamp.aasx"
    type_shell(_lamp()).write_aasx(path)
    with zipfile.ZipFile(path) as package:
        xml = package.read("aasx/data.xml").decode("utf-8")
    assert "https://admin-shell.io/aas/3/1" in xml
    env = aas_xmlization.environment_from_str(
        xml.replace("https://admin-shell.io/aas/3/1", "https://admin-shell.io/aas/3/0")
    )
    assert [f"{e.path}: {e.cause}" for e in aas_verification.verify(env)] == []


# ---- single objects for HTTP paths -------------------------------------------------------------


def test_type_shell_jsonable() -> None:
    product = _lamp()
    export = type_shell(product)
    shell = export.shell_jsonable()
    assert shell["modelType"] == "AssetAdministrationShell"
    assert shell["id"] == export.shell_id == type_shell_id(product)
    assert export.shell_id == "urn:liquidfab:aas:type:org.example.lamp:1.0.0"
    assert shell["assetInformation"]["assetKind"] == "Type"
    assert shell["administration"] == {"version": "1", "revision": "0"}
    refs = [r["keys"][0]["value"] for r in shell["submodels"]]
    assert refs == sorted(export.submodel_ids)
    assert shell == export.to_jsonable()["assetAdministrationShells"][0]
    assert [export.submodel_id(s) for s in ("Nameplate", "TechnicalData")] == [
        "urn:liquidfab:sm:nameplate:org.example.lamp:1.0.0",
        "urn:liquidfab:sm:technical-data:org.example.lamp:1.0.0",
    ]
    env = export.to_jsonable()
    for sub_id in export.submodel_ids:
        single = export.submodel_jsonable(sub_id)
        assert single["modelType"] == "Submodel" and single["id"] == sub_id
        assert single in env["submodels"]
        assert verify_environment({"submodels": [single]}) == []
    with pytest.raises(KeyError, match="no submodel"):
        export.submodel_jsonable("urn:nope")
    with pytest.raises(KeyError, match="there are: Nameplate"):
        export.submodel_id("Nope")


def test_unit_shell_is_derived_from_the_type_shell() -> None:
    product = _lamp()
    export = _export("lamp", "unit")
    shell = export.shell_jsonable()
    assert export.shell_id == unit_shell_id(product, "SN-0001")
    assert export.shell_id == "urn:liquidfab:aas:unit:org.example.lamp:SN-0001"
    assert shell["assetInformation"]["assetKind"] == "Instance"
    assert shell["assetInformation"]["assetType"].endswith(":org.example.lamp:1.0.0")
    assert shell["derivedFrom"] == {
        "type": "ModelReference",
        "keys": [{"type": "AssetAdministrationShell", "value": type_shell_id(product)}],
    }
    assert [export.submodel_jsonable(i)["idShort"] for i in export.submodel_ids] == [
        "Nameplate",
        "Configuration",
        "AsBuiltBillOfMaterial",
        "SoftwareFeatures",
        "AsBuilt",
    ]
    assert not set(export.submodel_ids) & set(type_shell(product).submodel_ids)


@pytest.mark.parametrize(
    "identifier",
    ["urn:liquidfab:aas:type:org.example.lamp:1.0.0", "a", "ab", "abc", "???>>>", "ü:€"],
)
def test_base64url_ids_have_no_padding(identifier: str) -> None:
    encoded = aas_id_b64(identifier)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", encoded)
    padded = encoded + "=" * (-len(encoded) % 4)
    assert base64.urlsafe_b64decode(padded).decode("utf-8") == identifier


def test_base64url_vector() -> None:
    assert aas_id_b64("???>>>") == "Pz8_Pj4-"
    assert aas_id_b64("urn:x") == "dXJuOng"


# ---- content ------------------------------------------------------------------------------------


def test_nameplate_follows_the_digital_nameplate() -> None:
    nameplate = _submodel(type_shell(load_product(AWKWARD)).to_jsonable(), "Nameplate")
    assert nameplate["semanticId"]["keys"][0]["value"] == (
        "https://admin-shell.io/zvei/nameplate/2/0/Nameplate"
    )
    by = {e["idShort"]: e for e in nameplate["submodelElements"]}
    assert by["ManufacturerName"]["modelType"] == "MultiLanguageProperty"
    assert by["ManufacturerName"]["value"] == [{"language": "en", "text": "Example Works"}]
    assert by["ManufacturerName"]["semanticId"]["keys"][0]["value"] == "0173-1#02-AAO677#002"
    assert by["ManufacturerProductFamily"]["value"][0]["text"] == "Oddities"
    assert by["CountryOfOrigin"]["value"] == "DE"
    assert by["YearOfConstruction"]["value"] == "2025"
    assert by["HardwareVersion"]["value"][0]["text"] == "12.3.4-rc.1+build.5"
    contact = {e["idShort"]: e for e in by["ContactInformation"]["value"]}
    assert contact["NationalCode"]["value"][0]["text"] == "DE"
    assert "Musterstadt" in contact["PostalAddress"]["value"][0]["text"]
    assert "SerialNumber" not in by


def test_awkward_ids_become_distinct_idshorts_and_keep_the_original() -> None:
    env = type_shell(load_product(AWKWARD)).to_jsonable()
    elements = _elements(env)
    nodes = {
        p.rsplit("/", 1)[1]: elements[p + "/PartId"]["value"]
        for p, e in elements.items()
        if e["modelType"] == "Entity" and p.count("/") == 2
    }
    assert nodes == {
        "frame_s_2": "frame-s",
        "frame_s": "frame_s",
        "kit": "kit",
        "kit_2": "kit",
    }
    kit = "BillOfMaterial/EntryNode/kit"
    assert elements[f"{kit}/id_9v_cell/PartId"]["value"] == "9v-cell"
    assert elements[f"{kit}/id_9v_cell_2/SelectionCondition"]["value"] == "size == 's'"
    assert elements[f"{kit}/id_9v_cell_2/Quantity"]["value"] == "1/3"
    assert f"{kit}/id_9v_cell_2/BulkCount" not in elements
    assert elements["SoftwareFeatures/id_2fa/FeatureId"]["value"] == "2fa"
    assert elements["SoftwareFeatures/two_fa/FeatureId"]["value"] == "two-fa"
    tech = "TechnicalData/TechnicalProperties"
    assert elements[f"{tech}/Options_2"]["value"] == "clashes with the options collection"
    assert elements[f"{tech}/Options_2"]["displayName"][0]["text"] == "Options"
    assert elements[f"{tech}/max_speed"]["valueType"] == "xs:int"
    assert elements[f"{tech}/id_9_volts"]["valueType"] == "xs:boolean"
    assert elements[f"{tech}/ratio"]["valueType"] == "xs:double"
    assert elements[f"{tech}/Options"]["modelType"] == "SubmodelElementCollection"
    assert elements["BillOfMaterial/EntryNode/frame_s/UnitCost"]["value"] == "1000000"
    assert elements[f"{kit}/id_9v_cell/UnitCost"]["value"] == "0.000001"
    assert elements["BillOfMaterial/EntryNode/frame_s_2/MassKg"]["value"] == "1.5"


def test_id_short_map_is_deterministic_and_collision_free() -> None:
    ids = ["frame-s", "frame_s", "frame.s", "9v", "v9", "Options", "a b", "a_b"]
    first = id_short_map(ids, reserved=["Options"])
    assert first == id_short_map(list(reversed(ids)), reserved=["Options"])
    assert len(set(first.values())) == len(ids)
    assert first["frame_s"] == "frame_s" and first["v9"] == "v9" and first["a_b"] == "a_b"
    assert first["9v"] == "id_9v"
    assert first["Options"] == "Options_2"
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", v) for v in first.values())


def test_type_bom_has_hierarchy_with_has_part_relationships(lamp_json: dict[str, Any]) -> None:
    bom = _submodel(lamp_json, "BillOfMaterial")
    assert bom["semanticId"]["keys"][0]["value"] == (
        "https://admin-shell.io/idta/HierarchicalStructures/1/1/Submodel"
    )
    archetype, entry = bom["submodelElements"]
    assert archetype["value"] == "Full"
    assert entry["idShort"] == "EntryNode" and entry["entityType"] == "SelfManagedEntity"
    assert entry["globalAssetId"] == "urn:liquidfab:asset:type:org.example.lamp:1.0.0"
    head = next(s for s in entry["statements"] if s["idShort"] == "head")
    children = [s["idShort"] for s in head["statements"] if s["modelType"] == "Entity"]
    assert children == ["led", "dimmer_module"]
    rels = [s for s in head["statements"] if s["modelType"] == "RelationshipElement"]
    assert [r["idShort"] for r in rels] == ["HasPart_led", "HasPart_dimmer_module"]
    for rel, child in zip(rels, children, strict=True):
        assert [k["value"] for k in rel["first"]["keys"]][1:] == ["EntryNode", "head"]
        assert [k["value"] for k in rel["second"]["keys"]][1:] == ["EntryNode", "head", child]
    by = {s["idShort"]: s for s in head["statements"]}
    assert by["PartId"]["value"] == "head" and by["Purchased"]["value"] == "false"
    led = {s["idShort"]: s for s in by["led"]["statements"]}
    assert led["Quantity"]["value"] == "watts / 0.5"
    assert led["SupplierDid"]["value"] == DID
    assert led["UnitCost"] == {**led["UnitCost"], "value": "0.2", "valueType": "xs:decimal"}
    assert led["LeadTimeDays"]["valueType"] == "xs:int"
    dimmer = {s["idShort"]: s for s in by["dimmer_module"]["statements"]}
    assert dimmer["SelectionCondition"]["value"] == "dimmer"


def test_technical_data_lists_options_and_constraints(lamp_json: dict[str, Any]) -> None:
    elements = _elements(lamp_json)
    options = "TechnicalData/TechnicalProperties/Options"
    watts = elements[f"{options}/watts/ValueRange"]
    assert (watts["valueType"], watts["min"], watts["max"]) == ("xs:decimal", "4", "8")
    assert elements[f"{options}/watts/Step"]["value"] == "0.5"
    assert elements[f"{options}/watts/Unit"]["value"] == "W"
    assert elements[f"{options}/dimmer/Default"] == {
        **elements[f"{options}/dimmer/Default"],
        "value": "false",
        "valueType": "xs:boolean",
    }
    colours = elements[f"{options}/colour/AllowedValues"]["value"]
    assert [c["value"][0]["value"] for c in colours] == ["white", "black", "brass"]
    assert colours[2]["value"][2] == {
        "idShort": "AvailableWhen",
        "modelType": "Property",
        "value": "shade == 'metal'",
        "valueType": "xs:string",
    }
    constraints = elements["TechnicalData/TechnicalProperties/Constraints"]["value"]
    messages = [c["value"][1]["value"][0]["text"] for c in constraints]
    assert "The dimmer needs 6 W or more." in messages
    assert len(constraints) == len(_lamp().constraints)


def test_unit_shell_records_configuration_and_placeholders() -> None:
    env = _export("lamp", "unit").to_jsonable()
    elements = _elements(env)
    assert elements["Nameplate/SerialNumber"]["value"] == "SN-0001"
    choices = "Configuration/Choices"
    assert elements[f"{choices}/watts/Value"]["valueType"] == "xs:decimal"
    assert elements[f"{choices}/watts/Value"]["value"] == "6.5"
    assert elements[f"{choices}/arm_cm/Value"]["valueType"] == "xs:int"
    assert elements[f"{choices}/dimmer/Value"]["value"] == "true"
    assert elements["Configuration/Price"]["value"] == "67.5"
    assert elements["Configuration/UnitCost"]["value"] == "29.3"
    led = "AsBuiltBillOfMaterial/EntryNode/head/led"
    assert elements[f"{led}/Quantity"]["value"] == "13"
    assert elements[f"{led}/BulkCount"]["value"] == "13"
    assert elements[f"{led}/Cost"]["value"] == "2.6"
    features = [e["value"] for p, e in elements.items() if p.endswith("/FeatureId")]
    assert features == ["schedule", "circadian"]
    assert elements["AsBuilt/Status"]["value"] == "pending"
    for key in ("Program/ProgramId", "DeviceDid", "BuiltAt", "StationResults"):
        element = elements[f"AsBuilt/{key}"]
        assert "value" not in element, key
        assert element["qualifiers"][0]["type"] == PLACEHOLDER
        assert element["description"][0]["text"].startswith("Placeholder")


def test_unit_shell_filled_from_as_built() -> None:
    elements = _elements(_export("lamp", "built").to_jsonable())
    assert elements["AsBuilt/Status"]["value"] == "built"
    assert elements["AsBuilt/Program/ProgramId"]["value"] == "prog-0001"
    assert elements["AsBuilt/DeviceDid"]["value"] == DID
    assert elements["AsBuilt/BuiltAt"]["valueType"] == "xs:dateTime"
    assert "qualifiers" not in elements["AsBuilt/DeviceDid"]
    results = elements["AsBuilt/StationResults"]["value"]
    assert len(results) == 2
    first = {e["idShort"]: e for e in results[0]["value"]}
    assert first["Seconds"]["value"] == "55.5"
    values = [m["value"][1] for m in first["Measurements"]["value"]]
    assert [(v["value"], v["valueType"]) for v in values] == [
        ("1.25", "xs:decimal"),
        ("true", "xs:boolean"),
        ("A", "xs:string"),
    ]
    assert elements["Nameplate/DateOfManufacture"]["value"] == "2025-03-01"
    assert elements["Nameplate/YearOfConstruction"]["value"] == "2025"


# ---- refusals ----------------------------------------------------------------------------------


@pytest.fixture
def lamp_resolved() -> tuple[Product, Resolved]:
    product = _lamp()
    return product, _resolved(product)


@pytest.mark.parametrize("serial", ["", "has space", "-lead", "x" * 65, "a/b", "ok\n"])
def test_a_bad_serial_is_refused(lamp_resolved: tuple[Product, Resolved], serial: str) -> None:
    product, resolved = lamp_resolved
    with pytest.raises(ProductError, match="serial"):
        unit_shell(product, resolved, serial)


@pytest.mark.parametrize(
    ("as_built", "where"),
    [
        ({"colour": "red"}, "as_built.colour"),
        ({"built_at": "2025-03-01T10:00:00"}, "as_built.built_at"),
        ({"device_did": "not-a-did"}, "as_built.device_did"),
        ({"station_results": [{"station": "x"}]}, "as_built.station_results.0.passed"),
        ({"status": "done"}, "as_built.status"),
    ],
)
def test_bad_as_built_data_is_refused(
    lamp_resolved: tuple[Product, Resolved], as_built: dict[str, Any], where: str
) -> None:
    product, resolved = lamp_resolved
    with pytest.raises(ProductError) as info:
        unit_shell(product, resolved, "SN-1", as_built=as_built)
    assert [p[0] for p in info.value.problems] == [where]


def test_a_configuration_of_another_product_is_refused(
    lamp_resolved: tuple[Product, Resolved],
) -> None:
    _, resolved = lamp_resolved
    other = load_product(AWKWARD)
    with pytest.raises(ProductError, match=r"the configuration is of org\.example\.lamp"):
        unit_shell(other, resolved, "SN-1")


def test_writing_over_a_file_keeps_it_whole(tmp_path: Path) -> None:
    export = type_shell(_lamp())
    path = tmp_path / "lamp.json"
    path.write_text("old", encoding="utf-8")
    export.write_json(path)
    assert json.load(io.StringIO(path.read_text(encoding="utf-8"))) == export.to_jsonable()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lamp.json"]


def test_exports_are_deterministic() -> None:
    product = _lamp()
    assert type_shell(product).to_json() == type_shell(product).to_json()
    first = copy.deepcopy(_export("lamp", "built").to_jsonable())
    assert first == _export("lamp", "built").to_jsonable()
