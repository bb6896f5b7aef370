"""Maintenance windows: when a device may install (hawkBit's maintenance windows).

A window is ``{"start": "02:00", "minutes": 120, "days": ["sat", "sun"], "timezone":
"Europe/Berlin"}``: it opens at ``start`` local time on each of ``days`` (every day when
absent) and stays open ``minutes``, possibly past midnight. Downloads may happen at any
time; only the install waits, because that is when a device is out of service. The
device judges the window by its own clock, so a device offline at the opening still
installs inside the window and never outside it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["DAYS", "in_window", "window_problem"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_START = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def window_problem(window: Mapping[str, Any]) -> str | None:
    """Why a window is not one, or None."""
    if set(window) - {"start", "minutes", "days", "timezone"}:
        return "a window has start, minutes, days and timezone only"
    if not isinstance(window.get("start"), str) or not _START.match(window["start"]):
        return "start is a time of day, HH:MM"
    minutes = window.get("minutes")
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= 1440:
        return "minutes is a whole number from 1 to 1440"
    days = window.get("days", list(DAYS))
    if not isinstance(days, list) or not days or any(d not in DAYS for d in days):
        return f"days are some of {', '.join(DAYS)}"
    try:
        ZoneInfo(str(window.get("timezone", "UTC")))
    except (ZoneInfoNotFoundError, ValueError):
        return f"no time zone {window.get('timezone')!r}"
    return None


def in_window(window: Mapping[str, Any] | None, now_us: int) -> bool:
    """Whether ``now_us`` falls inside the window (no window: always)."""
    if not window:
        return True
    zone = ZoneInfo(str(window.get("timezone", "UTC")))
    now = datetime.fromtimestamp(now_us / 1_000_000, UTC).astimezone(zone)
    hour, minute = (int(x) for x in window["start"].split(":"))
    days = set(window.get("days", DAYS))
    for back in (0, 1):  # a window opened yesterday may still be open
        day = (now - timedelta(days=back)).date()
        if DAYS[day.weekday()] not in days:
            continue
        opens = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
        if opens <= now < opens + timedelta(minutes=int(window["minutes"])):
            return True
    return False
