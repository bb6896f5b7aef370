"""The device agent: what a real Linux device runs to stay served by its node.

Each ``poll``:

1. asks the node's poll answer: how long to sleep, and whether its assignment or its
   licenses moved (only then are the signed documents fetched);
2. finishes whatever an earlier run left half done (power may have gone at any step);
   reads a new assignment and refreshes its TUF metadata (python-tuf's ``ngclient``,
   trusting the root it was provisioned with);
3. checks the assignment (``director.verify_assignment``): its node signed it, for this
   device, its hardware and product, a counter above the last accepted, a target the
   verified TUF metadata lists with the same hash and length;
4. downloads and verifies the target (TUF checks length and hash), installs it into the
   inactive of two slots (A/B), runs the artifact's health check, then commits (the
   slot becomes active) or rolls back (the active slot is untouched). The install
   waits, holding the verified download, while the assignment's mode or window says so:
   download-only, soft without the owner's consent, outside the maintenance window;
5. fetches its feature licenses, verifies them (the node's signature, this device, not
   older than the list held) and enables what they allow, offline too within the grace;
   installs each licensed market app's release through TUF's delegations (only its
   territory's keys can have signed it) and disables an app whose license lapsed;
6. reports its state to its twin, signed with its own key, when it changed.

The state machine, ``IDLE → DOWNLOADING → DOWNLOADED → VERIFIED → INSTALLING →
INSTALLED → COMMITTED`` (or ``FAILED``, ``ROLLED_BACK``), is written to ``state.json``
atomically before each step, so a restart resumes where it stopped, and the active slot
always holds software that passed its health check. A refusal never stops the agent: it
keeps running its current version and reports why.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tuf.api import exceptions as tuf_errors
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from liquidfab.errors import LiquidfabError
from liquidfab.fleet.director import AssignmentRefused, verify_assignment
from liquidfab.fleet.entitlements import LicenseRefused, enabled_features, verify_licenses
from liquidfab.fleet.messages import TWIN_REPORTED
from liquidfab.fleet.windows import in_window
from liquidfab.identity import SigningKey
from liquidfab.protocol import Envelope, sign_message

__all__ = ["PHASES", "Agent", "AgentState", "PowerLoss", "load_state", "provision"]

PHASES = (
    "IDLE",
    "DOWNLOADING",
    "DOWNLOADED",
    "VERIFIED",
    "INSTALLING",
    "INSTALLED",
    "COMMITTED",
    "FAILED",
    "ROLLED_BACK",
)
SLOTS = ("a", "b")
# The poll answer is not signed, so a man in the middle could repeat an old one to hide
# new work or put the device to sleep: the agent reads the signed assignment and refreshes
# its TUF metadata at least this often anyway, and never sleeps longer than this.
RECHECK_SECONDS = 3600
MAX_SLEEP_SECONDS = 3600


class PowerLoss(Exception):
    """Raised by a fault hook to simulate the power going at a step."""


@dataclass
class AgentState:
    """What the agent keeps across restarts (``state.json``)."""

    device: str
    director: str
    product: str
    hardware: str
    active: str = "a"
    slots: dict[str, dict[str, Any] | None] = field(default_factory=lambda: {"a": None, "b": None})
    last_counter: int = 0
    phase: str = "IDLE"
    pending: dict[str, Any] | None = None
    last_error: str | None = None
    twin_version: int = 0
    attempted: str | None = None  # the target of the last assignment acted on or refused
    features: list[str] = field(default_factory=list)  # enabled by verified licenses
    license_error: str | None = None
    waiting: str | None = None  # why a verified download is not installed yet
    licenses_marker: int = 0  # the node's licenses marker the held list answers
    last_report: dict[str, Any] | None = None  # what the twin was last told
    checked_us: int = 0  # when the signed assignment and TUF metadata were last read
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)  # market apps installed
    app_errors: dict[str, str] = field(default_factory=dict)  # why an app was refused

    @property
    def running(self) -> dict[str, Any] | None:
        return self.slots.get(self.active)

    @property
    def inactive(self) -> str:
        return "b" if self.active == "a" else "a"


def provision(
    folder: Path,
    *,
    device_seed: bytes,
    director: str,
    product: str,
    hardware: str,
    root: bytes,
    factory_image: bytes = b"",
    factory_version: str = "0.0.0",
) -> None:
    """Write a device's state folder as the flashing station would: its key, the TUF
    root it trusts, and the factory image in slot A."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "device.key").write_text(
        base64.urlsafe_b64encode(device_seed).decode().rstrip("=") + "\n", encoding="ascii"
    )
    (folder / "device.key").chmod(0o600)
    (folder / "metadata").mkdir(exist_ok=True)
    (folder / "metadata" / "root.json").write_bytes(root)
    key = SigningKey(device_seed)
    fresh = time.time_ns() // 1000  # its TUF root came from the node just now
    state = AgentState(device=key.did, director=director, product=product, hardware=hardware,
                       checked_us=fresh)  # fmt: skip
    slot = folder / "slots" / "a"
    slot.mkdir(parents=True, exist_ok=True)
    (slot / "image").write_bytes(factory_image)
    state.slots["a"] = {
        "target": "factory",
        "version": factory_version,
        "sha256": hashlib.sha256(factory_image).hexdigest(),
    }
    _save(folder, state)


def _save(folder: Path, state: AgentState) -> None:
    tmp = folder / ".state.json.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(asdict(state), handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, folder / "state.json")


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def load_state(folder: Path) -> AgentState:
    """A device's state as a restarted agent reads it."""
    return _load(folder)


def _load(folder: Path) -> AgentState:
    try:
        data = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise LiquidfabError(f"{folder} is not a provisioned device (no state.json)") from e
    return AgentState(**data)


HealthCheck = Callable[[Path, dict[str, Any]], bool]
Hook = Callable[[str], None]


def default_health(slot: Path, target: dict[str, Any]) -> bool:
    """The image is there, whole, and says it is healthy (a real device boots it)."""
    image = slot / "image"
    return image.is_file() and hashlib.sha256(image.read_bytes()).hexdigest() == target["sha256"]


class Agent:
    """A device agent on its state folder. ``fetch(url) -> bytes | None`` reads from the
    node (None: not found); ``send(envelope) -> dict`` posts a signed message and returns
    the node's receipt body; ``hook(phase)`` is called as each phase is entered, where a
    test or the fleet simulation may raise ``PowerLoss``."""

    def __init__(
        self,
        folder: Path,
        *,
        fetch: Callable[[str], bytes | None],
        send: Callable[[Envelope], dict[str, Any]],
        health: HealthCheck = default_health,
        hook: Hook | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.state = _load(self.folder)
        seed = (self.folder / "device.key").read_text(encoding="ascii").strip()
        self.key = SigningKey(base64.urlsafe_b64decode(seed + "=" * (-len(seed) % 4)))
        if self.key.did != self.state.device:
            raise LiquidfabError("the device key does not match the device's state")
        self.fetch = fetch
        self.send = send
        self.health = health
        self.hook = hook or (lambda phase: None)
        self.sleep_seconds: int | None = None  # what the node last asked

    # -- steps ------------------------------------------------------------------------

    def _enter(self, phase: str) -> None:
        self.state.phase = phase
        _save(self.folder, self.state)
        self.hook(phase)

    def _updater(self) -> Updater:
        agent = self

        class _Fetcher(FetcherInterface):
            def _fetch(self, url: str) -> Iterator[bytes]:
                data = agent.fetch(url)
                if data is None:
                    raise tuf_errors.DownloadHTTPError(f"not found: {url}", 404)
                return iter([data])

        downloads = self.folder / "downloads"
        downloads.mkdir(exist_ok=True)
        return Updater(
            str(self.folder / "metadata"),
            "/tuf/metadata/",
            str(downloads),
            "/tuf/targets/",
            fetcher=_Fetcher(),
            bootstrap=None,  # trust the root in metadata/ (provisioned, then updated)
        )

    def poll(self, now_us: int | None = None) -> str:
        """One round (see the module); the phase it ends in."""
        now_us = now_us if now_us is not None else time.time_ns() // 1000
        hint = self._hint()
        try:
            if self.state.phase in ("IDLE", "COMMITTED", "FAILED", "ROLLED_BACK") or (
                self.state.waiting is not None
            ):
                self._check_for_work(hint, now_us)
            self._advance(now_us)
        except (AssignmentRefused, tuf_errors.RepositoryError, tuf_errors.DownloadError) as e:
            self._refuse(str(e))
        self._licenses(now_us, hint)
        self._report()
        return self.state.phase

    def _hint(self) -> dict[str, Any] | None:
        """The node's poll answer (sleep, assignment counter, licenses marker), or None
        when the node does not answer it (then every document is fetched)."""
        try:
            raw = self.fetch(f"/v1/devices/{self.state.device}/poll")
            hint = json.loads(raw) if raw is not None else None
        except (ValueError, tuf_errors.DownloadError):
            return None  # then every signed document is fetched and checked
        if not isinstance(hint, dict):
            return None
        sleep = hint.get("sleep_seconds")
        if isinstance(sleep, int) and sleep > 0:
            self.sleep_seconds = min(sleep, MAX_SLEEP_SECONDS)  # the answer is not signed
        return hint

    def _licenses(self, now_us: int, hint: dict[str, Any] | None) -> None:
        """Fetch and verify the license list when it changed or half its offline grace
        has passed; enable what the last verified list allows. A list that does not
        verify is refused and reported; the one held stays."""
        path = self.folder / "licenses.json"
        held = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        marker = hint.get("licenses") if hint is not None else None
        fresh = held is not None and (
            now_us - int(held["signed"]["as_of_us"])
            < int(held["signed"]["grace_seconds"]) * 500_000
        )
        wanted = not (fresh and marker == self.state.licenses_marker)
        try:
            raw = self.fetch(f"/v1/devices/{self.state.device}/licenses") if wanted else None
        except tuf_errors.DownloadError as e:  # too large or too slow: refused like garbage
            raw, self.state.license_error = None, f"malformed: {e}"
        if raw is not None:
            try:
                envelope = json.loads(raw)
                verify_licenses(
                    envelope,
                    issuer=self.state.director,
                    device=self.state.device,
                    not_before_us=held["signed"]["as_of_us"] if held else 0,
                )
                _write_json(path, envelope)
                held = envelope
            except (ValueError, LicenseRefused) as e:
                self.state.license_error = str(e)
            else:
                self.state.license_error = None
                if isinstance(marker, int):
                    self.state.licenses_marker = marker
        self.state.features = enabled_features(held["signed"], now_us) if held else []
        self._apps(held["signed"] if held else None)
        _write_json(self.folder / "features.json", {"enabled": self.state.features})

    def _apps(self, signed: dict[str, Any] | None) -> None:
        """Install each licensed market app's release and enable only the apps licensed
        now. A release is fetched through TUF's delegations, so only a key of the app's
        territory can have signed it, whatever the node says; a lapsed app stays on disk,
        disabled, until its license returns."""
        wanted: dict[str, str] = {}
        for lic in signed.get("licenses", []) if signed else []:
            target = lic.get("target")
            if isinstance(target, str) and lic.get("feature") in self.state.features:
                wanted[lic["feature"]] = target
        updater: Updater | None = None
        for app, target in sorted(wanted.items()):
            held = self.state.apps.get(app)
            if held is not None and held["target"] == target:
                continue
            try:
                if not target.startswith(f"{app}/") or target.count("/") != 2:
                    raise AssignmentRefused("not-the-app", f"{target} is no release of {app}")
                if updater is None:
                    updater = self._updater()
                    updater.refresh()
                info = updater.get_targetinfo(target)
                if info is None:
                    raise AssignmentRefused(
                        "not-delegated", f"no key of {app.split('/')[0]} signed {target}"
                    )
                custom = info.unrecognized_fields.get("custom", {})
                if custom.get("app") != app or custom.get("product") != self.state.product:
                    raise AssignmentRefused(
                        "incompatible", f"{target} is not {app} for this product"
                    )
                folder = self.folder / "apps" / app.removeprefix("@")
                folder.mkdir(parents=True, exist_ok=True)
                updater.download_target(info, str(folder / ".package.tmp"))  # TUF checks it
                os.replace(folder / ".package.tmp", folder / "package")
            except (AssignmentRefused, tuf_errors.RepositoryError, tuf_errors.DownloadError) as e:
                self.state.app_errors[app] = str(e)
                continue
            self.state.app_errors.pop(app, None)
            self.state.apps[app] = {"target": target, "version": custom.get("version"),
                                    "sha256": info.hashes["sha256"]}  # fmt: skip
        for app, held in self.state.apps.items():
            held["enabled"] = app in wanted  # a refused new release leaves the old one running

    def feature_enabled(self, feature: str) -> bool:
        """What an app on the device asks before it runs a paid feature."""
        return feature in self.state.features

    def app_enabled(self, app: str) -> bool:
        """Whether market app ``app`` is installed and licensed now."""
        held = self.state.apps.get(app)
        return bool(held and held.get("enabled"))

    def _refuse(self, reason: str) -> None:
        self.state.pending, self.state.waiting = None, None
        self.state.last_error = reason
        self._enter("FAILED")

    def _check_for_work(self, hint: dict[str, Any] | None, now_us: int) -> None:
        due = now_us - self.state.checked_us >= RECHECK_SECONDS * 1_000_000
        if hint is not None and hint.get("assignment") == self.state.last_counter and not due:
            return  # the node says the assignment has not moved
        if due:  # the poll answer is not signed: now and then trust only what is
            self.state.checked_us = now_us
            self._updater().refresh()  # a frozen or rolled-back repository shows here
            _save(self.folder, self.state)
        raw = self.fetch(f"/v1/devices/{self.state.device}/assignment")
        if raw is None:
            return
        try:
            envelope = json.loads(raw)
        except ValueError as e:
            raise AssignmentRefused("malformed", "the assignment is not JSON") from e
        if not isinstance(envelope, dict) or not isinstance(envelope.get("signed"), dict):
            raise AssignmentRefused("malformed", "an assignment has signed and signature")
        if envelope.get("signed", {}).get("counter") == self.state.last_counter:
            return  # the assignment already acted on: nothing new
        target = envelope["signed"].get("target")
        holding = self.state.pending if self.state.waiting is not None else None
        if holding is None:
            self.state.attempted = target if isinstance(target, str) else None
        updater = self._updater()
        updater.refresh()
        name = envelope.get("signed", {}).get("target", "")
        info = updater.get_targetinfo(name) if isinstance(name, str) and name else None
        hashes = {name: (info.hashes.get("sha256"), info.length)} if info is not None else {}
        signed = verify_assignment(
            envelope,
            director=self.state.director,
            device=self.state.device,
            hardware=self.state.hardware,
            product=self.state.product,
            last_counter=self.state.last_counter,
            target_hashes=hashes,
        )
        assert info is not None  # verify_assignment refuses a target TUF does not list
        listed = info.custom if isinstance(info.custom, dict) else {}
        if listed.get("product") != self.state.product or (
            listed.get("hardware") != self.state.hardware
        ):
            raise AssignmentRefused(
                "incompatible",
                f"the repository lists the target for {listed.get('product')} on "
                f"{listed.get('hardware')}",
            )  # the offline targets key signed this; the assignment's own fields may lie
        self.state.last_counter = signed["counter"]
        terms = {
            "mode": signed.get("mode", "forced"),
            "window": signed.get("window"),
            "consent": bool(signed.get("consent")),
        }
        if holding is not None and holding["sha256"] == signed["sha256"]:
            holding.update(terms)  # new terms for the download held: consent, a window
            _save(self.folder, self.state)
            return
        if holding is not None:  # another target replaces the one held
            self._download_path().unlink(missing_ok=True)
            self.state.pending, self.state.waiting = None, None
            self.state.attempted = signed["target"]
        running = self.state.running
        if running is not None and running["sha256"] == signed["sha256"]:
            self.state.last_error = None
            if holding is not None:
                self._enter("IDLE")
            else:
                _save(self.folder, self.state)
            return  # already running it
        self.state.pending = {
            "target": signed["target"],
            "sha256": signed["sha256"],
            "length": signed["length"],
            "version": listed.get("version"),
            "slot": self.state.inactive,
            **terms,
        }
        self.state.last_error = None
        self._enter("DOWNLOADING")

    def _hold(self, pending: dict[str, Any], now_us: int) -> str | None:
        """Why a verified download may not be installed now, or None."""
        if pending.get("mode") == "download-only":
            return "download-only"
        if pending.get("mode") == "soft" and not pending.get("consent"):
            return "consent"
        if not in_window(pending.get("window"), now_us):
            return "window"
        return None

    def _advance(self, now_us: int) -> None:
        while self.state.pending is not None:
            phase = self.state.phase
            if phase == "DOWNLOADING":
                self._download()
                self._enter("DOWNLOADED")
            elif phase == "DOWNLOADED":
                self._verify()
                self._enter("VERIFIED")
            elif phase == "VERIFIED":
                waiting = self._hold(self.state.pending, now_us)
                if waiting is not None:
                    if waiting != self.state.waiting:
                        self.state.waiting = waiting
                        _save(self.folder, self.state)
                    return  # holds the verified download; a later poll goes on
                self.state.waiting = None
                self._enter("INSTALLING")
            elif phase == "INSTALLING":
                self._install()
                self._enter("INSTALLED")
            elif phase == "INSTALLED":
                self._commit_or_roll_back()
            else:  # pragma: no cover - pending is cleared on every end state
                raise LiquidfabError(f"pending work in phase {phase}")

    def _download_path(self) -> Path:
        return self.folder / "downloads" / "pending.bin"

    def _download(self) -> None:
        pending = self.state.pending
        assert pending is not None
        updater = self._updater()
        updater.refresh()
        info = updater.get_targetinfo(pending["target"])
        if info is None or info.hashes.get("sha256") != pending["sha256"]:
            raise AssignmentRefused("mix-and-match", "the repository no longer backs the target")
        updater.download_target(info, str(self._download_path()))  # TUF checks length and hash

    def _verify(self) -> None:
        pending = self.state.pending
        assert pending is not None
        data = self._download_path().read_bytes()
        if hashlib.sha256(data).hexdigest() != pending["sha256"] or len(data) != pending["length"]:
            raise AssignmentRefused("bad-hash", "the downloaded image changed on disk")

    def _install(self) -> None:
        pending = self.state.pending
        assert pending is not None
        slot = self.folder / "slots" / pending["slot"]
        if slot.exists():
            shutil.rmtree(slot)  # installing again after a power loss starts clean
        slot.mkdir(parents=True)
        shutil.copyfile(self._download_path(), slot / "image")
        self.state.slots[pending["slot"]] = None  # not bootable until committed

    def _commit_or_roll_back(self) -> None:
        pending = self.state.pending
        assert pending is not None
        slot = self.folder / "slots" / pending["slot"]
        record = {k: pending[k] for k in ("target", "version", "sha256")}
        if self.health(slot, record):
            self.state.slots[pending["slot"]] = record
            self.state.active = pending["slot"]
            self.state.pending = None
            self._enter("COMMITTED")
        else:
            shutil.rmtree(slot, ignore_errors=True)
            self.state.slots[pending["slot"]] = None
            self.state.pending = None
            self.state.last_error = f"{record['target']} failed its health check"
            self._enter("ROLLED_BACK")
        self._download_path().unlink(missing_ok=True)

    def _report(self) -> None:
        """Tell the twin, when anything changed since it was last told."""
        running = self.state.running or {}
        held = self.state.pending if self.state.waiting is not None else None
        report = {
            "firmware": running.get("version"),
            "target": running.get("target"),
            "attempted": self.state.attempted,
            "phase": self.state.phase,
            "error": self.state.last_error,
            "slot": self.state.active,
            "features": self.state.features,
            "license_error": self.state.license_error,
            "downloaded": held["target"] if held else None,
            "waiting": self.state.waiting,
            "apps": {
                a: {"version": h["version"], "enabled": h["enabled"]}
                for a, h in sorted(self.state.apps.items())
            },
            "app_errors": dict(sorted(self.state.app_errors.items())),
        }
        if report == self.state.last_report:
            return
        for _ in range(2):  # a stale version: read the twin again once
            data = {"device": self.state.device, "version": self.state.twin_version,
                    "state": report}  # fmt: skip
            body = self.send(sign_message(self.key, TWIN_REPORTED, data))
            if "result" in body:
                self.state.twin_version = body["result"]["twin_version"]
                self.state.last_report = report
                break
            if body.get("code") != "stale-version":
                break
            self.state.twin_version = int(body.get("current", 0))
        _save(self.folder, self.state)
