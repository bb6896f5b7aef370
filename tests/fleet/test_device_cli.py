"""A produced unit becomes a served device: `liquidfab produce --bundles`, registration by
serial, `liquidfab fleet publish`, an assignment, then `liquidfab device provision` and
`liquidfab device run` against the node over real HTTP."""

from __future__ import annotations

import hashlib
import json
import shutil

import httpx
from typer.testing import CliRunner

from browser_support import EXAMPLE_WORLD, serve_world
from liquidfab.cli import app
from liquidfab.fleet.messages import ASSIGN, REGISTER_DEVICE
from liquidfab.protocol import CONTENT_TYPE, sign_message

runner = CliRunner()


def _post(url: str, message) -> dict:
    response = httpx.post(
        f"{url}/v1/messages", content=message.to_json(), headers={"content-type": CONTENT_TYPE}
    )
    assert response.status_code == 201, response.text
    return response.json()["result"]


def test_a_produced_unit_is_provisioned_registered_and_updated_over_the_air(tmp_path):
    source = tmp_path / "source" / "ebike"
    shutil.copytree(EXAMPLE_WORLD, source, ignore=shutil.ignore_patterns("keys", "state"))
    bundles = tmp_path / "bundles"
    made = runner.invoke(
        app,
        [
            "produce",
            "--world",
            str(source),
            "--orders",
            "1",
            "--batch",
            "1",
            "--faults",
            "0",
            "--bundles",
            str(bundles),
        ],
    )
    assert made.exit_code == 0, made.output
    (bundle,) = bundles.glob("*.json")
    unit = json.loads(bundle.read_text())
    with serve_world(source, tmp_path / "served", fresh=False) as world:
        keys = world.keystore
        maker = keys.get("voltwerk")
        registered = {"did": unit["device_did"], "product": unit["product"],
                      "version": unit["version"], "serial": unit["serial"],
                      "attributes": {"hardware": "mcu-a"}}  # fmt: skip
        _post(world.url, sign_message(maker, REGISTER_DEVICE, registered))
        image = tmp_path / "fw-1.1.0.bin"
        image.write_bytes(b"trail firmware 1.1.0")
        published = runner.invoke(
            app,
            [
                "fleet",
                "publish",
                str(image),
                "--product",
                unit["product"],
                "--hardware",
                "mcu-a",
                "--version",
                "1.1.0",
                "--world",
                str(world.folder),
            ],
        )
        assert published.exit_code == 0, published.output
        state = tmp_path / "device"
        provisioned = runner.invoke(
            app,
            [
                "device",
                "provision",
                str(bundle),
                "--state",
                str(state),
                "--hardware",
                "mcu-a",
                "--node",
                world.url,
            ],
        )
        assert provisioned.exit_code == 0, provisioned.output
        idle = runner.invoke(app, ["device", "run", "--state", str(state), "--node",
                                   world.url, "--once"])  # fmt: skip
        assert idle.exit_code == 0 and "IDLE" in idle.output, idle.output
        target = f"{unit['product']}/fw-1.1.0.bin"
        assign = {"device": unit["device_did"], "target": target,
                  "sha256": hashlib.sha256(image.read_bytes()).hexdigest(),
                  "length": image.stat().st_size,
                  "custom": {"product": unit["product"], "hardware": "mcu-a",
                             "version": "1.1.0", "kind": "firmware"}}  # fmt: skip
        _post(world.url, sign_message(maker, ASSIGN, assign))
        run = runner.invoke(app, ["device", "run", "--state", str(state), "--node",
                                  world.url, "--once"])  # fmt: skip
        assert run.exit_code == 0 and "COMMITTED: running 1.1.0 in slot b" in run.output, run.output
        twin = httpx.get(f"{world.url}/v1/devices/{unit['device_did']}/twin").json()
        assert twin["reported"]["firmware"] == "1.1.0"
        assert (state / "slots" / "b" / "image").read_bytes() == image.read_bytes()
    bad = runner.invoke(app, ["device", "run", "--state", str(tmp_path / "nothing"), "--once"])
    assert bad.exit_code == 1 and "not a provisioned device" in bad.output
