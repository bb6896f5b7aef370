"""The layout diagram: well-formed SVG that shows the line as the layout says, escapes
every text, shades by the KPIs and always comes out the same."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from liquidfab.factory.diagram import STATE_COLOURS, layout_svg
from liquidfab.factory.model import layout_from_data, load_layout

ROOT = Path(__file__).resolve().parents[2]
EBIKE = ROOT / "examples" / "ebike" / "factory.yaml"
NS = {"svg": "http://www.w3.org/2000/svg"}

LINE = {
    "layout": {"id": "org.example.line", "version": "1.0.0", "name": "Line"},
    "mix": [{"name": "a"}, {"name": "b"}],
    "stations": [
        {"id": "cut", "name": "Cut", "buffer": 0, "process": 30},
        {
            "id": "weld",
            "name": "Weld",
            "servers": 3,
            "buffer": 4,
            "process": {"kind": "by-variant", "times": {"a": 60, "b": 90}},
            "setup": {"default": 120},
            "breakdowns": {"mtbf": 3600, "mttr": 300},
        },
        {
            "id": "check",
            "name": "Check",
            "buffer": 2,
            "process": {"kind": "exponential", "mean": 20},
            "inspection": {"yield": 0.95, "failed": "fix"},
        },
        {
            "id": "fix",
            "role": "rework",
            "returns_to": "weld",
            "buffer": "unbounded",
            "process": 200,
        },
    ],
}


def report_for(layout, bottleneck: str) -> dict:
    stations = []
    for i, st in enumerate(layout.stations):
        working = 0.2 + 0.15 * i
        stations.append(
            {
                "id": st.id,
                "name": st.name,
                "servers": st.servers,
                "shares": {
                    "working": working,
                    "setup": 0.05,
                    "failed": 0.05,
                    "blocked": 0.1,
                    "starved": 0.6 - working,
                    "off-shift": 0.0,
                },
                "active": working + 0.1,
            }
        )
    return {"stations": stations, "bottleneck": bottleneck}


@pytest.fixture
def line():
    return layout_from_data(LINE)


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def stations(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-station"): g for g in root.iterfind(".//svg:g[@data-station]", NS)}


def texts(element: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in element.iterfind(".//svg:text", NS)]


def test_line_stations_stand_left_to_right_in_flow_order(line):
    root = parse(layout_svg(line))
    found = stations(root)
    assert list(found) == ["fix", "cut", "weld", "check"]  # rework drawn first, below
    box = {sid: g.find("svg:rect[@class='box']", NS) for sid, g in found.items()}
    x = {sid: float(rect.get("x")) for sid, rect in box.items()}
    y = {sid: float(rect.get("y")) for sid, rect in box.items()}
    assert x["cut"] < x["weld"] < x["check"]
    assert y["cut"] == y["check"] and y["fix"] > y["cut"] + 60
    assert "rework" in found["fix"].get("class")


def test_stations_say_name_id_servers_and_time(line):
    found = stations(parse(layout_svg(line)))
    weld = texts(found["weld"])
    assert "Weld" in weld and "weld" in weld
    assert any("\u00d73" in t and "mean 75 s" in t for t in weld), weld  # (60 + 90) / 2
    assert any("60\u201390 s by variant" in t for t in weld), weld
    assert found["weld"].get("data-servers") == "3"
    # Three parallel machines: two more boxes stacked behind the station's own.
    assert len(found["weld"].findall("svg:rect", NS)) == 3
    assert len(found["cut"].findall("svg:rect", NS)) == 1
    assert any("exponential" in t for t in texts(found["check"]))
    assert any("fixed" in t for t in texts(found["cut"]))


def test_buffers_show_their_capacity(line):
    root = parse(layout_svg(line))
    buffers = {
        g.get("data-buffer"): g.get("data-capacity")
        for g in root.iterfind(".//svg:g[@data-buffer]", NS)
    }
    assert buffers == {"cut": "0", "weld": "4", "check": "2", "fix": "\u221e"}


def test_badges_mark_setups_breakdowns_and_inspection(line):
    found = stations(parse(layout_svg(line)))

    def badges(sid: str) -> set[str]:
        return {b.get("data-badge") for b in found[sid].iterfind("svg:g[@data-badge]", NS)}

    assert badges("weld") == {"setup", "breakdowns"}
    assert badges("check") == {"test"}
    assert badges("cut") == set()
    assert any("95%" in t for t in texts(found["check"]))


def test_rework_has_arrows_out_and_back(line):
    root = parse(layout_svg(line))
    dashed = [p for p in root.iterfind(".//svg:path", NS) if p.get("stroke-dasharray")]
    assert len(dashed) == 2  # check -> fix, fix -> weld
    labels = texts(root)
    assert "fails 5%" in labels and "returns" in labels
    assert all(p.get("marker-end") == "url(#lf-arrow)" for p in dashed)


def test_a_report_shades_the_stations_and_marks_the_bottleneck(line):
    plain = parse(layout_svg(line))
    assert plain.find(".//svg:g[@class='legend']", NS) is None
    assert not [g for g in stations(plain).values() if "bottleneck" in g.get("class")]

    root = parse(layout_svg(line, report_for(line, "weld")))
    found = stations(root)
    assert [s for s, g in found.items() if "bottleneck" in g.get("class")] == ["weld"]
    assert "bottleneck" in texts(found["weld"])
    fills = {s: g.find("svg:rect[@class='box']", NS).get("fill") for s, g in found.items()}
    assert len(set(fills.values())) == 4 and "#ffffff" not in fills.values(), fills
    bar = {r.get("data-state") for r in found["cut"].iterfind(".//svg:rect[@data-state]", NS)}
    assert bar == {"working", "setup", "failed", "blocked", "starved"}  # off-shift is 0
    assert any(t.startswith("active ") for t in texts(found["cut"]))
    legend = root.find(".//svg:g[@class='legend']", NS)
    assert legend is not None and set(STATE_COLOURS) <= set(texts(legend))


def test_a_report_with_missing_numbers_still_draws(line):
    report = report_for(line, "cut")
    report["stations"][0]["active"] = None
    report["stations"][1]["shares"]["working"] = None
    del report["stations"][2]
    parse(layout_svg(line, report))


def test_every_text_is_escaped():
    data = {
        **LINE,
        "layout": {**LINE["layout"], "name": "<b>Line</b> & \"quotes\" 'too'"},
        "stations": [
            {**LINE["stations"][0], "name": "</text><script>alert(1)</script>"},
            *LINE["stations"][1:],
        ],
    }
    svg = layout_svg(layout_from_data(data))
    root = parse(svg)
    assert "<script" not in svg and "<b>" not in svg
    assert root.find(".//svg:script", NS) is None
    assert "<b>Line</b> & \"quotes\" 'too'" in root.find("svg:title", NS).text
    assert any("</text><script>" in t for t in texts(stations(root)["cut"]))


def test_output_is_deterministic(line):
    report = report_for(line, "check")
    assert layout_svg(line, report) == layout_svg(layout_from_data(LINE), report)
    assert layout_svg(line) == layout_svg(line)


def test_the_ebike_line():
    layout = load_layout(EBIKE)
    root = parse(layout_svg(layout))
    assert root.get("data-layout") == layout.id
    found = stations(root)
    assert set(found) == {st.id for st in layout.stations}
    assert "rework" in found["rework"].get("class")
    width = float(root.get("width"))
    right = max(float(g.find("svg:rect[@class='box']", NS).get("x")) for g in found.values())
    assert right < width
    caption = "".join(root.find(".//svg:text[@class='caption']", NS).itertext())
    assert "3 variants" in caption and "80 working hours a week" in caption


def test_an_order_stream_is_named_in_the_caption():
    data = {**LINE, "arrivals": {"kind": "orders", "interarrival": 600}}
    root = parse(layout_svg(layout_from_data(data)))
    caption = "".join(root.find(".//svg:text[@class='caption']", NS).itertext())
    assert "an order every 10 min" in caption
