"""The fleet dashboard over HTTP, on both stores: the fleet, a device, rollouts.

Everything is built by signed messages, as the fleet's participants make it: the lamp
maker registers six devices directly and one built unit, devices report their twins with
their own keys, the owner sets a desired state, and the maker starts two rollouts of a
firmware target written out by hand (the node does not read the repository to start
one). Two EU devices roll the firmware back, which pauses the EU rollout; one US device
runs it.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from pathlib import Path

import pytest

from liquidfab.fleet.messages import (
    REGISTER_DEVICE,
    ROLLOUT,
    ROLLOUT_CONTROL,
    TWIN_DESIRED,
    TWIN_REPORTED,
)
from liquidfab.identity import SigningKey
from liquidfab.node import pages_fleet
from liquidfab.product import load_product
from liquidfab.protocol import sign_message
from support import built_lamp_unit, funded, post

LAMP = Path(__file__).parents[1] / "product" / "lamp.yaml"
PRODUCT, VERSION = "org.example.lamp", "1.0.0"
FIRMWARE = b"lamp firmware 1.1.0"
TARGET = {
    "name": "lamp/fw-1.1.0.bin",
    "sha256": hashlib.sha256(FIRMWARE).hexdigest(),
    "length": len(FIRMWARE),
    "custom": {"product": PRODUCT, "hardware": "mcu-a", "version": "1.1.0", "kind": "firmware"},
}
T = TARGET["name"]
ROLLED_BACK = {"attempted": T, "phase": "ROLLED_BACK", "error": f"{T} failed its health check"}
SUCCEEDED = {"firmware": "1.1.0", "target": T, "attempted": T, "phase": "COMMITTED"}


def _ok(response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()["result"]


def _report(client, device: SigningKey, state: dict, kind: str = TWIN_REPORTED, key=None) -> None:
    version = client.get(f"/v1/devices/{device.did}/twin").json()["twin_version"]
    data = {"device": device.did, "version": version, "state": state}
    _ok(post(client, sign_message(key or device, kind, data)))


def _rollout(client, maker: SigningKey, rollout: str, name: str, region: str, **over) -> dict:
    data = {"rollout": rollout, "name": name, "target": TARGET,
            "filter": {"product": PRODUCT, "attributes": {"region": region}},
            "waves": [50, 100], "success_threshold": 1.0, "error_threshold": 0.3,
            "min_sample": 2, **over}  # fmt: skip
    return _ok(post(client, sign_message(maker, ROLLOUT, data)))


@pytest.fixture
def fleet(node, client, operator_key) -> dict:
    node.register(operator_key, "operator", "Operator")
    maker = funded(node, operator_key, "manufacturer", "Lamp Maker", 0)
    ada = funded(node, operator_key, "owner", "Owner Ada", 1_000_000_000)
    bo = funded(node, operator_key, "owner", "Owner Bo", 0)
    node.publish_product(maker, load_product(LAMP))
    keys = sorted((SigningKey.generate() for _ in range(6)), key=lambda k: k.did)
    eu, us = keys[:4], keys[4:]
    for i, key in enumerate(keys):
        region = "eu" if key in eu else "us"
        payload = {"did": key.did, "product": PRODUCT, "version": VERSION,
                   "owner": (ada if i % 2 == 0 else bo).did,
                   "attributes": {"region": region, "hardware": "mcu-a"}}  # fmt: skip
        _ok(post(client, sign_message(maker, REGISTER_DEVICE, payload)))
    serial, unit_did = built_lamp_unit(client, maker, ada)
    unit = {"did": unit_did, "product": PRODUCT, "version": VERSION, "serial": serial,
            "attributes": {"region": "us"}}  # fmt: skip
    _ok(post(client, sign_message(maker, REGISTER_DEVICE, unit)))
    for key in [*eu[:3], *us]:  # eu[3] and the unit never report
        _report(client, key, {"firmware": "1.0.0", "phase": "COMMITTED"})
    desired = {"firmware": "1.1.0", "lights": {"auto": True, "level": 3}}
    _report(client, eu[0], desired, TWIN_DESIRED, key=ada)
    # EU: wave 1 is eu[0] and eu[1]; both roll back, which pauses the rollout.
    started = _rollout(client, maker, "r-eu", "Lamp firmware, Europe", "eu")
    assert started["progress"] == {"0": {"assigned": 2}}
    for key in eu[:2]:
        _report(client, key, ROLLED_BACK)
    # US: one wave, all three devices; one of them runs the target so far.
    window = {"start": "02:00", "minutes": 90, "days": ["sat", "sun"], "timezone": "America/Denver"}
    _rollout(client, maker, "r-us", "Lamp firmware, America", "us", waves=[100], mode="soft",
             window=window)  # fmt: skip
    _report(client, us[0], SUCCEEDED)
    return {"maker": maker, "eu": eu, "us": us, "serial": serial, "unit": unit_did}


def _text(response) -> str:
    """The page as a person reads it: tags dropped, entities decoded, spaces collapsed."""
    assert response.headers["content-type"].startswith("text/html"), response.headers
    body = re.sub(r"<script.*?</script>|<style.*?</style>", " ", response.text, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def _rows(response, table: str) -> list[str]:
    """The text of each body row of the table with id ``table``."""
    found = re.search(rf'<table[^>]* id="{table}">(.*?)</table>', response.text, flags=re.S)
    assert found, f"no table {table}"
    body = found.group(1).split("<tbody>", 1)[1]
    rows = re.findall(r"<tr.*?</tr>", body, flags=re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", r)).split()) for r in rows]


def _cards(response, section: str, attr: str) -> dict[str, str]:
    """``{data-<attr>: figure}`` of the cards under the element with id ``section``."""
    assert f'id="{section}"' in response.text, f"no cards {section}"
    chunk = response.text.split(f'id="{section}"', 1)[1].split("<h2", 1)[0]
    pairs = re.findall(rf'data-{attr}="([^"]+)"><div class="n">([^<]*)<', chunk)
    return {html.unescape(k): v for k, v in pairs}


def _dids(response) -> list[str]:
    return re.findall(r'<tr data-device="([^"]+)">', response.text)


# --- the fleet -------------------------------------------------------------------------------


def test_fleet_page_counts_devices_versions_and_what_they_run(client, fleet):
    page = client.get("/fleet")
    assert page.status_code == 200
    assert re.search(r'data-testid="count-registered">7<', page.text)
    assert 'data-testid="count-matching"' not in page.text  # no filter, no second count
    assert _cards(page, "product-versions", "version") == {f"{PRODUCT}@{VERSION}": "7"}
    assert _cards(page, "running-versions", "firmware") == {"1.0.0": "4", "unknown": "2",
                                                            "1.1.0": "1"}  # fmt: skip
    eu, us = fleet["eu"], fleet["us"]
    every = sorted([k.did for k in eu + us] + [fleet["unit"]])
    assert _dids(page) == every
    rows = dict(zip(every, _rows(page, "device-list"), strict=True))
    assert f" {PRODUCT}@{VERSION} Owner Ada \u2013 1.0.0 ROLLED_BACK 3 " in rows[eu[0].did]
    assert " Owner Bo \u2013 unknown \u2013 0 " in rows[eu[3].did]  # never reported
    assert " 1.1.0 COMMITTED 2 " in rows[us[0].did]
    assert f" Owner Ada {fleet['serial']} unknown " in rows[fleet["unit"]]
    assert f'href="/units/{fleet["serial"]}"' in page.text
    # the did is shortened in the cell and whole in its title and link
    assert f'href="/fleet/{eu[0].did}" class="did" title="{eu[0].did}"' in page.text
    assert rows[eu[0].did].startswith(eu[0].did[:16] + "\u2026" + eu[0].did[-6:])
    assert 'href="/fleet">Fleet</a><a href="/rollouts">Rollouts</a>' in page.text  # the nav


def test_fleet_page_filters_by_product_version_and_attributes(client, fleet):
    eu = sorted(k.did for k in fleet["eu"])
    page = client.get("/fleet", params={"attr": "region=eu"})
    assert re.search(r'data-testid="count-matching">4<', page.text)
    assert re.search(r'data-testid="count-registered">7<', page.text)
    assert _dids(page) == eu
    assert _cards(page, "running-versions", "firmware") == {"1.0.0": "3", "unknown": "1"}
    assert 'name="attr" value="region=eu"' in page.text  # the form keeps the filter
    # the form's empty fields are no filter; all attributes must match
    both = client.get("/fleet?product=&version=&attr=region%3Dus&attr=hardware%3Dmcu-a&attr=")
    assert _dids(both) == sorted(k.did for k in fleet["us"])  # the unit has no hardware
    by_version = client.get("/fleet", params={"product": PRODUCT, "version": VERSION})
    assert len(_dids(by_version)) == 7
    none = client.get("/fleet", params={"product": "org.example.other"})
    assert _rows(none, "device-list") == ["No device matches the filter."]
    assert re.search(r'data-testid="count-matching">0<', none.text)
    bad = client.get("/fleet", params={"attr": "region eu"})
    assert bad.status_code == 400
    assert "An attribute filter is name=value, for example region=eu" in _text(bad)
    too_many = client.get("/fleet", params=[("attr", f"a{i}=1") for i in range(11)])
    assert too_many.status_code == 422


def test_fleet_page_pages_in_did_order_and_keeps_the_filter(client, fleet, monkeypatch):
    monkeypatch.setattr(pages_fleet, "PAGE", 3)
    every = sorted([k.did for k in fleet["eu"] + fleet["us"]] + [fleet["unit"]])
    seen: list[str] = []
    url = "/fleet"
    for _ in range(3):
        page = client.get(url)
        seen += _dids(page)
        later = re.search(r'id="later" href="([^"]+)"', page.text)
        if later is None:
            break
        url = html.unescape(later.group(1))
    assert seen == every and len(_dids(page)) == 1
    assert 'href="/fleet">First</a>' in page.text
    eu = client.get("/fleet", params={"attr": "region=eu"})
    later = re.search(r'id="later" href="([^"]+)"', eu.text)
    assert later and "attr=region%3Deu" in later.group(1)
    rest = client.get(html.unescape(later.group(1)))
    assert _dids(rest) == sorted(k.did for k in fleet["eu"])[3:]


def test_an_empty_fleet_says_how_devices_come(client, node):
    page = client.get("/fleet")
    assert re.search(r'data-testid="count-registered">0<', page.text)
    assert "No device is registered yet" in _text(page)
    assert "No rollout yet" in _text(client.get("/rollouts"))


# --- a device --------------------------------------------------------------------------------


def test_device_page_shows_its_facts_twin_assignment_and_rollouts(client, fleet):
    device = fleet["eu"][0]
    page = client.get(f"/fleet/{device.did}")
    assert page.status_code == 200
    facts = _rows(page, "device-facts")
    assert facts[0] == f"Did {device.did}"
    assert facts[1] == f"Product {PRODUCT}@{VERSION}"
    assert facts[2].startswith("Manufacturer Lamp Maker did:key:")
    assert facts[3].startswith("Owner Owner Ada did:key:")
    assert facts[4].startswith("Serial none")
    assert facts[5] == "Attributes hardware=mcu-a , region=eu"  # two codes, a comma between
    assert _rows(page, "twin-desired") == ["firmware 1.1.0", 'lights {"auto":true,"level":3}']
    assert _rows(page, "twin-reported") == [
        f"attempted {T}",
        f"error {T} failed its health check",
        "firmware 1.0.0",
        "phase ROLLED_BACK",
    ]
    assert _rows(page, "twin-delta") == ["firmware 1.1.0", 'lights {"auto":true,"level":3}']
    assignment = _rows(page, "assignment")
    assert assignment[0] == f"Target {T} version 1.1.0"
    assert assignment[1] == "Counter 1"
    assert assignment[2] == f"SHA-256 {TARGET['sha256'][:12]}\u2026 {len(FIRMWARE)} bytes"
    assert assignment[3].endswith("by rollout r-eu")
    [rollout] = _rows(page, "device-rollouts")
    assert rollout.startswith(f"Lamp firmware, Europe r-eu {T} 1 failed paused ")
    assert 'href="/rollouts/r-eu"' in page.text


def test_a_device_without_assignment_and_abuilt_lamp_unit(client, fleet):
    quiet = client.get(f"/fleet/{fleet['eu'][3].did}")
    assert "No assignment" in _text(quiet)
    assert _rows(quiet, "device-rollouts") == ["The device is in no rollout."]
    assert _rows(quiet, "twin-reported") == ["Nothing reported yet."]
    assert _rows(quiet, "twin-delta") == ["Nothing: the device reports all that is desired."]
    unit = client.get(f"/fleet/{fleet['unit']}")
    assert _rows(unit, "device-facts")[4] == f"Serial {fleet['serial']}"
    assert f'href="/units/{fleet["serial"]}" id="unit-link"' in unit.text
    [rollout] = _rows(unit, "device-rollouts")
    assert " 1 assigned running " in rollout


def test_an_unknown_device_is_a_404_page(client, fleet):
    stranger = SigningKey.generate().did
    page = client.get(f"/fleet/{stranger}")
    assert page.status_code == 404 and f"This node knows no device {stranger}" in _text(page)
    assert client.get("/fleet/" + "x" * 300).status_code == 404


# --- rollouts --------------------------------------------------------------------------------


def test_rollouts_page_lists_state_wave_and_progress(client, fleet):
    page = client.get("/rollouts")
    assert page.status_code == 200
    rows = _rows(page, "rollout-list")
    assert [r.split(" r-")[0] for r in rows] == ["Lamp firmware, America", "Lamp firmware, Europe"]
    assert rows[0].startswith(f"Lamp firmware, America r-us {T} 1.1.0 running 1 of 1 "
                              "3 assigned · 1 succeeded · 0 failed ")  # fmt: skip
    assert rows[1].startswith(f"Lamp firmware, Europe r-eu {T} 1.1.0 paused 1 of 2 "
                              "2 assigned · 0 succeeded · 2 failed ")  # fmt: skip
    assert 'class="state state-paused"' in page.text and 'class="state state-running"' in page.text
    bars = re.findall(r'<div class="stack"[^>]*>(.*?)</div>', page.text, flags=re.S)
    segments = [re.findall(r'seg-(\w+)" style="width:([\d.]+)%', b) for b in bars]
    assert segments == [
        [("succeeded", "33.33"), ("pending", "66.67")],
        [("failed", "100.0")],
    ]


def test_a_rollout_that_paused_itself_says_why_wave_by_wave(client, fleet):
    page = client.get("/rollouts/r-eu")
    assert page.status_code == 200
    text = _text(page)
    assert "Paused by itself: 2 of 2 finished devices failed, above the error threshold 30%" in text
    assert 'role="alert"' in page.text
    assert _rows(page, "waves") == [
        "1 up to 50 % · current 2 2 0 2",
        "2 up to 100 % · waiting 2 0 0 0",
    ]
    bars = re.findall(r'<div class="stack"[^>]*>(.*?)</div>', page.text, flags=re.S)
    assert [re.findall(r"seg-(\w+)", b) for b in bars] == [["failed"], []]
    settings = dict(r.split(" ", 1) for r in _rows(page, "settings") if " " in r)
    assert settings["Target"] == f"{T} version 1.1.0, firmware, for mcu-a"
    assert settings["Filter"] == f"{PRODUCT} where region=eu"
    assert settings["Waves"] == "50 % → 100 % of the devices, cumulative"
    assert "Success threshold 100%" in text and "Error threshold 30%" in text
    assert "Minimum sample 2" in text and "Rate cap none" in text
    failed = _rows(page, "failed")
    assert len(failed) == 2 and all(f"ROLLED_BACK {T} failed its health check" in r for r in failed)
    assert "This one can now resume or abort" in text


def test_the_control_message_the_page_shows_works(client, fleet):
    page = client.get("/rollouts/r-us")
    assert "This one can now pause or abort" in _text(page)
    example = re.search(r'<pre id="control-example"><code>(.*?)</code></pre>', page.text, re.S)
    assert example
    spec = json.loads(html.unescape(example.group(1)))
    assert spec == {"type": ROLLOUT_CONTROL, "data": {"rollout": "r-us", "action": "pause"}}
    command = re.search(r'<pre id="control-command"><code>(.*?)</code>', page.text, re.S)
    assert command and command.group(1).startswith("liquidfab send pause.json --key KEY ")
    # what `liquidfab send` would do with that file, signed by the maker
    _ok(post(client, sign_message(fleet["maker"], spec["type"], spec["data"])))
    paused = _text(client.get("/rollouts/r-us"))
    assert "Paused by its manufacturer or an operator" in paused
    assert "Paused by itself" not in paused


def test_a_rollout_page_says_its_mode_and_window(client, fleet):
    rows = _rows(client.get("/rollouts/r-us"), "settings")
    assert "Mode soft each device waits for its owner's consent" in rows
    assert (
        "Maintenance window 02:00 for 90 min, sat, sun (America/Denver) installs wait for it; "
        "downloads do not"
    ) in rows
    eu = _rows(client.get("/rollouts/r-eu"), "settings")
    assert "Mode forced devices install as soon as they may" in eu
    assert "Maintenance window none installs at any time" in eu


def test_an_unknown_rollout_is_a_404_page(client, fleet):
    page = client.get("/rollouts/nope")
    assert page.status_code == 404 and "No rollout nope" in _text(page)
    assert client.get("/rollouts/" + "x" * 300).status_code == 404
