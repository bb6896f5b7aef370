"""Helpers for the browser tests: a real node on a free port, and Debian's headless Chromium.

The node is served the way ``liquidfab up --world DIR`` serves it (``open_world_node``,
``create_app``, uvicorn), but from a copy of the world in a temporary folder, since the
first run writes ``DIR/keys`` and ``DIR/state``. Chromium is ``/usr/bin/chromium``;
Playwright never downloads a browser. Without it the browser tests skip, unless
LIQUIDFAB_REQUIRE_SERVICES=1, which turns the skip into a failure (CI sets it).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from liquidfab.identity import Keystore
from liquidfab.node import create_app, open_world_node
from liquidfab.node.world import World, load_world
from support import service_missing

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "EXAMPLE_WORLD",
    "ServedWorld",
    "chromium_browser",
    "no_horizontal_scroll",
    "node_only_page",
    "serve_world",
    "service_missing",
]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_WORLD = ROOT / "examples" / "ebike"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@dataclass(frozen=True)
class ServedWorld:
    """A world folder (a temporary copy) and the URL its node answers on."""

    folder: Path
    world: World
    url: str
    node: Any = None  # the Node serving it, for tests that attach to it (an MQTT bridge)

    @property
    def keystore(self) -> Keystore:
        return self.world.keystore(self.folder)


@contextmanager
def serve_world(
    source: Path, into: Path, *, timeout: float = 15.0, fresh: bool = True
) -> Iterator[ServedWorld]:
    """Copy the world in ``source`` to ``into`` and serve its node on 127.0.0.1:<free port>.

    ``fresh`` leaves the source's keys and state behind (a first start); otherwise they
    are copied too, so a world a test has already run serves what it holds. The socket
    is bound before uvicorn starts, so the port cannot be taken in between. Returns once
    ``/healthz`` answers; on exit uvicorn shuts down as on Ctrl-C.
    """
    folder = into / source.name
    ignore = shutil.ignore_patterns("keys", "state") if fresh else None
    shutil.copytree(source, folder, ignore=ignore)
    node = open_world_node(folder)  # what `liquidfab up --world` does before serving
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(node), log_level="warning"))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as e:  # reported by the waiting thread
            failure.append(e)

    thread = threading.Thread(target=run, name="liquidfab-node", daemon=True)
    thread.start()
    try:
        _wait_healthy(url, thread, failure, timeout)
        yield ServedWorld(folder=folder, world=load_world(folder), url=url, node=node)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        node.database.close()
    assert not thread.is_alive(), "the node did not shut down within 10 s"


def _wait_healthy(
    url: str, thread: threading.Thread, failure: list[BaseException], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    last: object = "no answer yet"
    while time.monotonic() < deadline:
        if failure or not thread.is_alive():
            pytest.fail(f"the node stopped before answering /healthz: {failure or 'no error'}")
        try:
            response = httpx.get(f"{url}/healthz", timeout=1)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as e:
            last = e
        time.sleep(0.05)
    pytest.fail(f"the node at {url} did not answer /healthz within {timeout} s ({last})")


@contextmanager
def chromium_browser() -> Iterator[Any]:
    """Debian's headless Chromium under Playwright (sync API); skips or fails if absent."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        service_missing(f"Chromium at {CHROMIUM}", "not installed: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        service_missing("Playwright", e)
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except Exception as e:  # a browser that will not start is as good as absent
            service_missing(f"Chromium at {CHROMIUM}", e)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def node_only_page(browser: Any, url: str) -> Iterator[Any]:
    """A fresh page that may only talk to the node at ``url``: any other request is
    refused, and it, like any script error on the page, fails the test at the end."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    outside: list[str] = []
    errors: list[str] = []

    def only_the_node(route: Any) -> None:
        if route.request.url.startswith((url + "/", "data:", "blob:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_node)
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not outside, f"the page reached beyond the node: {outside}"
    assert not errors, f"scripts failed on the page: {errors}"


def no_horizontal_scroll(page: Any) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page is wider than the window: {width}"
