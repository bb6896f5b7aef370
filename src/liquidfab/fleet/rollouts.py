"""Rollouts: one target delivered to the devices a filter selects, wave by wave, stopping
itself when too many fail (hawkBit's groups with success and error thresholds, AWS IoT
Jobs' rate cap and abort criteria with a minimum sample).

- **Population**: the registered devices that match the filter (product, optionally its
  version, attributes, a named group) now, in did order. Devices registered later join:
  each wave is a cumulative percentage of the population as it is when the rollout advances.
- **Waves**: ``[10, 50, 100]`` assigns the target to the first 10% of the population,
  then 50%, then all. The next wave starts when the share of the current wave's devices
  that report running the target reaches ``success_threshold``. A wave whose devices
  have all finished below it can never pass, so the rollout pauses and says so;
  resuming lets that wave pass (``accepted_wave``), as an operator who looked decided.
- **Errors**: once ``min_sample`` devices have finished (succeeded or failed), a failed
  share above ``error_threshold`` pauses the rollout, with the reason.
- **Rate cap**: at most ``rate_per_minute`` new assignments in any minute (0: no cap).
- **Control**: pause, resume (thresholds are checked again), abort (no new
  assignments; those made stay, as devices may be installing).
- **Mode and window**: each assignment carries the rollout's mode (forced, soft: the
  device installs once its owner consents, download-only: it downloads and verifies
  and waits) and maintenance window (installs wait for it); see ``agent``.

A device's outcome comes from its twin's reported state (what the agent writes): it
succeeded when it runs the target, failed when it reports ``FAILED`` or ``ROLLED_BACK``
after attempting it; in download-only mode it succeeded once it holds the target
verified. ``advance`` is called in the transaction of every message that can change the
picture: the rollout's creation and control, a device's report, a device's registration.

The rollout row keeps its counters (population, assigned, succeeded, failed), moved as
devices report, so a report costs a few statements, not a census of the fleet; the
population is counted again only when a device registers or the rollout starts or
resumes, and read in full only when a wave needs new members.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from liquidfab.db.database import store_errors
from liquidfab.db.tables import rollout_devices, rollouts
from liquidfab.fleet import director, groups, registry
from liquidfab.protocol.registry import Context

__all__ = [
    "MODES",
    "STATES",
    "advance",
    "complete",
    "get_rollout",
    "list_rollouts",
    "population_query",
    "progress",
    "rollouts_of",
]

STATES = ("running", "paused", "aborted")
MODES = ("forced", "soft", "download-only")
FAILED_PHASES = frozenset({"FAILED", "ROLLED_BACK"})


def get_rollout(conn: Connection, rollout_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(rollouts).where(rollouts.c.id == rollout_id)).first()
    return dict(row._mapping) if row else None


def list_rollouts(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    query = select(rollouts).order_by(rollouts.c.created_us.desc()).limit(limit)
    return [dict(r._mapping) for r in conn.execute(query)]


def complete(rollout: dict[str, Any]) -> bool:
    """Whether a running rollout has reached its whole population and every device it
    assigned has finished. It stays running, so devices registered later still join."""
    return (
        rollout["state"] == "running"
        and rollout["wave"] == len(rollout["waves"]) - 1
        and rollout["population"] > 0
        and rollout["assigned"] >= rollout["population"]
        and rollout["succeeded"] + rollout["failed"] >= rollout["assigned"]
    )


def rollouts_of(conn: Connection, device: str) -> list[str]:
    """The rollouts, running or paused, whose outcome for this device may still change:
    it has not yet succeeded in them (a paused one still records outcomes, so resuming
    judges them). A device that succeeded is done with the rollout; its later reports
    cost the rollout nothing."""
    return [r[0] for r in conn.execute(_ROLLOUTS_OF, {"device": device})]


_ROLLOUTS_OF = (  # built once: it runs on every report a device sends
    select(rollout_devices.c.rollout_id)
    .join(rollouts, rollouts.c.id == rollout_devices.c.rollout_id)
    .where(
        rollout_devices.c.device == bindparam("device"),
        rollout_devices.c.status != "succeeded",
        rollouts.c.state.in_(("running", "paused")),
    )
)


def insert_rollout(conn: Connection, row: dict[str, Any]) -> None:
    with store_errors():
        conn.execute(insert(rollouts), row)


def set_state(conn: Connection, rollout_id: str, now_us: int, **values: Any) -> None:
    conn.execute(
        update(rollouts).where(rollouts.c.id == rollout_id).values(updated_us=now_us, **values)
    )


def population_query(conn: Connection, rollout: dict[str, Any]) -> dict[str, Any]:
    """The rollout's filter joined with its group's query: what selects its population."""
    return groups.effective_query(conn, rollout["filter"])


def _outcome(device: dict[str, Any] | None, rollout: dict[str, Any]) -> str | None:
    if device is None:
        return None
    target = rollout["target"]["name"]
    reported = device["reported"] or {}
    if reported.get("target") == target:
        return "succeeded"
    if rollout.get("mode") == "download-only" and reported.get("downloaded") == target:
        return "succeeded"
    if reported.get("attempted") == target and reported.get("phase") in FAILED_PHASES:
        return "failed"
    return None


def _update_outcomes(
    conn: Connection, rollout: dict[str, Any], dids: Iterable[str], now_us: int
) -> None:
    """Record how reported devices finished and move the rollout's counters with them."""
    moved = {"succeeded": 0, "failed": 0}
    for did in dids:
        outcome = _outcome(registry.get_device(conn, did), rollout)
        if outcome is None:
            continue
        before = conn.execute(
            select(rollout_devices.c.status).where(
                rollout_devices.c.rollout_id == rollout["id"], rollout_devices.c.device == did
            )
        ).scalar()
        if before is None or before == outcome:
            continue
        conn.execute(
            update(rollout_devices)
            .where(rollout_devices.c.rollout_id == rollout["id"], rollout_devices.c.device == did)
            .values(status=outcome, done_us=now_us)
        )
        moved[outcome] += 1
        if before in moved:
            moved[before] -= 1
    if any(moved.values()):
        conn.execute(
            update(rollouts)
            .where(rollouts.c.id == rollout["id"])
            .values(
                succeeded=rollouts.c.succeeded + moved["succeeded"],
                failed=rollouts.c.failed + moved["failed"],
            )
        )
        rollout["succeeded"] += moved["succeeded"]
        rollout["failed"] += moved["failed"]


def progress(conn: Connection, rollout_id: str) -> dict[str, dict[str, int]]:
    """Per wave (as text) the count of devices per status."""
    query = (
        select(rollout_devices.c.wave, rollout_devices.c.status, func.count())
        .where(rollout_devices.c.rollout_id == rollout_id)
        .group_by(rollout_devices.c.wave, rollout_devices.c.status)
    )
    out: dict[str, dict[str, int]] = {}
    for wave, status, count in conn.execute(query):
        out.setdefault(str(wave), {})[status] = int(count)
    return out


def count_population(conn: Connection, rollout: dict[str, Any]) -> int:
    return registry.count_matching(conn, **population_query(conn, rollout))


def advance(
    ctx: Context,
    rollout_id: str,
    *,
    reported: Iterable[str] | None = None,
    recount: bool = False,
) -> dict[str, Any] | None:
    """Bring a rollout up to date: the outcomes of ``reported`` devices (None: of every
    device still assigned), the error check, new assignments within the wave and the
    rate cap, the next wave. ``recount``: the population may have changed (a device
    registered, the rollout started or resumed). The rollout after."""
    conn, now_us = ctx.conn, ctx.now_us
    rollout = get_rollout(conn, rollout_id)
    if rollout is None:
        return None
    if reported is None:
        reported = [
            r[0]
            for r in conn.execute(
                select(rollout_devices.c.device).where(
                    rollout_devices.c.rollout_id == rollout_id,
                    rollout_devices.c.status == "assigned",
                )
            )
        ]
    _update_outcomes(conn, rollout, reported, now_us)
    if rollout["state"] != "running":
        return rollout
    failed, succeeded = rollout["failed"], rollout["succeeded"]
    finished = failed + succeeded
    if finished >= rollout["min_sample"] and failed > rollout["error_threshold"] * finished:
        reason = (
            f"{failed} of {finished} finished devices failed, above the error threshold "
            f"{rollout['error_threshold']:.0%}"
        )
        set_state(conn, rollout_id, now_us, state="paused", reason=reason)
        return get_rollout(conn, rollout_id)
    population = rollout["population"]
    if recount:
        population = count_population(conn, rollout)
    waves, wave, assigned = rollout["waves"], rollout["wave"], rollout["assigned"]
    budget: int | None = None
    while True:
        size = math.ceil(waves[wave] / 100 * population)
        if assigned < size:
            if budget is None:
                budget = _budget(conn, rollout, now_us)
            want = size - assigned if budget < 0 else min(budget, size - assigned)
            if want > 0:
                fresh = _unassigned(conn, rollout, want)
                for did in fresh:
                    _assign(conn, rollout, did, wave, now_us)
                    ctx.notices.append(("device", did))
                assigned += len(fresh)
                budget = budget - len(fresh) if budget >= 0 else budget
        if wave + 1 < len(waves) and size > 0 and assigned >= size:
            if succeeded >= rollout["success_threshold"] * size or (
                wave <= rollout["accepted_wave"]
            ):
                wave += 1
                continue
            if succeeded + rollout["failed"] >= assigned:  # all finished: it cannot pass
                reason = (
                    f"wave {wave + 1} finished with {succeeded} of {size} devices succeeded, "
                    f"below the success threshold {rollout['success_threshold']:.0%}; "
                    "resume to go on"
                )
                set_state(conn, rollout_id, now_us, state="paused", reason=reason,
                          population=population, assigned=assigned, wave=wave)  # fmt: skip
                return get_rollout(conn, rollout_id)
        break
    changes = {"population": population, "assigned": assigned, "wave": wave}
    if any(rollout[k] != v for k, v in changes.items()):
        set_state(conn, rollout_id, now_us, **changes)
        rollout.update(changes)
    return rollout


def _unassigned(conn: Connection, rollout: dict[str, Any], want: int) -> list[str]:
    """The next ``want`` devices of the population, in did order, not yet assigned."""
    taken = {
        r[0]
        for r in conn.execute(
            select(rollout_devices.c.device).where(rollout_devices.c.rollout_id == rollout["id"])
        )
    }
    out: list[str] = []
    for did in registry.matching(conn, **population_query(conn, rollout)):
        if did not in taken:
            out.append(did)
            if len(out) >= want:
                break
    return out


def _budget(conn: Connection, rollout: dict[str, Any], now_us: int) -> int:
    if rollout["rate_per_minute"] <= 0:
        return -1  # no cap: never reaches zero
    recent = conn.execute(
        select(func.count()).where(
            rollout_devices.c.rollout_id == rollout["id"],
            rollout_devices.c.assigned_us > now_us - 60_000_000,
        )
    ).scalar()
    return max(0, rollout["rate_per_minute"] - int(recent or 0))


def _assign(conn: Connection, rollout: dict[str, Any], did: str, wave: int, now_us: int) -> None:
    target = rollout["target"]
    director.store_assignment(
        conn,
        {
            "device": did,
            "target": target["name"],
            "sha256": target["sha256"],
            "length": target["length"],
            "custom": target["custom"],
            "assigned_by": f"rollout {rollout['id']}",
            "assigned_us": now_us,
            "mode": rollout["mode"],
            "window": rollout["window"],
            "consent_by": None,
        },
    )
    with store_errors():
        conn.execute(
            insert(rollout_devices),
            {
                "rollout_id": rollout["id"],
                "device": did,
                "wave": wave,
                "status": "assigned",
                "assigned_us": now_us,
                "done_us": None,
            },
        )
