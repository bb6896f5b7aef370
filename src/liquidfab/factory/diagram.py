"""A layout drawn as an SVG diagram, by hand (no drawing library).

Line stations stand left to right in flow order, each with its name, id, parallel
servers (their count, drawn as stacked machines) and mean process time; the buffer in front
of each is a slotted box with its capacity (``∞`` when unbounded); rework stations sit
below the line, fed by the station that inspects and returning to the station they
send work back to. Badges mark setups, breakdowns and inspection. Given a KPI report
(``Report.to_dict()``), each station is shaded by its active share, carries a bar of
its state shares, and the bottleneck is outlined and labelled.

The output depends only on its inputs (no clock, no random ids), so it can be cached
and compared; every text is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import numpy as np

from liquidfab.factory.model import Layout, Station

__all__ = ["STATE_COLOURS", "layout_svg"]

STATE_COLOURS = {
    "working": "#2e7d32",
    "setup": "#f9a825",
    "failed": "#c62828",
    "blocked": "#6a1b9a",
    "starved": "#90a4ae",
    "off-shift": "#e0e0e0",
}

# Geometry, in SVG user units (pixels at 100 %).
_W, _H = 176, 104  # a station box
_GAP = 84  # between two stations: the buffer sits in the middle
_MARGIN = 24
_TOP = 34  # room above the line for badges
_EDGE = 46  # the source and sink columns
_REWORK_DROP = 92  # from the line's bottom to the top of the rework row
_INK, _MUTED, _LINE, _ACCENT = "#1d2330", "#5b6475", "#9aa3b2", "#0b6e4f"
_FONT = "system-ui, -apple-system, 'Segoe UI', sans-serif"
_MONO = "ui-monospace, SFMono-Regular, Menlo, monospace"


def _e(text: Any) -> str:
    return escape(str(text), quote=True)


def _n(x: float) -> str:
    """A coordinate, short and deterministic."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _unit(seconds: float) -> tuple[float, str]:
    if seconds < 120:
        return 1.0, "s"
    if seconds < 7200:
        return 60.0, "min"
    return 3600.0, "h"


def _num(x: float) -> str:
    return f"{x:.1f}" if x < 10 else f"{x:.0f}"


def _duration(seconds: float) -> str:
    scale, unit = _unit(seconds)
    return f"{_num(seconds / scale)} {unit}"


def _fit(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _mix(a: str, b: str, t: float) -> str:
    """The colour ``t`` of the way from ``a`` to ``b`` (hex)."""
    t = min(1.0, max(0.0, t))
    ca = [int(a[i : i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ca, cb, strict=True))


def _heat(active: float) -> str:
    """Fill for a station by its active share: pale when it waits on others, warm when
    it is the one holding the line back."""
    if active < 0.5:
        return _mix("#eef4fb", "#fff3c4", active / 0.5)
    return _mix("#fff3c4", "#f4a582", (active - 0.5) / 0.5)


def _process_text(st: Station, shares: np.ndarray) -> tuple[str, str]:
    """The mean process time over the mix, and how it varies (by variant, or its law)."""
    means = [d.mean for d in st.times]
    if not means:
        return "no time", ""
    mean = float(sum(s * m for s, m in zip(shares, means, strict=True)))
    low, high = min(means), max(means)
    if high - low > 1e-9 * max(1.0, high):
        scale, unit = _unit(mean)
        return (
            f"mean {_duration(mean)}",
            f"{_num(low / scale)}\u2013{_num(high / scale)} {unit} by variant",
        )
    kinds = {d.kind for d in st.times}  # type: ignore[attr-defined]
    kind = kinds.pop() if len(kinds) == 1 else "mixed"
    return f"mean {_duration(mean)}", ("fixed" if kind == "deterministic" else kind)


def _badges(st: Station) -> list[tuple[str, str, str]]:
    """(label, tooltip, colour) for what happens at a station besides processing."""
    out = []
    if st.setup is not None:
        nonzero = st.setup[st.setup > 0]
        mean = float(nonzero.mean()) if nonzero.size else 0.0
        out.append(("setup", f"variant changeover, {_duration(mean)} on average", "#b7791f"))
    if st.mtbf is not None and st.mttr is not None:
        clock = "operating" if st.failure_clock == "operating" else "calendar"
        out.append(
            (
                "breakdowns",
                f"MTBF {_duration(st.mtbf.mean)} ({clock} time), MTTR {_duration(st.mttr.mean)}",
                "#b42318",
            )
        )
    if st.inspection_yield is not None:
        where = "rework" if st.failed_to is not None else "scrap"
        out.append(
            (
                f"test {st.inspection_yield:.0%}",
                f"inspection: {st.inspection_yield:.1%} pass, the rest to {where}",
                "#1f5fa8",
            )
        )
    return out


def _kpis_by_station(report: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    if not report:
        return {}
    return {s["id"]: s for s in report.get("stations") or [] if isinstance(s, Mapping)}


def _buffer(x: float, y: float, capacity: int | None, owner: str) -> list[str]:
    """A slotted box centred at (x, y) with its capacity under it."""
    w, h = 46, 22
    label = "∞" if capacity is None else str(capacity)
    tip = (
        "unbounded buffer"
        if capacity is None
        else ("no buffer" if capacity == 0 else f"buffer: {capacity} places")
    )
    parts = [
        f'<g class="buffer" data-buffer="{_e(owner)}" data-capacity="{_e(label)}">',
        f"<title>{_e(tip)} in front of {_e(owner)}</title>",
    ]
    if capacity == 0:
        parts.append(
            f'<line x1="{_n(x - w / 2)}" y1="{_n(y)}" x2="{_n(x + w / 2)}" y2="{_n(y)}" '
            f'stroke="{_LINE}" stroke-width="2" stroke-dasharray="3 3"/>'
        )
    else:
        slots = 6 if capacity is None else min(capacity, 6)
        parts.append(
            f'<rect x="{_n(x - w / 2)}" y="{_n(y - h / 2)}" width="{w}" height="{h}" rx="3" '
            f'fill="#ffffff" stroke="{_MUTED}" stroke-width="1.2"/>'
        )
        for k in range(1, slots):
            sx = x - w / 2 + w * k / slots
            parts.append(
                f'<line x1="{_n(sx)}" y1="{_n(y - h / 2 + 3)}" x2="{_n(sx)}" '
                f'y2="{_n(y + h / 2 - 3)}" stroke="{_LINE}" stroke-width="1"/>'
            )
    parts.append(
        f'<text x="{_n(x)}" y="{_n(y + h / 2 + 15)}" text-anchor="middle" font-size="13" '
        f'fill="{_INK}" font-weight="600">{_e(label)}</text>'
    )
    parts.append("</g>")
    return parts


def _arrow(points: Sequence[tuple[float, float]], *, dashed: bool = False, label: str = "") -> str:
    d = " ".join(f"{'M' if i == 0 else 'L'}{_n(px)} {_n(py)}" for i, (px, py) in enumerate(points))
    dash = ' stroke-dasharray="5 4"' if dashed else ""
    path = (
        f'<path d="{d}" fill="none" stroke="{_MUTED}" stroke-width="1.6"{dash} '
        f'marker-end="url(#lf-arrow)"/>'
    )
    if not label:
        return path
    (x1, y1), (x2, y2) = points[len(points) // 2 - 1], points[len(points) // 2]
    return (
        path + f'<text x="{_n((x1 + x2) / 2 + 6)}" y="{_n((y1 + y2) / 2 + 4)}" font-size="11" '
        f'fill="{_MUTED}">{_e(label)}</text>'
    )


def _station(
    st: Station,
    x: float,
    y: float,
    shares: np.ndarray,
    kpi: Mapping[str, Any] | None,
    bottleneck: bool,
) -> list[str]:
    active = kpi.get("active") if kpi else None
    fill = _heat(float(active)) if isinstance(active, int | float) else "#ffffff"
    stroke, width = (_INK, 3.0) if bottleneck else (_MUTED, 1.3)
    kind = "rework" if st.rework else "line"
    parts = [
        f'<g class="station {kind}{" bottleneck" if bottleneck else ""}" id="st-{_e(st.id)}" '
        f'data-station="{_e(st.id)}" data-servers="{st.servers}">',
        f"<title>{_e(st.name)} ({_e(st.id)})"
        + (f" · active {float(active):.0%}" if isinstance(active, int | float) else "")
        + "</title>",
    ]
    for k in range(min(st.servers, 4) - 1, 0, -1):  # parallel machines, stacked behind
        parts.append(
            f'<rect x="{_n(x + 5 * k)}" y="{_n(y - 5 * k)}" width="{_W}" height="{_H}" rx="7" '
            f'fill="#ffffff" stroke="{_MUTED}" stroke-width="1"/>'
        )
    parts.append(
        f'<rect class="box" x="{_n(x)}" y="{_n(y)}" width="{_W}" height="{_H}" rx="7" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="{width}"/>'
    )
    cx = x + _W / 2
    parts.append(
        f'<text x="{_n(cx)}" y="{_n(y + 20)}" text-anchor="middle" font-size="12.5" '
        f'font-weight="600" fill="{_INK}">{_e(_fit(st.name, 22))}</text>'
    )
    parts.append(
        f'<text x="{_n(cx)}" y="{_n(y + 36)}" text-anchor="middle" font-size="11" '
        f'font-family="{_MONO}" fill="{_MUTED}">{_e(_fit(st.id, 24))}</text>'
    )
    mean, spread = _process_text(st, shares)
    parts.append(
        f'<text x="{_n(cx)}" y="{_n(y + 54)}" text-anchor="middle" font-size="12" '
        f'fill="{_INK}"><tspan font-weight="600">\u00d7{st.servers}</tspan> \u00b7 '
        f"{_e(mean)}</text>"
    )
    parts.append(
        f'<text x="{_n(cx)}" y="{_n(y + 70)}" text-anchor="middle" font-size="11" '
        f'fill="{_MUTED}">{_e(_fit(spread, 30))}</text>'
    )
    if kpi:
        # The station's time, by state, as one stacked bar along the bottom of its box.
        bx, by, bw, bh = x + 10, y + _H - 22, _W - 20, 8
        left = bx
        station_shares = kpi.get("shares") or {}
        for state, colour in STATE_COLOURS.items():
            share = station_shares.get(state)
            if not isinstance(share, int | float) or share <= 0:
                continue
            w = bw * min(1.0, float(share))
            parts.append(
                f'<rect class="share" data-state="{state}" x="{_n(left)}" y="{_n(by)}" '
                f'width="{_n(w)}" height="{bh}" fill="{colour}">'
                f"<title>{_e(state)} {float(share):.1%}</title></rect>"
            )
            left += w
        parts.append(
            f'<rect x="{_n(bx)}" y="{_n(by)}" width="{_n(bw)}" height="{bh}" fill="none" '
            f'stroke="{_LINE}" stroke-width="0.8"/>'
        )
        if isinstance(active, int | float):
            parts.append(
                f'<text x="{_n(cx)}" y="{_n(y + _H - 4)}" text-anchor="middle" font-size="10.5" '
                f'fill="{_MUTED}">active {float(active):.0%}</text>'
            )
    badges = _badges(st)
    bx = x
    for label, tip, colour in badges:
        w = 12 + 6.4 * len(label)
        parts.append(
            f'<g class="badge" data-badge="{_e(label.split()[0])}"><title>{_e(tip)}</title>'
            f'<rect x="{_n(bx)}" y="{_n(y - 22)}" width="{_n(w)}" height="17" rx="8.5" '
            f'fill="{colour}"/><text x="{_n(bx + w / 2)}" y="{_n(y - 9.5)}" '
            f'text-anchor="middle" font-size="10.5" fill="#ffffff">{_e(label)}</text></g>'
        )
        bx += w + 4
    if bottleneck:
        parts.append(
            f'<g class="bottleneck-mark"><rect x="{_n(x + _W - 82)}" y="{_n(y + _H + 4)}" '
            f'width="82" height="17" rx="3" fill="{_INK}"/><text x="{_n(x + _W - 41)}" '
            f'y="{_n(y + _H + 16.5)}" text-anchor="middle" font-size="10.5" fill="#ffffff" '
            f'font-weight="600">bottleneck</text></g>'
        )
    parts.append("</g>")
    return parts


def _rework_columns(layout: Layout, x_of: dict[int, float]) -> dict[int, float]:
    """Left edges of the rework boxes: under the stretch of line they serve, no overlap."""
    wanted: list[tuple[float, int]] = []
    for st in layout.stations:
        if not st.rework:
            continue
        feeders = [s.index for s in layout.stations if s.failed_to == st.index]
        spots = [x_of[i] for i in feeders if i in x_of]
        if st.next is not None and st.next in x_of:
            spots.append(x_of[st.next])
        centre = (min(spots) + max(spots)) / 2 if spots else _MARGIN + _EDGE + _GAP
        wanted.append((centre, st.index))
    wanted.sort()
    out: dict[int, float] = {}
    edge = -1e9
    for centre, index in wanted:
        left = max(centre, edge)
        out[index] = left
        edge = left + _W + _GAP / 2
    return out


_HEAT_LEGEND = (("waits on others", 0.0), ("half active", 0.5), ("always active", 1.0))


def _state_step(state: str) -> float:
    return 24 + 6.5 * len(state)


def _heat_step(label: str) -> float:
    return 36 + 6.2 * len(label)


def _legend_width() -> float:
    return (
        sum(_state_step(s) for s in STATE_COLOURS)
        + 12
        + sum(_heat_step(label) for label, _ in _HEAT_LEGEND)
    )


def _caption(layout: Layout) -> str:
    spec = layout.spec
    parts = [f"blocking {spec.blocking.replace('-', ' ')}"]
    if spec.arrivals.kind == "orders" and layout.interarrival is not None:
        parts.append(f"an order every {_duration(layout.interarrival.mean)}")
    else:
        parts.append("saturated line")
    parts.append(f"{len(layout.variants)} variant{'s' if len(layout.variants) != 1 else ''}")
    if layout.calendar is not None:
        hours = layout.calendar.share * 7 * 24
        parts.append(f"{hours:.0f} working hours a week")
    return " · ".join(parts)


def layout_svg(layout: Layout, report_dict: Mapping[str, Any] | None = None) -> str:
    """The layout as a standalone SVG document (UTF-8 text).

    ``report_dict`` (a ``Report.to_dict()``, possibly with None for non-finite numbers)
    shades each station by its active share and marks the bottleneck.
    """
    kpis = _kpis_by_station(report_dict)
    bottleneck = report_dict.get("bottleneck") if report_dict else None
    shares = layout.shares
    line = [layout.stations[i] for i in layout.line]
    rework = [st for st in layout.stations if st.rework]
    y = _TOP + 8.0
    x_of: dict[int, float] = {}
    x = _MARGIN + _EDGE + _GAP
    for st in line:
        x_of[st.index] = x
        x += _W + _GAP
    sink_x = x - _GAP + 30
    width = sink_x + _EDGE + _MARGIN
    rework_x = _rework_columns(layout, x_of)
    if rework_x:
        width = max(width, max(rework_x.values()) + _W + _MARGIN + 40)
    rework_y = y + _H + _REWORK_DROP
    bottom = (rework_y + _H) if rework else (y + _H + 24)
    legend_y = bottom + 34
    if kpis:
        width = max(width, _MARGIN * 2 + _legend_width())
    width = max(width, _MARGIN * 2 + 6.2 * len(_caption(layout)))
    height = legend_y + (38 if kpis else 14)
    mid = y + _H / 2

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(width)} {_n(height)}" '
        f'width="{_n(width)}" height="{_n(height)}" role="img" font-family="{_e(_FONT)}" '
        f'class="liquidfab-layout" data-layout="{_e(layout.id)}" '
        f'data-version="{_e(layout.version)}">',
        f"<title>{_e(layout.name)} ({_e(layout.id)}@{_e(layout.version)})</title>",
        "<defs>"
        '<marker id="lf-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" '
        f'fill="{_MUTED}"/></marker></defs>',
        f'<rect x="0" y="0" width="{_n(width)}" height="{_n(height)}" fill="#ffffff"/>',
    ]
    # Where work comes from, and where it goes.
    source_x = _MARGIN + _EDGE / 2
    arrivals = "orders" if layout.spec.arrivals.kind == "orders" else "saturated"
    out.append(
        f'<g class="source"><circle cx="{_n(source_x)}" cy="{_n(mid)}" r="16" fill="#ffffff" '
        f'stroke="{_ACCENT}" stroke-width="2"/><text x="{_n(source_x)}" y="{_n(mid + 34)}" '
        f'text-anchor="middle" font-size="11" fill="{_MUTED}">{_e(arrivals)}</text></g>'
    )
    out.append(
        f'<g class="sink"><rect x="{_n(sink_x)}" y="{_n(mid - 16)}" width="32" height="32" '
        f'rx="4" fill="{_ACCENT}"/><text x="{_n(sink_x + 16)}" y="{_n(mid + 34)}" '
        f'text-anchor="middle" font-size="11" fill="{_MUTED}">done</text></g>'
    )
    # The line: arrows through each buffer into each station.
    previous_right = source_x + 16
    for st in line:
        left = x_of[st.index]
        buffer_x = left - _GAP / 2
        out.append(_arrow([(previous_right, mid), (buffer_x - 23 - 2, mid)]))
        out.extend(_buffer(buffer_x, mid, st.buffer, st.id))
        out.append(_arrow([(buffer_x + 23, mid), (left - 2, mid)]))
        previous_right = left + _W
    out.append(_arrow([(previous_right, mid), (sink_x - 2, mid)]))
    # Rework: down from the inspecting station, back up to where work returns.
    for st in rework:
        left = rework_x[st.index]
        top = rework_y
        for feeder in (s for s in layout.stations if s.failed_to == st.index):
            if feeder.index not in x_of:
                continue
            fx = x_of[feeder.index] + _W * 0.7
            share = 1 - (feeder.inspection_yield or 1.0)
            out.append(
                _arrow(
                    [
                        (fx, y + _H),
                        (fx, top - 30),
                        (left + _W * 0.7, top - 30),
                        (left + _W * 0.7, top - 2),
                    ],
                    dashed=True,
                    label=f"fails {share:.0%}",
                )
            )
        if st.next is not None and st.next in x_of:
            rx = x_of[st.next] + _W * 0.3
            out.append(
                _arrow(
                    [
                        (left + _W * 0.3, top),
                        (left + _W * 0.3, top - 48),
                        (rx, top - 48),
                        (rx, y + _H + 2),
                    ],
                    dashed=True,
                    label="returns",
                )
            )
        out.extend(_buffer(left - 36, top + _H / 2, st.buffer, st.id))
        out.extend(_station(st, left, top, shares, kpis.get(st.id), st.id == bottleneck))
    for st in line:
        out.extend(_station(st, x_of[st.index], y, shares, kpis.get(st.id), st.id == bottleneck))
    # What kind of line this is, and (with KPIs) how to read the colours.
    out.append(
        f'<text class="caption" x="{_MARGIN}" y="{_n(legend_y - 8)}" font-size="12" '
        f'fill="{_MUTED}">{_e(_caption(layout))}</text>'
    )
    if kpis:
        lx = float(_MARGIN)
        ly = legend_y + 8
        out.append(f'<g class="legend" font-size="11" fill="{_MUTED}">')
        for state, colour in STATE_COLOURS.items():
            out.append(
                f'<rect x="{_n(lx)}" y="{_n(ly)}" width="11" height="11" fill="{colour}"/>'
                f'<text x="{_n(lx + 15)}" y="{_n(ly + 10)}">{_e(state)}</text>'
            )
            lx += _state_step(state)
        lx += 12
        for label, active in _HEAT_LEGEND:
            out.append(
                f'<rect x="{_n(lx)}" y="{_n(ly)}" width="22" height="11" fill="{_heat(active)}" '
                f'stroke="{_LINE}"/><text x="{_n(lx + 26)}" y="{_n(ly + 10)}">{_e(label)}</text>'
            )
            lx += _heat_step(label)
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
