"""Runs of the virtual line as the node keeps them, for the dashboard's line page.

``liquidfab produce`` stores one row per run: a ``summary`` of what it measured and a
``trace`` of where each unit was when, so the line can be replayed at any simulated
moment. The trace is

    {"horizon": seconds,
     "stations": [{"id", "name", "servers"}, ...],          # line order
     "units": [{"order", "serial" | None, "variant", "ok",
                "visits": [[station id, start s, finish s], ...]}, ...]}

with at most ``TRACE_UNITS`` units (the last ones built), so a row stays small.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from liquidfab.db.tables import production_runs

__all__ = ["TRACE_UNITS", "get_run", "latest_run", "list_runs", "save_run", "units_at"]

TRACE_UNITS = 2000


def save_run(conn: Connection, row: dict[str, Any]) -> None:
    """Store a run (columns of ``production_runs``); the trace is cut to its last units."""
    trace = dict(row["trace"])
    trace["units"] = list(trace.get("units", []))[-TRACE_UNITS:]
    conn.execute(insert(production_runs), {**row, "trace": trace})


def get_run(conn: Connection, run_id: str) -> dict[str, Any] | None:
    found = conn.execute(select(production_runs).where(production_runs.c.id == run_id)).first()
    return dict(found._mapping) if found else None


def latest_run(conn: Connection) -> dict[str, Any] | None:
    found = conn.execute(
        select(production_runs).order_by(production_runs.c.finished_us.desc()).limit(1)
    ).first()
    return dict(found._mapping) if found else None


def list_runs(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    """Runs, newest first, without their traces."""
    columns = [c for c in production_runs.c if c.name != "trace"]
    query = select(*columns).order_by(production_runs.c.finished_us.desc()).limit(limit)
    return [dict(r._mapping) for r in conn.execute(query)]


def units_at(trace: dict[str, Any], t: float) -> dict[str, list[dict[str, Any]]]:
    """Which units each station holds at simulated time ``t`` (station id → units)."""
    out: dict[str, list[dict[str, Any]]] = {s["id"]: [] for s in trace.get("stations", [])}
    for unit in trace.get("units", []):
        for station, start, finish in unit.get("visits", []):
            if start <= t < finish and station in out:
                out[station].append(unit)
                break
    return out
