"""Rollouts: one target delivered to the devices a filter selects, wave by wave, stopping
itself when too many fail (hawkBit's groups with success and error thresholds, AWS IoT
Jobs' rate cap and abort criteria with a minimum sample).

- **Population**: the registered devices that match the filter (product, optionally its
  version, attributes) now, in did order. Devices registered later join: each wave is a
  cumulative percentage of the population as it is when the rollout advances.
- **Waves**: ``[10, 50, 100]`` assigns the target to the first 10% of the population,
  then 50%, then all. The next wave starts when the share of the current wave's devices
  that report running the target reaches ``success_threshold``.
- **Errors**: once ``min_sample`` devices have finished (succeeded or failed), a failed
  share above ``error_threshold`` pauses the rollout, with the reason.
- **Rate cap**: at most ``rate_per_minute`` new assignments in any minute (0: no cap).
- **Control**: pause, resume (thresholds are checked again), abort (no new
  assignments; those made stay, as devices may be installing).

A device's outcome comes from its twin's reported state (what the agent writes): it
succeeded when it runs the target, failed when it reports ``FAILED`` or ``ROLLED_BACK``
after attempting it. ``advance`` is called in the transaction of every message that can
change the picture: the rollout's creation and control, a device's report, a device's
registration.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from liquidfab.db.database import store_errors
from liquidfab.db.tables import rollout_devices, rollouts
from liquidfab.fleet import director, registry

__all__ = ["STATES", "advance", "get_rollout", "list_rollouts", "progress", "rollouts_of"]

STATES = ("running", "paused", "aborted")
FAILED_PHASES = frozenset({"FAILED", "ROLLED_BACK"})


def get_rollout(conn: Connection, rollout_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(rollouts).where(rollouts.c.id == rollout_id)).first()
    return dict(row._mapping) if row else None


def list_rollouts(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    query = select(rollouts).order_by(rollouts.c.created_us.desc()).limit(limit)
    return [dict(r._mapping) for r in conn.execute(query)]


def rollouts_of(conn: Connection, device: str) -> list[str]:
    """The rollouts, running or paused, this device takes part in (a paused one still
    records outcomes, so resuming judges them)."""
    query = (
        select(rollout_devices.c.rollout_id)
        .join(rollouts, rollouts.c.id == rollout_devices.c.rollout_id)
        .where(rollout_devices.c.device == device, rollouts.c.state.in_(("running", "paused")))
    )
    return [r[0] for r in conn.execute(query)]


def insert_rollout(conn: Connection, row: dict[str, Any]) -> None:
    with store_errors():
        conn.execute(insert(rollouts), row)


def set_state(conn: Connection, rollout_id: str, now_us: int, **values: Any) -> None:
    conn.execute(
        update(rollouts).where(rollouts.c.id == rollout_id).values(updated_us=now_us, **values)
    )


def _population(conn: Connection, rollout: dict[str, Any]) -> list[str]:
    f = rollout["filter"]
    rows = registry.list_devices(
        conn,
        product=f["product"],
        version=f.get("version"),
        attributes={k: str(v) for k, v in (f.get("attributes") or {}).items()},
        limit=10_000_000,
    )
    return [r["did"] for r in rows]


def _outcome(device: dict[str, Any] | None, target: str) -> str | None:
    if device is None:
        return None
    reported = device["reported"] or {}
    if reported.get("target") == target:
        return "succeeded"
    if reported.get("attempted") == target and reported.get("phase") in FAILED_PHASES:
        return "failed"
    return None


def _update_outcomes(
    conn: Connection, rollout: dict[str, Any], devices: Iterable[str], now_us: int
) -> None:
    target = rollout["target"]["name"]
    for did in devices:
        outcome = _outcome(registry.get_device(conn, did), target)
        if outcome is None:
            continue
        conn.execute(
            update(rollout_devices)
            .where(
                rollout_devices.c.rollout_id == rollout["id"],
                rollout_devices.c.device == did,
                rollout_devices.c.status != outcome,
            )
            .values(status=outcome, done_us=now_us)
        )


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


def _counts(conn: Connection, rollout_id: str) -> dict[str, int]:
    query = (
        select(rollout_devices.c.status, func.count())
        .where(rollout_devices.c.rollout_id == rollout_id)
        .group_by(rollout_devices.c.status)
    )
    return {status: int(n) for status, n in conn.execute(query)}


def advance(
    conn: Connection,
    rollout_id: str,
    now_us: int,
    *,
    reported: Iterable[str] | None = None,
) -> dict[str, Any] | None:
    """Bring a rollout up to date: the outcomes of ``reported`` devices (None: of every
    device still assigned), the error check, new assignments within the wave and the
    rate cap, the next wave. The rollout after."""
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
    counts = _counts(conn, rollout_id)
    failed, succeeded = counts.get("failed", 0), counts.get("succeeded", 0)
    finished = failed + succeeded
    if finished >= rollout["min_sample"] and failed > rollout["error_threshold"] * finished:
        reason = (
            f"{failed} of {finished} finished devices failed, above the error threshold "
            f"{rollout['error_threshold']:.0%}"
        )
        set_state(conn, rollout_id, now_us, state="paused", reason=reason)
        return get_rollout(conn, rollout_id)
    population = _population(conn, rollout)
    waves = rollout["waves"]
    wave = rollout["wave"]
    assigned = {
        r[0]
        for r in conn.execute(
            select(rollout_devices.c.device).where(rollout_devices.c.rollout_id == rollout_id)
        )
    }
    budget = _budget(conn, rollout, now_us)
    while True:
        members = population[: math.ceil(waves[wave] / 100 * len(population))]
        for did in members:
            if budget == 0:
                break
            if did in assigned:
                continue
            _assign(conn, rollout, did, wave, now_us)
            assigned.add(did)
            budget -= 1
        done = conn.execute(
            select(func.count()).where(
                rollout_devices.c.rollout_id == rollout_id,
                rollout_devices.c.status == "succeeded",
                rollout_devices.c.device.in_(members),
            )
        ).scalar()
        complete = members and all(d in assigned for d in members)
        if (
            wave + 1 < len(waves)
            and complete
            and int(done or 0) >= rollout["success_threshold"] * len(members)
        ):
            wave += 1
            set_state(conn, rollout_id, now_us, wave=wave)
            continue
        break
    return get_rollout(conn, rollout_id)


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
