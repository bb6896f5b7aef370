"""The ``liquidfab`` command: keys, schema, send, and ``up`` as a real process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from liquidfab.cli import app
from liquidfab.identity import Keystore
from liquidfab.node.world import load_world
from liquidfab.protocol import CONTENT_TYPE, sign_message
from liquidfab.protocol.participants import REGISTER, UPDATE

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ebike"
runner = CliRunner()


def invoke(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input, catch_exceptions=False)


# keys ---------------------------------------------------------------------------


def test_keys_new_list_show(tmp_path):
    store = tmp_path / "keys"
    made = invoke("keys", "new", "voltwerk", "-k", str(store))
    assert made.exit_code == 0, made.output
    did = Keystore(store).get("voltwerk").did
    assert did in made.output

    listed = invoke("keys", "list", "-k", str(store))
    assert listed.exit_code == 0 and "voltwerk" in listed.output
    assert did in listed.output, "the did is printed whole, even in 80 columns"

    shown = invoke("keys", "show", "voltwerk", "-k", str(store))
    assert shown.exit_code == 0
    info = json.loads(shown.output)
    assert info["did"] == did and len(info["public_key_hex"]) == 64

    path = Keystore(store).info("voltwerk").path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = json.loads(path.read_text())
    secret_values = [v for v in secret.values() if isinstance(v, str) and len(v) >= 32]
    assert secret_values, "the key file holds its secret"
    for output in (made.output, listed.output, shown.output):
        for value in secret_values:
            if value != did:
                assert value not in output


def test_keys_refusals_are_clear_errors(tmp_path):
    store = tmp_path / "keys"
    assert invoke("keys", "new", "a", "-k", str(store)).exit_code == 0
    again = invoke("keys", "new", "a", "-k", str(store))
    assert again.exit_code == 1 and "error" in again.output
    missing = invoke("keys", "show", "nobody", "-k", str(store))
    assert missing.exit_code == 1 and "nobody" in missing.output
    bad_name = invoke("keys", "new", "../escape", "-k", str(store))
    assert bad_name.exit_code == 1
    assert not (tmp_path / "escape").exists()


# schema -------------------------------------------------------------------------


def test_schema_writes_every_message_type_and_openapi(tmp_path):
    result = invoke("schema", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    names = {p.name for p in tmp_path.iterdir()}
    assert {
        "envelope.schema.json",
        "settlement-leg.schema.json",
        f"{REGISTER}.schema.json",
        f"{UPDATE}.schema.json",
        "openapi.json",
    } <= names
    openapi = json.loads((tmp_path / "openapi.json").read_text())
    assert "/v1/messages" in openapi["paths"]
    register = json.loads((tmp_path / f"{REGISTER}.schema.json").read_text())
    assert "role" in register["properties"]


# up + send, as a person runs them -----------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def running_world(tmp_path_factory):
    """``liquidfab up`` in a subprocess on a copy of the example world."""
    world = tmp_path_factory.mktemp("world")
    shutil.copy(EXAMPLE / "world.yaml", world / "world.yaml")
    shutil.copytree(EXAMPLE / "messages", world / "messages")
    shutil.copytree(EXAMPLE / "apps", world / "apps")
    shutil.copy(EXAMPLE / "product.yaml", world / "product.yaml")
    shutil.copy(EXAMPLE / "factory.yaml", world / "factory.yaml")
    port = _free_port()
    exe = Path(sys.executable).with_name("liquidfab")
    proc = subprocess.Popen(
        [str(exe), "up", "--world", str(world), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"liquidfab up did not start:\n{proc.communicate()[0]}")
        time.sleep(0.1)
    yield world, url, proc
    proc.terminate()
    proc.wait(timeout=10)


def test_up_serves_the_world(running_world):
    world, url, _ = running_world
    names = [p["display_name"] for p in httpx.get(f"{url}/v1/participants").json()]
    assert "Voltwerk Bikes" in names and "Ada Rider" in names
    assert len(names) == 9  # the world's eight participants and the node itself
    landing = httpx.get(url + "/")
    assert landing.status_code == 200 and "Voltwerk Bikes" in landing.text
    assert httpx.get(f"{url}/openapi.json").json()["paths"]["/v1/messages"]
    assert httpx.get(f"{url}/.well-known/liquidfab").json()["protocol"] == "liquidfab"
    made = {info.name for info in Keystore(world / "keys").list()}
    assert {"operator", "voltwerk", "ada", "node"} <= made


@pytest.mark.parametrize("message_id", ["%2F", "a/b?c#d", "caf\u00e9 \u2713", ".", ".."])
def test_any_id_reads_back_from_its_location(running_world, message_id):
    world, url, _ = running_world
    ada = Keystore(world / "keys").get("ada")
    message = sign_message(ada, UPDATE, {"did": ada.did, "display_name": "Ada"}, id=message_id)
    response = httpx.post(
        f"{url}/v1/messages", content=message.to_json(), headers={"content-type": CONTENT_TYPE}
    )
    assert response.status_code == 201, response.text
    location = response.headers["location"]
    assert location.isascii() and " " not in location
    stored = httpx.get(url + location)
    assert stored.status_code == 200, stored.text
    assert stored.json()["message"] == message.to_dict()


def test_send_signs_and_posts_then_a_retry_is_a_duplicate(running_world):
    world, url, _ = running_world
    file = world / "messages" / "ada-update.json"
    args = ("send", str(file), "--key", "ada", "-k", str(world / "keys"), "--node", url)
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    receipt = json.loads(first.output)
    assert receipt["status"] == "accepted" and receipt["type"] == UPDATE
    ada = Keystore(world / "keys").get("ada").did
    assert httpx.get(f"{url}/v1/participants/{ada}").json()["display_name"] == (
        "Ada Rider (Berlin)"
    )


def test_send_reports_refusals_with_exit_code_2(running_world, tmp_path):
    world, url, _ = running_world
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": UPDATE, "data": {"did": "{signer}", "nick": "x"}}))
    result = invoke("send", str(bad), "--key", "ada", "-k", str(world / "keys"), "--node", url)
    assert result.exit_code == 2
    assert json.loads(result.output)["code"] == "schema-invalid"


def test_send_bad_input_is_a_clear_error(tmp_path):
    store = tmp_path / "keys"
    invoke("keys", "new", "k", "-k", str(store))
    missing = invoke("send", str(tmp_path / "nope.json"), "--key", "k", "-k", str(store))
    assert missing.exit_code == 1 and "cannot read" in missing.output
    not_json = tmp_path / "x.json"
    not_json.write_text("{not json")
    assert invoke("send", str(not_json), "--key", "k", "-k", str(store)).exit_code == 1
    no_type = tmp_path / "y.json"
    no_type.write_text("[1, 2]")
    assert invoke("send", str(no_type), "--key", "k", "-k", str(store)).exit_code == 1
    unreachable = tmp_path / "z.json"
    unreachable.write_text(json.dumps({"type": UPDATE, "data": {}}))
    dead = f"http://127.0.0.1:{_free_port()}"
    result = invoke("send", str(unreachable), "--key", "k", "-k", str(store), "--node", dead)
    assert result.exit_code == 1 and "cannot reach" in result.output


def test_up_refuses_a_folder_without_a_world(tmp_path):
    result = invoke("up", "--world", str(tmp_path))
    assert result.exit_code == 1 and "world.yaml" in result.output


# ledger -------------------------------------------------------------------------


def test_up_shows_the_ledger_with_a_funded_wallet_for_everyone(running_world):
    world, url, _ = running_world
    page = httpx.get(f"{url}/ledger")
    assert page.status_code == 200
    assert "The chain and every balance verify" in page.text
    for name in ("Voltwerk Bikes", "CellCo Batteries", "Ada Rider", "Trailcraft Apps"):
        assert name in page.text
    keys = Keystore(world / "keys")
    funds = {p.key: p.funds for p in load_world(world).participants}
    for name in ("operator", "voltwerk", "kraftmotor", "cellco", "alurahmen", "trailcraft", "ada"):
        account = httpx.get(f"{url}/v1/ledger/accounts/{keys.get(name).did}/wallet").json()
        assert account["balance"] == str(int(funds[name] * 10**6)), name  # world.yaml's funds
    assert funds["trailcraft"] == 1000 and funds["voltwerk"] > 1000  # the default, and capital


def test_ledger_mint_verify_balances_history(running_world):
    world, url, _ = running_world
    keys = Keystore(world / "keys")
    wallet = f"{keys.get('ada').did}/wallet"
    before = int(httpx.get(f"{url}/v1/ledger/accounts/{wallet}").json()["balance"])
    args = ("ledger", "mint", wallet, "2.5", "--key", "operator", "-k", str(world / "keys"))
    minted = invoke(*args, "--node", url)
    assert minted.exit_code == 0, minted.output
    after = int(httpx.get(f"{url}/v1/ledger/accounts/{wallet}").json()["balance"])
    assert after - before == 2_500_000
    refused = invoke(
        "ledger", "mint", wallet, "1", "--key", "ada", "-k", str(world / "keys"), "--node", url
    )
    assert refused.exit_code == 2 and json.loads(refused.output)["code"] == "unauthorized"
    verified = invoke("ledger", "verify", "--world", str(world))
    assert verified.exit_code == 0, verified.output
    assert "the chain and every balance verify" in verified.output
    balances = invoke("ledger", "balances", "--world", str(world))
    assert "Ada Rider" in balances.output and "LQD" in balances.output
    history = invoke("ledger", "history", wallet, "--world", str(world))
    assert history.exit_code == 0 and "mint" in history.output and "+2500000" in history.output


def test_ledger_verify_names_a_tampered_transfer(tmp_path):
    import sqlite3

    from liquidfab.node.world import default_db_url, open_world_node

    world = tmp_path / "world"
    shutil.copytree(EXAMPLE, world, ignore=shutil.ignore_patterns("keys", "state"))
    open_world_node(world).close()
    assert invoke("ledger", "verify", "--world", str(world)).exit_code == 0
    with sqlite3.connect(default_db_url(world)[len("sqlite:///") :]) as conn:
        conn.execute(
            "UPDATE transfers SET amount = amount + 1 "
            "WHERE rowid = (SELECT MAX(rowid) FROM transfers)"
        )
    result = runner.invoke(app, ["ledger", "verify", "--world", str(world)])
    assert result.exit_code == 1
    assert "chain row" in result.output and "does not match the events" in result.output
    missing = runner.invoke(app, ["ledger", "verify", "--world", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "no database" in missing.output


# product --------------------------------------------------------------------------

EBIKE = EXAMPLE / "product.yaml"
LAMP = ROOT / "tests" / "product" / "lamp.yaml"


def test_product_validate_reports_sizes_and_variants():
    result = invoke("product", "validate", str(EBIKE), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["valid"] is True and summary["options"] >= 15
    assert summary["suppliers"] == 3 and summary["stations"] == 6
    assert (
        summary["count_exact"] is True and 0 < summary["valid_variants"] < summary["combinations"]
    )


def test_product_validate_names_file_line_and_path(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(LAMP.read_text().replace('rule: "heat <= 10"', 'rule: "heat <= lumens"'))
    result = invoke("product", "validate", str(bad))
    assert result.exit_code == 1
    line = 1 + LAMP.read_text().splitlines().index('    rule: "heat <= 10"')
    assert f"{bad}:{line}: constraints[0].rule: unknown name 'lumens'" in result.output


def test_product_validate_reports_contradictions(tmp_path):
    bad = tmp_path / "never.yaml"
    text = LAMP.read_text().replace(
        "constraints:\n",
        "constraints:\n  - {id: never, message: No arm is that long., rule: 'arm_cm > 60'}\n",
    )
    bad.write_text(text)
    result = invoke("product", "validate", str(bad))
    assert result.exit_code == 1
    assert "contradict" in result.output and "never" in result.output


def test_product_configure_explain_and_variants():
    done = invoke("product", "configure", str(LAMP), "shade=glass", "--json")
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    assert data["resolved"]["choices"]["shade"] == "glass" and data["optimal"] is True
    conflict = invoke("product", "explain", str(LAMP), "shade=glass", "colour=brass")
    assert conflict.exit_code == 1 and "Not a valid configuration" in conflict.output
    price = invoke(
        "product",
        "explain",
        str(LAMP),
        *(f"{k}={v}" for k, v in data["resolved"]["choices"].items()),
    )
    assert price.exit_code == 0 and "Glass shade" in price.output
    count = invoke("product", "variants", str(LAMP), "--json")
    assert count.exit_code == 0 and json.loads(count.output)["exact"] is True
    bad = invoke("product", "configure", str(LAMP), "shade=plastic")
    assert bad.exit_code == 1 and "plastic" in bad.output


def test_product_export_aas_writes_verified_files(tmp_path):
    out = tmp_path / "ebike.aasx"
    result = invoke("product", "export-aas", str(EBIKE), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000 and "0 errors" in result.output
    unit = tmp_path / "unit.json"
    result = invoke(
        "product",
        "export-aas",
        str(EBIKE),
        "--out",
        str(unit),
        "--unit",
        "frame_size=L",
        "--serial",
        "VW-000042",
    )
    assert result.exit_code == 0, result.output
    assert "VW-000042" in unit.read_text()


def test_product_value_prints_the_crossover_and_writes_the_chart(tmp_path):
    chart = tmp_path / "value.png"
    result = invoke("product", "value", str(EBIKE), "--chart", str(chart))
    assert result.exit_code == 0, result.output
    assert "passes hardware margin in month" in result.output
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    never = invoke("product", "value", str(EBIKE), "--chart", str(chart), "--life-months", "12")
    assert "does not pass" in never.output


def test_product_publish_to_the_running_world(running_world, tmp_path):
    world, url, _ = running_world
    listed = httpx.get(f"{url}/v1/products").json()
    assert [p["id"] for p in listed] == ["com.voltwerk.trail"]
    keys = str(world / "keys")
    result = invoke("product", "publish", str(LAMP), "--key", "voltwerk", "--node", url, "-k", keys)
    assert result.exit_code == 0, result.output
    again = invoke("product", "publish", str(EBIKE), "--key", "voltwerk", "--node", url, "-k", keys)
    assert again.exit_code == 2  # the file names another manufacturer did than the world's key
    page = httpx.get(f"{url}/products/com.voltwerk.trail")
    assert page.status_code == 200 and "Configure" in page.text


def test_factory_publish_to_the_running_world(running_world, tmp_path):
    world, url, _ = running_world
    keys = str(world / "keys")
    listed = httpx.get(f"{url}/v1/factories").json()
    assert [f["id"] for f in listed] == ["com.voltwerk.trail.line-a"]  # from world.yaml
    layout = EXAMPLE / "factory.yaml"
    same = invoke("factory", "publish", str(layout), "--key", "voltwerk", "--node", url, "-k", keys)
    assert same.exit_code == 0, same.output
    assert '"exists"' in same.output  # the world published this very version at start-up
    changed = tmp_path / "factory.yaml"
    text = layout.read_text().replace("version: 1.0.0", "version: 1.1.0")
    changed.write_text(text.replace("buffer: 6", "buffer: 8"))
    shutil.copy(EBIKE, tmp_path / "product.yaml")
    new = invoke("factory", "publish", str(changed), "--key", "voltwerk", "--node", url, "-k", keys)
    assert new.exit_code == 0, new.output
    versions = httpx.get(f"{url}/v1/factories/com.voltwerk.trail.line-a").json()
    assert "1.1.0" in str(versions)
    other = invoke("factory", "publish", str(changed), "--key", "ada", "--node", url, "-k", keys)
    assert other.exit_code == 2  # the layout id belongs to its first publisher
    assert "unauthorized" in other.output
    page = httpx.get(f"{url}/factories/com.voltwerk.trail.line-a/1.1.0", timeout=60)
    assert page.status_code == 200 and "<svg" in page.text
