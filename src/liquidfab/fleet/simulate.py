"""The fleet simulation: thousands of device agents in one process against a real node.

``simulate`` copies a world, starts its node as a separate process (``liquidfab up``,
over HTTP, optionally with the MQTT bridge), registers and provisions the devices,
publishes a firmware release into the world's TUF repository and starts a rollout in
waves. Each device is the real agent (``fleet.agent``) on its own state folder, driven
by an asyncio task that polls at the interval the node sets, or wakes on the node's
MQTT notice. The agents' blocking work (HTTP, TUF, files) runs on a small thread pool,
so the node, not the simulator, is the system under test as far as one machine allows.

Faults are injected per device, drawn once from a seeded generator:

- **install failure**: the health check fails, so the agent rolls back;
- **power loss**: the power goes at a random install step; the device comes back after
  a pause as a fresh agent on the same folder and resumes;
- **corrupted download**: the first download of the target arrives with a flipped
  byte, which TUF refuses; the device keeps running what it ran and reports why;
- **offline**: the device is off the network for a while.

At the end every device's folder is checked: the active slot holds an image whose hash
is the one its state records (a working slot), and every device that failed runs the
image it ran before. The report holds the outcome, the rollout as the node saw it, the
requests served and the node's CPU, and a time series of devices per state.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from liquidfab.errors import LiquidfabError
from liquidfab.fleet.agent import Agent, PowerLoss, load_state, provision
from liquidfab.fleet.messages import REGISTER_DEVICE
from liquidfab.fleet.rollout_messages import ROLLOUT
from liquidfab.identity import SigningKey
from liquidfab.protocol import BATCH_CONTENT_TYPE, CONTENT_TYPE, sign_message

__all__ = [
    "Faults",
    "NodeProcess",
    "SimulationReport",
    "SimulationSettings",
    "simulate",
    "state_of",
]

PRODUCT, HARDWARE, MAKER, OWNER = "com.voltwerk.trail", "mcu-a", "voltwerk", "ada"
INSTALL_STEPS = ("DOWNLOADING", "DOWNLOADED", "VERIFIED", "INSTALLING", "INSTALLED")
STATES = ("factory", "updating", "updated", "rolled back", "refused", "off")
_REGISTER_BATCH = 500


@dataclass(frozen=True)
class Faults:
    """Shares of devices each fault is injected into (drawn independently)."""

    install_failure: float = 0.05
    power_loss: float = 0.05
    corrupt_download: float = 0.0
    offline: float = 0.0
    offline_seconds: float = 20.0
    reboot_seconds: float = 2.0


@dataclass(frozen=True)
class SimulationSettings:
    devices: int = 1000
    transport: str = "http"  # or "mqtt"
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    poll_seconds: int = 5
    waves: tuple[int, ...] = (10, 50, 100)
    success_threshold: float = 0.8
    error_threshold: float = 0.1
    min_sample: int = 20
    rate_per_minute: int = 0
    threads: int = 16
    timeout_seconds: float = 3600.0
    seed: int = 7
    image_bytes: int = 64 * 1024


@dataclass
class SimulationReport:
    settings: dict[str, Any]
    faults: dict[str, Any]
    outcome: str  # "completed", "paused" or "timed out"
    seconds: float
    rollout: dict[str, Any]
    final: dict[str, int]  # devices per state at the end
    injected: dict[str, int]
    without_working_slot: int
    failed_not_on_old_image: int
    requests: dict[str, int]
    node_cpu_seconds: float
    setup_seconds: float
    series: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.without_working_slot == 0 and self.failed_not_on_old_image == 0


def state_of(agent_state: Any, target: str, off: bool) -> str:
    """One of ``STATES`` for a device: what a fleet operator would want counted."""
    if off:
        return "off"
    running = agent_state.running or {}
    if running.get("target") == target:
        return "updated"
    if agent_state.phase == "ROLLED_BACK" and agent_state.attempted == target:
        return "rolled back"
    if agent_state.phase == "FAILED" and agent_state.attempted == target:
        return "refused"
    if agent_state.pending is not None:
        return "updating"
    return "factory"


class _Device:
    """One simulated device: its folder, its agent, the faults it was dealt."""

    def __init__(self, index: int, folder: Path, key: SigningKey, rng: random.Random,
                 faults: Faults) -> None:  # fmt: skip
        self.index, self.folder, self.key = index, folder, key
        self.fails_install = rng.random() < faults.install_failure
        self.power_cut_at = rng.choice(INSTALL_STEPS) if rng.random() < faults.power_loss else None
        self.corrupt = rng.random() < faults.corrupt_download
        self.offline_after = rng.uniform(0, 30) if rng.random() < faults.offline else None
        self.agent: Agent | None = None
        self.off_until = 0.0
        self.wake: asyncio.Event | None = None
        self.power_cuts = 0
        self.corrupted = 0

    def health(self, slot: Path, target: dict[str, Any]) -> bool:
        image = slot / "image"
        whole = (
            image.is_file() and hashlib.sha256(image.read_bytes()).hexdigest() == target["sha256"]
        )
        return whole and not self.fails_install

    def hook(self, phase: str) -> None:
        if phase == self.power_cut_at and self.power_cuts == 0:
            self.power_cuts += 1
            raise PowerLoss(phase)


class NodeProcess:
    """The node process: ``liquidfab up`` on a copy of the world (``log``: its output)."""

    def __init__(self, world: Path, settings: SimulationSettings, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable, "-c", "from liquidfab.cli import app; app()", "up",
            "--world", str(world), "--port", str(self.port),
            "--poll-seconds", str(settings.poll_seconds),
        ]  # fmt: skip
        if settings.transport == "mqtt":
            command += ["--mqtt", settings.mqtt_url]
        self._log = open(log, "wb")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LiquidfabError(f"the node exited early ({self.process.returncode})")
            try:
                if httpx.get(f"{self.url}/.well-known/liquidfab", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise LiquidfabError("the node did not start in time")

    def cpu_seconds(self) -> float:
        """User and system CPU the node process has used so far (Linux /proc)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Transport:
    """The node as the agents see it: HTTP reads, messages over HTTP or MQTT, counted."""

    def __init__(self, url: str, settings: SimulationSettings,
                 on_notify: Callable[[str], None] | None) -> None:  # fmt: skip
        limits = httpx.Limits(max_connections=settings.threads + 4)
        self.client = httpx.Client(base_url=url, timeout=60, limits=limits)
        self.counts: Counter[str] = Counter()
        self.link = None
        if settings.transport == "mqtt":
            from liquidfab.fleet.mqtt_link import MqttLink

            self.link = MqttLink(settings.mqtt_url, None, timeout=60, on_notify=on_notify)

    def fetch(self, path: str) -> bytes | None:
        kind = "poll" if path.endswith("/poll") else path.split("/")[2] if path.startswith(
            "/tuf/") else path.rsplit("/", 1)[-1]  # fmt: skip
        self.counts[kind] += 1
        response = self.client.get(path)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.content

    def send(self, message: Any) -> dict[str, Any]:
        self.counts["message"] += 1
        if self.link is not None:
            return self.link.send(message)
        response = self.client.post(
            "/v1/messages", content=message.to_json(), headers={"content-type": CONTENT_TYPE}
        )
        return response.json()

    def close(self) -> None:
        self.client.close()
        if self.link is not None:
            self.link.close()


def _corrupting(
    fetch: Callable[[str], bytes | None], device: _Device
) -> Callable[[str], bytes | None]:
    def wrapped(path: str) -> bytes | None:
        data = fetch(path)
        if device.corrupt and data and path.startswith("/tuf/targets/") and not device.corrupted:
            device.corrupted += 1
            return bytes([data[0] ^ 0xFF]) + data[1:]
        return data

    return wrapped


def _setup(work: Path, world: Path, node: NodeProcess, settings: SimulationSettings,
           rng: random.Random, faults: Faults) -> tuple[list[_Device], Any, Any]:  # fmt: skip
    """Register and provision the devices, publish the release; (devices, info, keystore)."""
    from liquidfab.fleet.service import OFFLINE_KEYS, open_repository
    from liquidfab.node.world import load_world, repository_folder

    keystore = load_world(world).keystore(world)
    maker, owner = keystore.get(MAKER), keystore.get(OWNER)
    with httpx.Client(base_url=node.url, timeout=120) as client:
        version = client.get(f"/v1/products/{PRODUCT}").json()["latest"]
        root = client.get("/tuf/metadata/1.root.json").content
        keys = [SigningKey(rng.randbytes(32)) for _ in range(settings.devices)]
        for start in range(0, len(keys), _REGISTER_BATCH):
            batch = [
                json.loads(sign_message(maker, REGISTER_DEVICE, {
                    "did": k.did, "product": PRODUCT, "version": version, "owner": owner.did,
                    "attributes": {"hardware": HARDWARE, "region": rng.choice(("eu", "us"))},
                }).to_json())
                for k in keys[start : start + _REGISTER_BATCH]
            ]  # fmt: skip
            answers = client.post(
                "/v1/messages", content=json.dumps(batch),
                headers={"content-type": BATCH_CONTENT_TYPE},
            ).json()  # fmt: skip
            refused = [a for a in answers if "code" in a]
            if refused:
                raise LiquidfabError(f"registering devices was refused: {refused[0]['detail']}")
    devices = []
    factory = b"factory image 1.0.0\n" * 8
    director = _node_did(node)
    for i, key in enumerate(keys):
        folder = work / "devices" / f"{i:06d}"
        provision(folder, device_seed=key.seed, director=director, product=PRODUCT,
                  hardware=HARDWARE, root=root, factory_image=factory,
                  factory_version="1.0.0")  # fmt: skip
        devices.append(_Device(i, folder, key, rng, faults))
    image = rng.randbytes(settings.image_bytes)
    service = open_repository(repository_folder(world), keystore)
    custom = {"product": PRODUCT, "hardware": HARDWARE, "version": "1.1.0", "kind": "firmware"}
    info = service.publish("trail/fw-1.1.0.bin", image, custom,
                           targets_key=keystore.get(OFFLINE_KEYS[1]))  # fmt: skip
    return devices, info, keystore


def _node_did(node: NodeProcess) -> str:
    return httpx.get(f"{node.url}/.well-known/liquidfab", timeout=10).json()["node"]


async def _drive(device: _Device, transport: _Transport, pool: ThreadPoolExecutor,
                 settings: SimulationSettings, faults: Faults, started: float,
                 stop: asyncio.Event) -> None:  # fmt: skip
    """One device's life: poll, sleep the node's interval (or until notified), again."""
    loop = asyncio.get_running_loop()
    fetch = _corrupting(transport.fetch, device)
    went_offline = False
    jitter = random.Random(device.index)  # reproducible, one per device
    await asyncio.sleep(jitter.uniform(0, settings.poll_seconds))
    while not stop.is_set():
        now = time.monotonic()
        if (
            device.offline_after is not None
            and not went_offline
            and (now - started >= device.offline_after)
        ):
            went_offline = True
            device.off_until = now + faults.offline_seconds
        if now < device.off_until:
            await asyncio.sleep(device.off_until - now)
            continue
        if device.agent is None:
            device.agent = Agent(device.folder, fetch=fetch, send=transport.send,
                                 health=device.health, hook=device.hook)  # fmt: skip
        agent = device.agent
        if device.wake is not None:
            device.wake.clear()  # a notice from now on wakes the next wait
        try:
            await loop.run_in_executor(pool, agent.poll)
        except PowerLoss:
            device.agent = None  # the process is gone; a new one reads state.json
            device.off_until = time.monotonic() + faults.reboot_seconds
            continue
        except (httpx.HTTPError, LiquidfabError, OSError):
            transport.counts["errors"] += 1
        sleep = agent.sleep_seconds or settings.poll_seconds
        if device.wake is not None:  # MQTT: a notice wakes it; the interval is a fallback
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(device.wake.wait(), timeout=sleep * 6)
        else:
            await asyncio.sleep(sleep * jitter.uniform(0.8, 1.2))


def _census(devices: list[_Device], target: str) -> Counter[str]:
    now = time.monotonic()
    counts: Counter[str] = Counter()
    for device in devices:
        if device.agent is None:
            counts["off" if now < device.off_until else "factory"] += 1
            continue
        counts[state_of(device.agent.state, target, now < device.off_until)] += 1
    return counts


def _check_folders(devices: list[_Device], target_sha: str) -> tuple[int, int, Counter[str]]:
    """(devices without a working slot, failed devices not on their old image, final
    states), read from the state folders as a restarted device would."""
    broken = not_old = 0
    final: Counter[str] = Counter()
    for device in devices:
        state = load_state(device.folder)
        running = state.running
        image = device.folder / "slots" / state.active / "image"
        if (
            running is None
            or not image.is_file()
            or (hashlib.sha256(image.read_bytes()).hexdigest() != running["sha256"])
        ):
            broken += 1
        if state.phase in ("FAILED", "ROLLED_BACK") and running and running["sha256"] == target_sha:
            not_old += 1
        final[state_of(state, "trail/fw-1.1.0.bin", False)] += 1
    return broken, not_old, final


async def _run(devices: list[_Device], node: NodeProcess, info: Any, keystore: Any,
               settings: SimulationSettings, faults: Faults,
               on_sample: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:  # fmt: skip
    loop = asyncio.get_running_loop()
    by_did = {d.key.did: d for d in devices}
    if settings.transport == "mqtt":
        for device in devices:
            device.wake = asyncio.Event()

    def notified(did: str) -> None:
        device = by_did.get(did)
        if device is not None and device.wake is not None:
            loop.call_soon_threadsafe(device.wake.set)

    transport = await loop.run_in_executor(None, lambda: _Transport(node.url, settings, notified))
    pool = ThreadPoolExecutor(settings.threads, thread_name_prefix="device")
    stop = asyncio.Event()
    started = time.monotonic()
    tasks = [
        asyncio.create_task(_drive(d, transport, pool, settings, faults, started, stop))
        for d in devices
    ]
    maker = keystore.get(MAKER)
    rollout = {
        "rollout": "sim-fw-1.1.0", "name": "Trail firmware 1.1.0 (simulation)",
        "target": {"name": info.name, "sha256": info.sha256, "length": info.length,
                   "custom": dict(info.custom)},
        "filter": {"product": PRODUCT}, "waves": list(settings.waves),
        "success_threshold": settings.success_threshold,
        "error_threshold": settings.error_threshold, "min_sample": settings.min_sample,
        "rate_per_minute": settings.rate_per_minute,
    }  # fmt: skip
    message = sign_message(maker, ROLLOUT, rollout)
    answer = await loop.run_in_executor(
        None,
        lambda: transport.client.post(
            "/v1/messages", content=message.to_json(), headers={"content-type": CONTENT_TYPE}
        ).json(),
    )
    if "result" not in answer:
        raise LiquidfabError(f"the rollout was refused: {answer.get('detail')}")
    series: list[dict[str, Any]] = []
    outcome, status = "timed out", {}
    while time.monotonic() - started < settings.timeout_seconds:
        await asyncio.sleep(1.0)
        status = await loop.run_in_executor(
            None, lambda: transport.client.get("/v1/rollouts/sim-fw-1.1.0").json()
        )
        counts = _census(devices, info.name)
        sample = {"t": round(time.monotonic() - started, 2), **{s: counts[s] for s in STATES},
                  "wave": status["wave"], "state": status["state"]}  # fmt: skip
        series.append(sample)
        if on_sample is not None:
            on_sample(sample)
        settled = counts["updating"] == 0 and counts["off"] == 0
        finished = status["succeeded"] + status["failed"] == status["assigned"]
        if status["state"] == "paused" and settled and finished:
            outcome = "paused"  # and the devices assigned before the pause have finished
            break
        elif status["assigned"] == status["population"] and finished and settled:
            outcome = "completed"
            break
    seconds = time.monotonic() - started  # the rollout's time, not the shutdown's
    stop.set()
    for task in tasks:  # sleeping devices stop now; one in a poll finishes it first
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    pool.shutdown(wait=True)
    transport.close()
    return {"outcome": outcome, "seconds": seconds, "rollout": status, "series": series,
            "requests": dict(transport.counts)}  # fmt: skip


def simulate(
    world: Path,
    work: Path,
    settings: SimulationSettings,
    faults: Faults,
    *,
    on_sample: Callable[[dict[str, Any]], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> SimulationReport:
    """Run the simulation in ``work`` (a fresh folder); the report."""
    say = on_phase or (lambda text: None)
    if settings.transport not in ("http", "mqtt"):
        raise LiquidfabError(f"the transport is http or mqtt, not {settings.transport}")
    if work.exists() and any(work.iterdir()):
        raise LiquidfabError(f"{work} is not empty; the simulation needs a fresh folder")
    copy = work / "world"
    shutil.copytree(world, copy, ignore=shutil.ignore_patterns("keys", "state"))
    rng = random.Random(settings.seed)
    say("starting the node")
    node = NodeProcess(copy, settings, work / "node.log")
    try:
        node.wait_ready()
        say(f"registering and provisioning {settings.devices:,} devices")
        began = time.monotonic()
        devices, info, keystore = _setup(work, copy, node, settings, rng, faults)
        setup_seconds = time.monotonic() - began
        cpu_before = node.cpu_seconds()
        say("rolling out")
        ran = asyncio.run(_run(devices, node, info, keystore, settings, faults, on_sample))
        cpu = node.cpu_seconds() - cpu_before
    finally:
        node.stop()
    broken, not_old, final = _check_folders(devices, info.sha256)
    injected = {
        "install_failure": sum(d.fails_install for d in devices),
        "power_loss": sum(d.power_cuts for d in devices),
        "corrupt_download": sum(d.corrupted for d in devices),
        "offline": sum(d.offline_after is not None for d in devices),
    }
    report = SimulationReport(
        settings={**asdict(settings), "waves": list(settings.waves)},
        faults=asdict(faults),
        outcome=ran["outcome"],
        seconds=round(ran["seconds"], 2),
        rollout={
            k: ran["rollout"].get(k)
            for k in (
                "state",
                "wave",
                "reason",
                "population",
                "assigned",
                "succeeded",
                "failed",
                "progress",
            )
        },
        final=dict(final),
        injected=injected,
        without_working_slot=broken,
        failed_not_on_old_image=not_old,
        requests=ran["requests"],
        node_cpu_seconds=round(cpu, 2),
        setup_seconds=round(setup_seconds, 2),
        series=ran["series"],
    )
    (work / "report.json").write_text(json.dumps(asdict(report), indent=2), encoding="utf-8")
    return report
