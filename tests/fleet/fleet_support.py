"""A served e-bike world with helpers to publish software, register devices, assign
and run their agents: what the fleet tests share."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from liquidfab.fleet.agent import Agent, provision
from liquidfab.fleet.messages import ASSIGN, REGISTER_DEVICE, ROLLOUT
from liquidfab.fleet.service import OFFLINE_KEYS
from liquidfab.identity import SigningKey
from liquidfab.protocol import CONTENT_TYPE, sign_message

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ebike"
PRODUCT, HARDWARE = "com.voltwerk.trail", "mcu-a"


class Fleet:
    """The served world with helpers to publish, register, assign and run a device."""

    def __init__(self, folder: Path, node, client: TestClient, tmp: Path) -> None:
        self.folder, self.node, self.client, self.tmp = folder, node, client, tmp
        keys = node.fleet_repository.repository  # noqa: F841 - the world's repository
        self.keystore = (
            __import__("liquidfab.node.world", fromlist=["x"]).load_world(folder).keystore(folder)
        )
        self.maker = self.keystore.get("voltwerk")
        self.owner = self.keystore.get("ada")
        self.version = __import__("json").loads(client.get(f"/v1/products/{PRODUCT}").text)[
            "latest"
        ]

    def fetch(self, path: str) -> bytes | None:
        response = self.client.get(path)
        return response.content if response.status_code == 200 else None

    def send(self, message) -> dict:
        response = self.client.post(
            "/v1/messages", content=message.to_json(), headers={"content-type": CONTENT_TYPE}
        )
        return response.json()

    def publish(self, name: str, data: bytes, version: str, hardware: str = HARDWARE):
        custom = {"product": PRODUCT, "hardware": hardware, "version": version, "kind": "firmware"}
        return self.node.fleet_repository.publish(
            name, data, custom, targets_key=self.keystore.get(OFFLINE_KEYS[1])
        )

    def device(self, name: str = "bike", **agent) -> tuple[Path, SigningKey]:
        key = SigningKey.generate()
        data = {"did": key.did, "product": PRODUCT, "version": self.version,
                "owner": self.owner.did}  # fmt: skip
        assert "result" in self.send(sign_message(self.maker, REGISTER_DEVICE, data))
        folder = self.tmp / name
        provision(
            folder,
            device_seed=key.seed,
            director=self.node.did,
            product=PRODUCT,
            hardware=HARDWARE,
            root=self.fetch("/tuf/metadata/1.root.json"),
            factory_image=b"factory image",
            factory_version="1.0.0",
        )
        return folder, key

    def assign(self, device: SigningKey, info, **terms) -> dict:
        """Assign ``info`` to ``device`` (``terms``: mode, window)."""
        data = {"device": device.did, "target": info.name, "sha256": info.sha256,
                "length": info.length, "custom": dict(info.custom), **terms}  # fmt: skip
        return self.send(sign_message(self.maker, ASSIGN, data))

    def start_rollout(self, info, rollout: str = "r-1", **over) -> dict:
        """Start a rollout of ``info`` to every device of the product in two waves."""
        data = {
            "rollout": rollout,
            "name": "Trail firmware 1.1.0",
            "target": {"name": info.name, "sha256": info.sha256, "length": info.length,
                       "custom": dict(info.custom)},
            "filter": {"product": PRODUCT},
            "waves": [20, 100],
            "success_threshold": 1.0,
            "error_threshold": 0.3,
            "min_sample": 2,
            **over,
        }  # fmt: skip
        return self.send(sign_message(self.maker, ROLLOUT, data))

    def rollout(self, rollout: str = "r-1") -> dict:
        return self.client.get(f"/v1/rollouts/{rollout}").json()

    def agent(self, folder: Path, **kw) -> Agent:
        return Agent(folder, fetch=self.fetch, send=self.send, **kw)

    def twin(self, device: SigningKey) -> dict:
        return self.client.get(f"/v1/devices/{device.did}/twin").json()
