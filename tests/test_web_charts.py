"""SVG charts: axes, ticks, units, one shape per value, and escaped labels."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from webadmin.pages.charts import Series, bar_chart, line_chart, nice_ceiling, ticks

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output, parsed to check its structure


@pytest.mark.parametrize(("value", "top"), [(0, 1), (0.3, 0.5), (7, 10), (10, 10), (11, 20),
                                             (180, 200), (240, 250), (1234, 2000)])
def test_nice_ceiling(value: float, top: float) -> None:
    """The y axis ends on a round number at or just above the largest value."""
    assert nice_ceiling(value) == pytest.approx(top)


def test_ticks_even() -> None:
    """Tick values split the axis evenly from 0 to its top."""
    assert ticks(200) == [0, 50, 100, 150, 200]
    assert ticks(50) == [0, 10, 20, 30, 40, 50]
    assert ticks(2.5) == pytest.approx([0, 0.5, 1, 1.5, 2, 2.5])


def test_bar_chart_shapes_axes_and_units() -> None:
    """One rect per positive value, tick labels formatted, unit and title shown."""
    svg = bar_chart(["1 Nov", "2 Nov", "3 Nov"],
                    [Series("home", [10, 0, 30]), Series("biz", [5, 7, None])],
                    title="Revenue per day", unit="USD", x_caption="day",
                    value_format=lambda v: f"${v:.0f}")
    root = parse(svg)
    bars = root.findall(f"{NS}rect[@class]")
    bar_rects = [r for r in bars if "bar" in r.get("class", "")]
    assert len(bar_rects) == 4  # 10, 30, 5, 7: zero and None draw nothing
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "Revenue per day" in texts and "USD" in texts and "day" in texts
    assert [t for t in texts if t and t.startswith("$")] == ["$0", "$10", "$20", "$30", "$40",
                                                             "$50"]
    heights = sorted(float(r.get("height", 0)) for r in bar_rects)
    assert heights[-1] > heights[0] > 0
    # legend for two series
    assert "home" in texts and "biz" in texts


def test_line_chart_gaps_and_points() -> None:
    """A None splits the line; each value is a point with its exact value as a title."""
    svg = line_chart(["00", "01", "02", "03"], [Series("online", [1, 2, None, 4])],
                     title="Sessions online", unit="sessions")
    root = parse(svg)
    assert len(root.findall(f"{NS}polyline")) == 2
    titles = [t.text for t in root.iter(f"{NS}title")]
    assert titles == ["00: 1", "01: 2", "03: 4"]


def test_labels_are_escaped() -> None:
    """Operator text (plan names) in labels, legends and titles cannot inject markup."""
    evil = '<script>alert(1)</script>" onload="x'
    svg = str(bar_chart([evil], [Series(evil, [3]), Series("b", [1])], title=evil, unit=evil))
    assert "<script>" not in svg and 'onload="x' not in svg
    root = parse(svg)
    assert evil in [t.text for t in root.iter(f"{NS}text")]
    assert not list(root.iter(f"{NS}script"))
