"""A firmware rollout to a simulated fleet, then the node's capacity for polls and twin writes.

Each size runs in a fresh copy of the e-bike world, with the node as a separate process
(``liquidfab up``, uvicorn on loopback, SQLite):

1. **Rollout** (``fleet.simulate``): N real device agents, waves of 10, 50 and 100
   devices, 5 % injected install failures. Printed: completion time, outcome, devices
   updated and rolled back, polls and messages the devices sent per second, node CPU per
   request. The polls here are what the fleet asks for (N / 5 s), not what the node can do.
2. **Poll capacity**: a fresh node on the same world (the N devices in its store) polled
   for every device in turn, as hard as 64 keep-alive connections can, after one warm-up
   pass that fills the node's poll cache.
3. **Floor**: the same client against ``GET /v1/nothing-here``, the router's 404 with
   no store behind it: roughly what uvicorn and the framework cost alone. (It walks every
   route and answers problem+json, so a cached poll may well be cheaper.)
4. **Twin writes**: signed ``twin-reported`` messages, each on the version the one before
   made, round by round over all devices; every refusal is reported. Also twin reads.

The load generator is a minimal asyncio HTTP/1.1 client sending pre-built request bytes,
far cheaper per request than the node; its own CPU is printed so the reader can tell
whether it was the limit. References printed next to the figures: Mender's default poll
of 1,800 s makes a million devices about 556 polls/s; Eclipse Ditto serves about 2,800
twin reads/s and 800 twin writes/s per instance. Goals on a 2-core machine: 2,000 polls/s
and 1,000 twin writes/s.

    python benchmarks/fleet_rollout.py                 # 1,000 devices
    python benchmarks/fleet_rollout.py --full          # 1,000 and 10,000 devices
    python benchmarks/fleet_rollout.py --devices 200   # a quick trial
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from liquidfab.fleet.messages import TWIN_REPORTED
from liquidfab.fleet.simulate import Faults, NodeProcess, SimulationSettings, simulate
from liquidfab.identity import SigningKey
from liquidfab.protocol import CONTENT_TYPE, sign_message

ROOT = Path(__file__).resolve().parent.parent
WORLD = ROOT / "examples" / "ebike"
CONNECTIONS = 64
POLL_SECONDS, FLOOR_SECONDS, READ_SECONDS = 10.0, 5.0, 3.0
WRITES, MAX_ROUNDS, CHECKED = 10_000, 10, 20
DITTO = "Eclipse Ditto twin reads, one instance"
COMPARED = [  # figure, goal on this machine (0: none), reference, its value
    ("polls/s", 2_000, "Mender, 1M devices polling every 1,800 s", 556),
    ("polls/s", 2_000, DITTO, 2_800),
    ("twin reads/s", 0, DITTO, 2_800),
    ("twin writes/s", 1_000, "Eclipse Ditto twin writes, one instance", 800),
]


# --- the load generator -------------------------------------------------------------------


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def post(path: str, content_type: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def _head(head: bytes) -> tuple[int, int]:
    """Status and Content-Length of a response head (the node always sends a length)."""
    at = head.lower().find(b"\r\ncontent-length:")
    if at < 0:
        raise ConnectionError(f"a response without Content-Length: {head[:60]!r}")
    return int(head[9:12]), int(head[at + 17 : head.find(b"\r\n", at + 2)])


@dataclass
class Load:
    """What one phase sent and got back, and what it cost both processes."""

    statuses: Counter[int] = field(default_factory=Counter)
    bodies: dict[int, bytes] = field(default_factory=dict)  # by request index, single pass
    refusal: bytes = b""  # the first answer of 400 or more
    seconds: float = 0.0
    node_cpu: float = 0.0
    client_cpu: float = 0.0

    def add(self, other: Load) -> None:
        self.statuses.update(other.statuses)
        self.bodies.update(other.bodies)
        self.refusal = self.refusal or other.refusal
        self.seconds += other.seconds
        self.node_cpu += other.node_cpu
        self.client_cpu += other.client_cpu

    def rate(self, status: int) -> float:
        return self.statuses[status] / self.seconds if self.seconds else float("nan")

    def cpu_us(self, status: int) -> float:
        return 1e6 * self.node_cpu / max(self.statuses[status], 1)


async def _exchange(port: int, requests: list[bytes], seconds: float | None, load: Load) -> None:
    """Send ``requests`` once each (``seconds`` None, bodies kept), or cycle over them
    until ``seconds`` have passed, over CONNECTIONS keep-alive connections."""
    counter, deadline = itertools.count(), time.perf_counter() + (seconds or 0.0)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                i = next(counter)
                if (i >= len(requests)) if seconds is None else time.perf_counter() > deadline:
                    return
                writer.write(requests[i % len(requests)])
                status, length = _head(await reader.readuntil(b"\r\n\r\n"))
                body = await reader.readexactly(length)
                load.statuses[status] += 1
                if status >= 400 and not load.refusal:
                    load.refusal = body
                if seconds is None:
                    load.bodies[i] = body
        except (ConnectionError, asyncio.IncompleteReadError):
            load.statuses[0] += 1  # the connection broke: counted with the errors
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))


def measure(node: NodeProcess, requests: list[bytes], seconds: float | None = None) -> Load:
    """One phase of load, timed, with the node's and this process's CPU around it."""
    load, port = Load(), int(node.url.rsplit(":", 1)[1])
    cpu, client, started = node.cpu_seconds(), time.process_time(), time.perf_counter()
    asyncio.run(_exchange(port, requests, seconds, load))
    load.seconds = time.perf_counter() - started
    load.node_cpu = node.cpu_seconds() - cpu
    load.client_cpu = time.process_time() - client
    return load


# --- one size -----------------------------------------------------------------------------


def device_keys(work: Path) -> list[SigningKey]:
    """The simulated devices' keys, from their state folders as the flashing station left them."""
    keys = []
    for folder in sorted((work / "devices").iterdir()):
        seed = (folder / "device.key").read_text(encoding="ascii").strip()
        key = SigningKey(base64.urlsafe_b64decode(seed + "=" * (-len(seed) % 4)))
        assert key.did == json.loads((folder / "state.json").read_text())["device"]
        keys.append(key)
    return keys


def twin_versions(node: NodeProcess, dids: list[str]) -> list[int]:
    """Each device's twin version as the node has it (the twin endpoint is authoritative)."""
    load = measure(node, [get(f"/v1/devices/{did}/twin") for did in dids])
    if load.statuses[200] != len(dids):
        raise SystemExit(f"reading the twins failed: {dict(load.statuses)}")
    return [json.loads(load.bodies[i])["twin_version"] for i in range(len(dids))]


def twin_writes(node: NodeProcess, keys: list[SigningKey], rounds: int) -> tuple[Load, str]:
    """``rounds`` chained writes per device, round by round; signing is not timed."""
    dids = [k.did for k in keys]
    versions, total = twin_versions(node, dids), Load()
    for r in range(rounds):
        bodies = [
            sign_message(key, TWIN_REPORTED, {"device": key.did, "version": v + r,
                                              "state": {"bench": r}}).to_json()
            for key, v in zip(keys, versions, strict=True)
        ]  # fmt: skip
        total.add(measure(node, [post("/v1/messages", CONTENT_TYPE, b) for b in bodies]))
    sample = random.Random(7).sample(range(len(dids)), min(CHECKED, len(dids)))
    after = twin_versions(node, [dids[i] for i in sample])
    moved = [a - versions[i] for a, i in zip(after, sample, strict=True)]
    check = f"{sum(m == rounds for m in moved)} of {len(sample)} moved by exactly {rounds}"
    refused = total.refusal[:200].decode(errors="replace")
    return total, check + (f"; first refusal: {refused}" if refused else "")


def run(devices: int, keep: bool) -> dict[str, Any]:
    """The rollout, then the capacity phases on a fresh node over the same world."""
    tmp = Path(tempfile.mkdtemp(prefix=f"liquidfab-fleet-{devices}-"))
    say = lambda text: print(f"  [{devices:,}] {text}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        report = simulate(
            WORLD,
            tmp,
            SimulationSettings(devices=devices),
            Faults(install_failure=0.05, power_loss=0.0),
            on_phase=say,
        )
        say(f"rollout {report.outcome} in {report.seconds:.1f} s; measuring capacity")
        keys = device_keys(tmp)
        dids = [k.did for k in keys]
        node = NodeProcess(tmp / "world", SimulationSettings(devices=devices), tmp / "bench.log")
        try:
            node.wait_ready()
            polls = [get(f"/v1/devices/{did}/poll") for did in dids]
            measure(node, polls)  # warm-up: the node computes and caches every answer
            poll = measure(node, polls, POLL_SECONDS)
            floor = measure(node, [get("/v1/nothing-here")], FLOOR_SECONDS)
            reads = measure(node, [get(f"/v1/devices/{did}/twin") for did in dids], READ_SECONDS)
            rounds = min(MAX_ROUNDS, max(1, math.ceil(WRITES / devices)))
            say(f"twin writes: {rounds} rounds of {devices:,}")
            writes, check = twin_writes(node, keys, rounds)
        finally:
            node.stop()
    finally:
        if keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"devices": devices, "report": report, "poll": poll, "floor": floor,
            "reads": reads, "writes": writes, "rounds": rounds, "check": check}  # fmt: skip


# --- the report ---------------------------------------------------------------------------


def completion(report: Any) -> float:
    """When the simulation saw the rollout finished: its last sample. ``report.seconds``
    also holds the agents winding down (each ends its current sleep, up to 1.2 polls)."""
    return report.series[-1]["t"] if report.series else report.seconds


def figures(r: dict[str, Any]) -> dict[str, float]:
    """The numbers compared across sizes and against the anchors."""
    rep, poll, writes = r["report"], r["poll"], r["writes"]
    served = sum(n for kind, n in rep.requests.items() if kind != "errors")
    return {
        "rollout s": completion(rep),
        "rollout node CPU µs/request": 1e6 * rep.node_cpu_seconds / max(served, 1),
        "polls/s": poll.rate(200),
        "node CPU µs/poll": poll.cpu_us(200),
        "floor req/s": r["floor"].rate(404),
        "twin reads/s": r["reads"].rate(200),
        "twin writes/s": writes.rate(201),
        "node CPU µs/write": writes.cpu_us(201),
    }


def print_size(r: dict[str, Any]) -> None:
    rep, poll, floor, reads, writes = (r[k] for k in ("report", "poll", "floor", "reads", "writes"))
    f, roll = figures(r), rep.rollout
    seconds = max(rep.seconds, 1e-9)
    errors = sum(n for s, n in writes.statuses.items() if s != 201)

    def cpu(load: Load) -> str:
        return (
            f"node {load.node_cpu / load.seconds:.0%}, client {load.client_cpu / load.seconds:.0%}"
        )

    rows = [
        ("rollout completion", f"{f['rollout s']:,.1f} s ({rep.outcome}, state "
         f"{roll['state']}; simulation wall {rep.seconds:,.1f} s)"),
        ("updated / rolled back", f"{roll['succeeded']} / {roll['failed']} of "
         f"{roll['population']} (injected {rep.injected['install_failure']}); ok {rep.ok}"),
        ("without a working slot", f"{rep.without_working_slot}"),
        ("rollout polls/s, messages/s", f"{rep.requests.get('poll', 0) / seconds:,.0f}, "
         f"{rep.requests.get('message', 0) / seconds:,.0f} (client errors "
         f"{rep.requests.get('errors', 0)})"),
        ("rollout node CPU per request", f"{f['rollout node CPU µs/request']:,.0f} µs"),
        ("polls/s served (capacity)", f"{f['polls/s']:,.0f} ({poll.statuses[200]:,} in "
         f"{poll.seconds:.1f} s; errors {sum(poll.statuses.values()) - poll.statuses[200]})"),
        ("node CPU per poll", f"{f['node CPU µs/poll']:,.0f} µs"),
        ("floor req/s (router 404)", f"{f['floor req/s']:,.0f}; polls/floor "
         f"{f['polls/s'] / f['floor req/s']:.2f}; {floor.cpu_us(404):,.0f} µs node CPU"),
        ("twin reads/s", f"{f['twin reads/s']:,.0f} ({reads.cpu_us(200):,.0f} µs node CPU)"),
        ("twin writes/s", f"{f['twin writes/s']:,.0f} ({writes.statuses[201]:,} in "
         f"{r['rounds']} rounds; refused {errors})"),
        ("node CPU per write", f"{f['node CPU µs/write']:,.0f} µs"),
        ("twin versions checked", r["check"]),
        ("CPU share of a core: polls", cpu(poll)),
        ("CPU share of a core: floor", cpu(floor)),
        ("CPU share of a core: writes", cpu(writes)),
    ]  # fmt: skip
    print(f"\n## {r['devices']:,} devices\n\n| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print("\n| figure | measured | goal | measured/goal | anchor | value | measured/anchor |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for name, goal, ref, value in COMPARED:
        against = f"{goal:,} | {f[name] / goal:.2f}" if goal else " | "
        print(
            f"| {name} | {f[name]:,.0f} | {against} | {ref} | {value:,} | {f[name] / value:.2f} |"
        )


def print_change(results: list[dict[str, Any]]) -> None:
    """How each figure moves from the smallest size to the largest."""
    first, last = figures(results[0]), figures(results[-1])
    a, b = results[0]["devices"], results[-1]["devices"]
    print(f"\n## from {a:,} to {b:,} devices\n\n| figure | {a:,} | {b:,} | ratio |")
    print("|---|---:|---:|---:|")
    for name in first:
        print(
            f"| {name} | {first[name]:,.1f} | {last[name]:,.1f} | {last[name] / first[name]:.2f} |"
        )


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{platform.platform()}, {model}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def sizes(text: list[str] | None, full: bool) -> list[int]:
    if text:
        return [int(part.replace("_", "")) for item in text for part in item.split(",") if part]
    return [1_000, 10_000] if full else [1_000]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="1,000 and 10,000 devices")
    parser.add_argument("--devices", action="append", help="sizes to run (repeat or 200,500)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = parser.parse_args()
    print(f"# fleet_rollout, {CONNECTIONS} connections, waves (10, 50, 100), 5 % install failures")
    results = []
    for n in sizes(args.devices, args.full):
        results.append(run(n, args.keep))
        print_size(results[-1])
    if len(results) > 1:
        print_change(results)
    print(f"\nmachine: {machine()}")
    sys.exit(1 if any(r["report"].without_working_slot for r in results) else 0)


if __name__ == "__main__":
    main()
