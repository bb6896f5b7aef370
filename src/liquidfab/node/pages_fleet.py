"""The fleet rooms of the dashboard: devices with the versions they run and their twins,
and rollouts wave by wave.

Read-only and unauthenticated, like the production pages. Changing anything (a twin's
desired state, a rollout's course) is a signed message, so the rollout page shows the
message to send rather than a button. Device lists page in did order (``after`` = the
last did seen), as ``GET /v1/devices`` does.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Connection, func, select

from liquidfab.db.tables import devices, rollout_devices
from liquidfab.db.tables import rollouts as rollouts_table
from liquidfab.fleet import director, registry, rollouts
from liquidfab.fleet.messages import ROLLOUT_CONTROL
from liquidfab.node.pages import templates
from liquidfab.node.pages_production import display_names, render_page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
templates.env.globals["complete"] = rollouts.complete
PAGE = 50
ROLLOUTS_SHOWN = 100
FAILED_SHOWN = 50
Text = Annotated[str | None, Query(max_length=200)]
Attrs = Annotated[list[str] | None, Query(max_length=10)]
ACTIONS = {"running": ("pause", "abort"), "paused": ("resume", "abort"), "aborted": ()}


def _json(value: Any) -> str:
    """A twin value as a person reads it: text as it is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def _firmware(value: Any) -> str:
    return "unknown" if value is None or value == "" else str(value)


def _attributes(items: list[str]) -> tuple[dict[str, str], str | None]:
    """``name=value`` items as a dict (empty form fields skipped), and what was malformed."""
    wanted: dict[str, str] = {}
    for item in items:
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or len(name) > 64:
            return (
                wanted,
                f"An attribute filter is name=value, for example region=eu, not {item!r}.",
            )
        wanted[name.strip()] = value.strip()
    return wanted, None


# --- the fleet ------------------------------------------------------------------------------


def _census(
    conn: Connection, product: str | None, version: str | None, wanted: Mapping[str, str]
) -> dict[str, Any]:
    """How many devices match, per product@version and per running firmware.

    Attributes are JSON, so they are matched in Python (one query on both stores, as
    ``registry.list_devices`` does); only the firmware is read out of each twin.
    """
    firmware = devices.c.reported["firmware"]
    query = select(devices.c.product_id, devices.c.version, devices.c.attributes, firmware)
    if product is not None:
        query = query.where(devices.c.product_id == product)
    if version is not None:
        query = query.where(devices.c.version == version)
    versions: Counter[tuple[str, str]] = Counter()
    running: Counter[str] = Counter()
    for product_id, ver, attributes, fw in conn.execute(query).yield_per(500):
        if registry.attributes_match(attributes, wanted):
            versions[(product_id, ver)] += 1
            running[_firmware(fw)] += 1
    total = conn.execute(select(func.count()).select_from(devices)).scalar_one()

    def ranked(counts: Counter[Any]) -> list[tuple[Any, int]]:
        return sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))

    return {
        "registered": int(total),
        "matching": sum(versions.values()),
        "versions": ranked(versions),
        "running": ranked(running),
        "products": sorted(conn.execute(select(devices.c.product_id).distinct()).scalars()),
    }


def _query(**params: Any) -> str:
    """A /fleet query string from the filter, without empty parts."""
    pairs = [(k, v) for k, values in params.items() for v in _as_list(values) if v]
    return "?" + urlencode(pairs) if pairs else ""


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


@router.get("/fleet", response_class=HTMLResponse)
def fleet_page(
    request: Request,
    product: Text = None,
    version: Annotated[str | None, Query(max_length=100)] = None,
    attr: Attrs = None,
    after: Text = None,
) -> HTMLResponse:
    product, version = product or None, version or None  # an empty form field: no filter
    wanted, problem = _attributes(attr or [])

    def load(conn: Connection) -> tuple[Any, ...]:
        rows = registry.list_devices(
            conn, product=product, version=version, attributes=wanted, limit=PAGE + 1, after=after
        )
        return _census(conn, product, version, wanted), rows, display_names(conn)

    census, rows, names = request.app.state.node.database.read(load)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    attrs = [f"{k}={v}" for k, v in wanted.items()]
    return render_page(
        request,
        "fleet.html",
        400 if problem else 200,
        census=census,
        devices=rows,
        names=names,
        product=product,
        version=version,
        attrs=attrs,
        problem=problem,
        filtered=bool(product or version or wanted),
        later=_query(product=product, version=version, attr=attrs, after=rows[-1]["did"])
        if more
        else None,
        first=_query(product=product, version=version, attr=attrs) if after else None,
        filter_link=lambda p, v: _query(product=p, version=v, attr=attrs),
        firmware=_firmware,
    )


def _rollouts_of(conn: Connection, did: str) -> list[dict[str, Any]]:
    """Every rollout the device was given a target in, with its own wave and status."""
    query = (
        select(
            rollouts_table.c.id,
            rollouts_table.c.name,
            rollouts_table.c.state,
            rollouts_table.c.target,
            rollout_devices.c.wave,
            rollout_devices.c.status,
            rollout_devices.c.assigned_us,
        )
        .join(rollouts_table, rollouts_table.c.id == rollout_devices.c.rollout_id)
        .where(rollout_devices.c.device == did)
        .order_by(rollout_devices.c.assigned_us.desc(), rollouts_table.c.id)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


@router.get("/fleet/{did}", response_class=HTMLResponse)
def device_page(request: Request, did: str) -> HTMLResponse:
    def load(conn: Connection) -> tuple[Any, ...] | None:
        device = registry.get_device(conn, did) if len(did) <= 200 else None
        if device is None:
            return None
        return (
            device,
            director.get_assignment(conn, did),
            _rollouts_of(conn, did),
            display_names(conn),
        )

    found = request.app.state.node.database.read(load)
    if found is None:
        return render_page(request, "device.html", 404, device=None, did=did)
    device, assignment, taken, names = found
    return render_page(
        request,
        "device.html",
        device=device,
        twin={
            "desired": device["desired"],
            "reported": device["reported"],
            "delta": registry.delta(device["desired"], device["reported"]),
        },
        assignment=assignment,
        rollouts=taken,
        names=names,
        show=_json,
    )


# --- rollouts -------------------------------------------------------------------------------


def _totals(progress: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Devices given the target (``assigned``: all of them), and how many finished how."""
    succeeded = sum(w.get("succeeded", 0) for w in progress.values())
    failed = sum(w.get("failed", 0) for w in progress.values())
    pending = sum(w.get("assigned", 0) for w in progress.values())
    return {
        "assigned": succeeded + failed + pending,
        "succeeded": succeeded,
        "failed": failed,
        "pending": pending,
    }


def _bar(counts: Mapping[str, int], scale: int) -> list[dict[str, Any]]:
    """Stacked-bar segments (succeeded, failed, installing) as shares of ``scale``."""
    scale = max(scale, 1)
    return [
        {"kind": kind, "n": counts[kind], "width": round(100 * counts[kind] / scale, 2)}
        for kind in ("succeeded", "failed", "pending")
        if counts[kind]
    ]


def _progress_all(conn: Connection, ids: list[str]) -> dict[str, dict[str, dict[str, int]]]:
    """``rollouts.progress`` for many rollouts in one query."""
    query = (
        select(
            rollout_devices.c.rollout_id,
            rollout_devices.c.wave,
            rollout_devices.c.status,
            func.count(),
        )
        .where(rollout_devices.c.rollout_id.in_(ids))
        .group_by(rollout_devices.c.rollout_id, rollout_devices.c.wave, rollout_devices.c.status)
    )
    out: dict[str, dict[str, dict[str, int]]] = {i: {} for i in ids}
    for rollout_id, wave, status, n in conn.execute(query):
        out[rollout_id].setdefault(str(wave), {})[status] = int(n)
    return out


@router.get("/rollouts", response_class=HTMLResponse)
def rollouts_page(request: Request) -> HTMLResponse:
    def load(conn: Connection) -> tuple[Any, ...]:
        rows = rollouts.list_rollouts(conn, limit=ROLLOUTS_SHOWN)
        return rows, _progress_all(conn, [r["id"] for r in rows])

    rows, progress = request.app.state.node.database.read(load)
    entries = []
    for row in rows:
        totals = _totals(progress[row["id"]])
        entries.append({"rollout": row, "totals": totals, "bar": _bar(totals, totals["assigned"])})
    return render_page(request, "rollouts.html", entries=entries, limit=ROLLOUTS_SHOWN)


def _waves(
    rollout: Mapping[str, Any], progress: Mapping[str, Mapping[str, int]], population: int
) -> list[dict[str, Any]]:
    """Each wave: its share, the devices it plans now (its slice of the population as it is
    today), what it has assigned and how they finished, and the bar of it."""
    out = []
    before = 0
    for i, share in enumerate(rollout["waves"]):
        upto = math.ceil(share / 100 * population)
        planned, before = upto - before, upto
        counts = _totals({str(i): progress.get(str(i), {})})
        if i < rollout["wave"]:
            stage = "done"
        elif i == rollout["wave"]:
            stage = "current"
        else:
            stage = "waiting"
        out.append(
            {
                "index": i,
                "share": share,
                "planned": planned,
                "stage": stage,
                **counts,
                "bar": _bar(counts, max(planned, counts["assigned"])),
            }
        )
    return out


def _failed(conn: Connection, rollout_id: str) -> list[dict[str, Any]]:
    """The devices that failed the rollout's target, with the error each reports."""
    query = (
        select(
            rollout_devices.c.device,
            rollout_devices.c.wave,
            rollout_devices.c.done_us,
            devices.c.reported,
        )
        .join(devices, devices.c.did == rollout_devices.c.device)
        .where(rollout_devices.c.rollout_id == rollout_id, rollout_devices.c.status == "failed")
        .order_by(rollout_devices.c.done_us.desc(), rollout_devices.c.device)
        .limit(FAILED_SHOWN)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def _control_example(rollout_id: str, action: str) -> str:
    spec = {"type": ROLLOUT_CONTROL, "data": {"rollout": rollout_id, "action": action}}
    return json.dumps(spec, indent=2)


@router.get("/rollouts/{rollout_id}", response_class=HTMLResponse)
def rollout_page(request: Request, rollout_id: str) -> HTMLResponse:
    def load(conn: Connection) -> tuple[Any, ...] | None:
        row = rollouts.get_rollout(conn, rollout_id) if len(rollout_id) <= 100 else None
        if row is None:
            return None
        progress = rollouts.progress(conn, rollout_id)
        return row, progress, row["population"], _failed(conn, rollout_id), display_names(conn)

    found = request.app.state.node.database.read(load)
    if found is None:
        return render_page(request, "rollout.html", 404, rollout=None, rollout_id=rollout_id)
    row, progress, population, failed, names = found
    actions = ACTIONS.get(row["state"], ())
    totals = _totals(progress)
    return render_page(
        request,
        "rollout.html",
        rollout=row,
        waves=_waves(row, progress, population),
        totals=totals,
        population=population,
        failed=failed,
        names=names,
        actions=actions,
        example=_control_example(row["id"], actions[0]) if actions else None,
        control_type=ROLLOUT_CONTROL,
        node_url=str(request.base_url).rstrip("/"),
    )
