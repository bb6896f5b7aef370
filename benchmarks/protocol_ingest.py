"""Signed-message ingest through the real HTTP stack, against its two references.

The node's claim is that ingest is bounded by Ed25519 verification, not by the HTTP
stack or the store. One run measures, on one machine, so the ratios mean something:

1. ``org.liquidfab.identity.update`` messages per second into a node served by uvicorn
   on loopback (fresh SQLite file, signers registered first), one message per request
   (structured mode) and 100 per request (batch mode);
2. a bare FastAPI endpoint served the same way that parses the same bodies and
   verifies nothing: what HTTP + JSON alone cost;
3. Ed25519 verification alone over the same messages' canonical bytes, on one core.

Messages are signed before each timed window, so client signing is not measured, and
every response is checked: a refused message aborts the run rather than being counted.
The client is a minimal asyncio HTTP/1.1 keep-alive client sending pre-built request
bytes, so that on a small machine it needs far less CPU than the server it drives
(each phase prints both processes' CPU use).

    python benchmarks/protocol_ingest.py            # small, well under a minute
    python benchmarks/protocol_ingest.py --full     # the headline size
    python benchmarks/protocol_ingest.py --profile  # also cProfile the node's batch path
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import io
import json
import os
import platform
import pstats
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from liquidfab.identity import SigningKey, VerifyKey
from liquidfab.node import create_app
from liquidfab.node.core import Node
from liquidfab.protocol import BATCH_CONTENT_TYPE, CONTENT_TYPE, UPDATE, Envelope, parse_json
from liquidfab.protocol import sign_message as sign

BATCH_SIZE = 100
SIGNERS = 16
MIN_SECONDS = 2.0  # shortest timed window for the bare endpoint
GOAL = 0.5  # batched ingest / verification ceiling


@dataclass(frozen=True)
class Sizes:
    """How many messages each measurement sends."""

    single: int  # messages sent one per request
    batched: int  # messages sent BATCH_SIZE per request
    verify: int  # signatures checked for the ceiling
    chunk: int  # messages signed at once: the whole chunk must land inside the skew window


SMALL = Sizes(single=500, batched=5_000, verify=20_000, chunk=10_000)
FULL = Sizes(single=10_000, batched=100_000, verify=200_000, chunk=10_000)


# --- servers ------------------------------------------------------------------------------


def bare_app() -> FastAPI:
    """A FastAPI endpoint that parses what the node parses, answers alike, checks nothing."""
    app = FastAPI()

    def receipt(message: dict[str, Any]) -> dict[str, Any]:
        return {"status": "accepted", "source": message["source"], "id": message["id"]}

    @app.post("/v1/messages")
    async def post_messages(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        if request.headers.get("content-type") == BATCH_CONTENT_TYPE:
            return JSONResponse([receipt(m) for m in body], 207)
        return JSONResponse(receipt(body), 201)

    return app


def serve(kind: str, db_url: str | None, keystore: str | None) -> None:
    """Child process: bind a free loopback port, report it on stdout, serve until killed."""
    import uvicorn

    if kind == "node":
        assert db_url and keystore
        app = create_app(Node.open(db_url, keystore))
    else:
        app = bare_app()
    # IPPROTO_TCP, as asyncio's own create_server passes it: without it asyncio does not set
    # TCP_NODELAY on accepted connections and every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    # As `liquidfab up` runs it: one uvicorn process, log level warning.
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


class Server:
    """A uvicorn subprocess serving the node or the bare endpoint."""

    def __init__(self, kind: str, *args: str) -> None:
        cmd = [sys.executable, __file__, "--serve", kind, *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise SystemExit(f"the {kind} server did not start (said {line!r})")
        self.port = int(line.split()[1])

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process (all its threads); NaN off Linux."""
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return float("nan")
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def fresh_node(tmp: Path, keys: list[SigningKey]) -> tuple[str, str]:
    """A new SQLite node with ``keys`` registered (by signed messages); its URL and keystore."""
    db_url, keystore = f"sqlite:///{tmp / 'node.db'}", str(tmp / "keys")
    node = Node.open(db_url, keystore)
    for i, key in enumerate(keys):
        node.register(key, "owner", f"signer {i}")
    node.close()
    return db_url, keystore


# --- messages and the client --------------------------------------------------------------


def messages(keys: list[SigningKey], count: int, tag: str) -> list[Envelope]:
    """``count`` signed identity.update messages, round-robin over ``keys``, each a change."""
    return [
        sign(
            keys[i % len(keys)],
            UPDATE,
            {"did": keys[i % len(keys)].did, "display_name": f"{tag} {i}"},
        )
        for i in range(count)
    ]


def unb64url(text: str) -> bytes:
    """The signature's raw 64 bytes (base64url without padding on the wire)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def request(port: int, content_type: str, body: bytes) -> bytes:
    """A complete HTTP/1.1 request, built before timing so the client only writes bytes."""
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def _status_and_length(head: bytes) -> tuple[int, int]:
    """Status code and Content-Length of a response head (the node always sends a length)."""
    status_line, *lines = head.decode("latin-1").split("\r\n")
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return int(status_line.split()[1]), int(value)
    raise SystemExit(f"response without Content-Length: {status_line}")


async def _send_all(port: int, requests: list[bytes], connections: int) -> list[tuple[int, bytes]]:
    """Send every request over ``connections`` keep-alive connections; (status, body) each."""
    results: list[tuple[int, bytes]] = [(0, b"")] * len(requests)
    todo = iter(range(len(requests)))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in todo:
                writer.write(requests[i])
                status, length = _status_and_length(await reader.readuntil(b"\r\n\r\n"))
                results[i] = (status, await reader.readexactly(length))
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return results


def check(results: list[tuple[int, bytes]], sent: list[list[Envelope]], batch: bool) -> None:
    """Fail loudly unless every message got its own accepted receipt."""
    for (status, body), group in zip(results, sent, strict=True):
        want = 207 if batch else 201
        answer = json.loads(body)
        items = answer if batch else [answer]
        ok = (
            status == want
            and isinstance(items, list)
            and len(items) == len(group)
            and all(
                isinstance(it, dict) and it.get("status") == "accepted" and it.get("id") == env.id
                for it, env in zip(items, group, strict=False)
            )
        )
        if not ok:
            raise SystemExit(
                f"REFUSED: expected {want} with every message accepted, got {status}: "
                f"{body[:600].decode(errors='replace')}"
            )


@dataclass
class Measured:
    """Messages delivered and accepted, the time they took, and the CPU both sides used."""

    messages: int = 0
    seconds: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else float("nan")


def drive(
    server: Server,
    make: Callable[[int, str], list[Envelope]],
    total: int,
    per_request: int,
    chunk: int,
    connections: int,
    resend: bool = False,
) -> Measured:
    """Sign (untimed), then send and time, chunk by chunk; a warm-up round goes first.

    ``resend`` (the bare endpoint keeps no state) repeats the same requests until the timed
    window reaches MIN_SECONDS, since one pass can be too short to time.
    """
    batch = per_request > 1
    content_type = BATCH_CONTENT_TYPE if batch else CONTENT_TYPE
    out = Measured()
    warmup = connections * 4 * per_request
    plan = [("warmup", warmup)] + [(f"c{n}", min(chunk, total - n)) for n in range(0, total, chunk)]
    for tag, count in plan:
        envs = make(count, tag)
        groups = [envs[i : i + per_request] for i in range(0, len(envs), per_request)]
        bodies = [
            b"[" + b",".join(e.to_json() for e in g) + b"]" if batch else g[0].to_json()
            for g in groups
        ]
        reqs = [request(server.port, content_type, b) for b in bodies]
        while True:
            cpu0, srv0, t0 = time.process_time(), server.cpu_seconds(), time.perf_counter()
            results = asyncio.run(_send_all(server.port, reqs, connections))
            t1, srv1, cpu1 = time.perf_counter(), server.cpu_seconds(), time.process_time()
            check(results, groups, batch)
            if tag == "warmup":
                break
            out.messages += count
            out.seconds += t1 - t0
            out.client_cpu += cpu1 - cpu0
            out.server_cpu += srv1 - srv0
            if not resend or out.seconds >= MIN_SECONDS:
                break
    return out


# --- the ceiling --------------------------------------------------------------------------


def verify_rate(envs: list[Envelope], count: int) -> tuple[float, float]:
    """Verifications per second on this one thread: bare VerifyKey, and Envelope.verify.

    The first is the ceiling (canonical bytes computed beforehand); the second builds each
    Envelope afresh, so it also pays for canonicalizing, as the node does per message.
    """
    keys = {e.source: VerifyKey.from_did(e.source) for e in envs}
    triples = [(keys[e.source], e.signed_bytes, unb64url(e.attributes["signature"])) for e in envs]
    done, t0 = 0, time.perf_counter()
    while done < count:
        for key, data, sig in triples[: count - done]:
            if not key.verify(data, sig):
                raise SystemExit("a signature did not verify")
        done += min(len(triples), count - done)
    bare = done / (time.perf_counter() - t0)
    attrs = [e.attributes for e in envs]
    done, t0 = 0, time.perf_counter()
    while done < count:
        for a in attrs[: count - done]:
            if not Envelope(a).verify():
                raise SystemExit("a signature did not verify")
        done += min(len(attrs), count - done)
    return bare, done / (time.perf_counter() - t0)


# --- profile ------------------------------------------------------------------------------


def profile_batch_path(keys: list[SigningKey], count: int, top: int = 30) -> str:
    """cProfile of what POST /v1/messages does for a batch, minus HTTP: parse, submit_many."""
    with tempfile.TemporaryDirectory(prefix="liquidfab-prof-") as tmp:
        db_url, keystore = fresh_node(Path(tmp), keys)
        node = Node.open(db_url, keystore)
        envs = messages(keys, count, "prof")
        bodies = [
            b"[" + b",".join(e.to_json() for e in envs[i : i + BATCH_SIZE]) + b"]"
            for i in range(0, count, BATCH_SIZE)
        ]
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        for body in bodies:
            outcomes = node.dispatcher.submit_many(parse_json(body))
            if not all(o.status == 201 for o in outcomes):
                raise SystemExit(f"REFUSED while profiling: {outcomes[0].body}")
        prof.disable()
        elapsed = time.perf_counter() - t0
        node.close()
    buf = io.StringIO()
    buf.write(f"in-process batch path: {count / elapsed:,.0f} msg/s under cProfile\n")
    stats = pstats.Stats(prof, stream=buf).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return buf.getvalue()


# --- report -------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def table(rows: list[tuple[str, float, str, float, str]]) -> Iterator[str]:
    yield f"| {'measure':<40} | {'msg/s':>9} | {'reference':<34} | {'msg/s':>9} | ratio | goal"
    yield f"|{'-' * 42}|{'-' * 11}|{'-' * 36}|{'-' * 11}|-------|------"
    for name, rate, ref, ref_rate, goal in rows:
        yield (
            f"| {name:<40} | {rate:>9,.0f} | {ref:<34} | {ref_rate:>9,.0f} | "
            f"{rate / ref_rate:>5.2f} | {goal}"
        ).rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the headline size")
    parser.add_argument("--connections", type=int, default=8, help="client connections")
    parser.add_argument("--profile", action="store_true", help="cProfile the batch path too")
    parser.add_argument("--serve", choices=["node", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    parser.add_argument("--keystore", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.db_url, args.keystore)
        return

    sizes = FULL if args.full else SMALL
    info = machine()
    print(" ".join(f"{k}: {v};" for k, v in info.items()).rstrip(";"))
    print(f"sizes: {sizes}; batch {BATCH_SIZE}; {args.connections} connections; {SIGNERS} signers")
    keys = [SigningKey.generate() for _ in range(SIGNERS)]
    started = time.perf_counter()
    measured: dict[str, Measured] = {}
    last_chunk: list[Envelope] = []  # the last messages signed (node batch), for the ceiling

    def make(count: int, tag: str) -> list[Envelope]:
        last_chunk[:] = messages(keys, count, tag)
        return last_chunk

    for kind, per_request, total in [
        ("node", 1, sizes.single),
        ("bare", 1, sizes.single),
        ("bare", BATCH_SIZE, sizes.batched),
        ("node", BATCH_SIZE, sizes.batched),  # last: its messages feed the ceiling
    ]:
        with tempfile.TemporaryDirectory(prefix="liquidfab-bench-") as tmp:
            if kind == "node":
                db_url, keystore = fresh_node(Path(tmp), keys)
                server_args = ["--db-url", db_url, "--keystore", keystore]
            else:
                server_args = []
            with Server(kind, *server_args) as server:
                m = drive(
                    server,
                    make,
                    total,
                    per_request,
                    sizes.chunk,
                    args.connections,
                    resend=kind == "bare",
                )
        name = f"{kind} {'batch' if per_request > 1 else 'single'}"
        measured[name] = m
        print(
            f"  {name:<13} {m.messages:>7,} msgs in {m.seconds:6.2f} s = {m.rate:>8,.0f} msg/s"
            f"   server CPU {m.server_cpu / m.seconds:4.0%} of a core"
            f" ({m.server_cpu / m.messages * 1e6:,.0f} us/msg),"
            f" client CPU {m.client_cpu / m.seconds:4.0%}",
            flush=True,
        )
    ceiling, with_canonical = verify_rate(last_chunk, sizes.verify)
    print(
        f"  verify        {sizes.verify:>7,} sigs: {ceiling:,.0f}/s bare VerifyKey.verify, "
        f"{with_canonical:,.0f}/s Envelope.verify incl. canonical bytes"
    )

    single, batch = measured["node single"].rate, measured["node batch"].rate
    bare_single, bare_batch = measured["bare single"].rate, measured["bare batch"].rate
    met = "MET" if batch / ceiling >= GOAL else "NOT MET"
    verification = "Ed25519 verification ceiling"
    rows = [
        ("batched ingest (100/request)", batch, verification, ceiling, f">= {GOAL} {met}"),
        ("single ingest (1/request)", single, "bare endpoint, single", bare_single, ""),
        ("batched ingest (100/request)", batch, "bare endpoint, batched", bare_batch, ""),
        ("Envelope.verify incl. canonical bytes", with_canonical, verification, ceiling, ""),
    ]
    print()
    print("\n".join(table(rows)))
    print(f"\nwhole run: {time.perf_counter() - started:.1f} s")
    if args.profile:
        print()
        print(profile_batch_path(keys, min(sizes.batched, 20_000)))


if __name__ == "__main__":
    main()
