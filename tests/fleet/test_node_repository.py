"""The world's TUF repository served by the node, fed by `liquidfab fleet publish`, read by
python-tuf's client over the node's HTTP API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from tuf.api import exceptions
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface
from typer.testing import CliRunner

from liquidfab.cli import app
from liquidfab.fleet.repository import EXPIRY

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ebike"


class ClientFetcher(FetcherInterface):
    """Fetches through the node's HTTP API (an in-process test client)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def _fetch(self, url: str) -> Iterator[bytes]:
        response = self.client.get(url)
        if response.status_code != 200:
            raise exceptions.DownloadHTTPError(url, response.status_code)
        return iter([response.content])


def _device(client: TestClient, tmp_path: Path, root: bytes) -> Updater:
    (tmp_path / "device" / "metadata").mkdir(parents=True, exist_ok=True)
    (tmp_path / "device" / "downloads").mkdir(exist_ok=True)
    return Updater(
        str(tmp_path / "device" / "metadata"),
        "http://testserver/tuf/metadata/",
        str(tmp_path / "device" / "downloads"),
        "http://testserver/tuf/targets/",
        fetcher=ClientFetcher(client),
        bootstrap=root,
    )


def test_an_operator_publishes_and_a_device_fetches_through_the_node(served, tmp_path):
    folder, _, client = served
    image = tmp_path / "trail-fw-1.1.0.bin"
    image.write_bytes(b"\x7fELF firmware 1.1.0")
    args = ["fleet", "publish", str(image), "--product", "com.voltwerk.trail",
            "--hardware", "mcu-a", "--version", "1.1.0", "--world", str(folder)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "targets version 2" in result.output
    root = client.get("/tuf/metadata/1.root.json")
    assert root.status_code == 200
    device = _device(client, tmp_path, root.content)
    device.refresh()
    info = device.get_targetinfo("com.voltwerk.trail/trail-fw-1.1.0.bin")
    assert info.unrecognized_fields["custom"]["hardware"] == "mcu-a"
    assert Path(device.download_target(info)).read_bytes() == image.read_bytes()
    # the operator's offline keys are the world's, not the node's online ones
    signed = json.loads(root.content)["signed"]
    assert len(signed["roles"]["root"]["keyids"]) == 1
    assert signed["roles"]["targets"]["keyids"] != signed["roles"]["timestamp"]["keyids"]


def test_the_timestamp_is_re_signed_when_a_device_reads_an_old_one(served, monkeypatch):
    _, _, client = served
    first = json.loads(client.get("/tuf/metadata/timestamp.json").content)["signed"]
    # half its life gone: the next read re-signs it
    monkeypatch.setitem(EXPIRY, "timestamp", timedelta(days=4))
    second = json.loads(client.get("/tuf/metadata/timestamp.json").content)["signed"]
    assert second["version"] == first["version"] + 1
    assert second["meta"] == first["meta"]


def test_paths_outside_the_repository_and_missing_files_are_404(served):
    _, _, client = served
    for path in (
        "/tuf/metadata/9.root.json",
        "/tuf/targets/%2e%2e/%2e%2e/world.yaml",
        "/tuf/targets/nothing.bin",
    ):
        response = client.get(path)
        assert response.status_code == 404, path


def test_publishing_with_bad_input_is_a_clear_error(served, tmp_path):
    folder, _, _ = served
    args = ["fleet", "publish", str(tmp_path / "missing.bin"), "--product", "p",
            "--hardware", "h", "--version", "1", "--world", str(folder)]  # fmt: skip
    assert CliRunner().invoke(app, args).exit_code == 1
    image = tmp_path / "x.bin"
    image.write_bytes(b"x")
    args[2] = str(image)
    bad = CliRunner().invoke(app, [*args, "--kind", "virus"])
    assert bad.exit_code == 1 and "kind" in bad.output
