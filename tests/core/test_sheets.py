"""Map sheet composer: paper sizes, the scale rules, the streaming PNG writer.

Expected values are hand computations (ISO 216 sizes, the rounding rule done by hand) or
matplotlib's own PNG output decoded by Pillow."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest
from PIL import Image

from multiplan.core.sheets import (
    PAPER_MM,
    SHEETS,
    fit_scale,
    format_scale,
    make_layout,
    nice_scale,
    paper_size,
    write_png_strips,
)
from multiplan.core.sheets.layout import format_length, map_extent, scalebar_segment


@pytest.mark.parametrize(("paper", "orientation", "size"), [
    ("A4", "portrait", (210, 297)), ("A4", "landscape", (297, 210)),
    ("A3", "landscape", (420, 297)), ("A2", "portrait", (420, 594)),
    ("A1", "landscape", (841, 594)), ("A0", "portrait", (841, 1189)),
])
def test_iso_paper_sizes(paper: str, orientation: str, size: tuple[int, int]) -> None:
    assert paper_size(paper, orientation) == size


def test_unknown_paper_refused() -> None:
    with pytest.raises(ValueError):
        paper_size("B5", "portrait")
    with pytest.raises(ValueError):
        paper_size("A4", "sideways")


@pytest.mark.parametrize(("n_min", "expected"), [
    (187_345, 190_000), (45_310, 46_000), (100_000, 100_000), (100_001, 110_000),
    (999, 1_000), (230_000, 230_000), (1_234_567, 1_300_000), (9_901, 10_000),
])
def test_nice_scale_rounds_up_to_two_significant_figures(n_min: float, expected: int) -> None:
    assert nice_scale(n_min) == expected


def test_fit_scale_fits_and_is_at_most_ten_percent_loose() -> None:
    # a 60 km × 40 km county in a 380 × 230 mm frame: width needs 60000·1.06/0.38
    bounds = (400_000.0, 3_000_000.0, 460_000.0, 3_040_000.0)
    n = fit_scale(bounds, 380.0, 230.0)
    need = max(60_000 * 1.06 / 0.38, 40_000 * 1.06 / 0.23)  # = 184 347.8 (height limits)
    assert n == 190_000
    assert need <= n <= need * 1.1
    ext = map_extent((430_000.0, 3_020_000.0), n, 380.0, 230.0)
    assert ext[2] - ext[0] == pytest.approx(380 / 1000 * 190_000)
    assert ext[3] - ext[1] == pytest.approx(230 / 1000 * 190_000)
    assert ext[0] < bounds[0] and ext[2] > bounds[2] and ext[1] < bounds[1] and ext[3] > bounds[3]


@pytest.mark.parametrize(("scale", "target", "segment"), [
    (230_000, 57.6, 2_500.0),  # 57.6 mm = 13.25 km → 4 × 2.5 km
    (100_000, 50.0, 1_000.0),  # 12.5 km limit per segment 1.25 km → 1 km
    (10_000, 40.0, 100.0),  # 100 m per segment
    (50_000, 60.0, 500.0),  # 750 m → 500 m
])
def test_scalebar_segment_is_a_round_length(scale: int, target: float, segment: float) -> None:
    got = scalebar_segment(scale, target)
    assert got == pytest.approx(segment)
    assert 4 * got / scale * 1000 <= target + 1e-9


def test_labels() -> None:
    assert format_scale(190_000) == "1:190 000"
    assert format_length(2_500, "km") == "2.5"
    assert format_length(10_000, "km") == "10"
    assert format_length(250, "m") == "250"


@pytest.mark.parametrize("paper", list(PAPER_MM))
@pytest.mark.parametrize("orientation", ["landscape", "portrait"])
def test_layout_boxes_nest(paper: str, orientation: str) -> None:
    lo = make_layout(paper, orientation)
    for inner, outer in [(lo.inner, lo.outer), (lo.map, lo.inner), (lo.panel, lo.inner),
                         (lo.title, lo.inner)]:
        assert inner.x >= outer.x and inner.y >= outer.y
        assert inner.x1 <= outer.x1 + 1e-9 and inner.y1 <= outer.y1 + 1e-9
    # map, panel and title do not overlap
    for a, b in [(lo.map, lo.panel), (lo.map, lo.title), (lo.panel, lo.title)]:
        assert a.x1 <= b.x + 1e-9 or b.x1 <= a.x + 1e-9 or a.y1 <= b.y + 1e-9 or \
            b.y1 <= a.y + 1e-9
    assert lo.map.w > 0.5 * lo.width * (0.7 if orientation == "landscape" else 1)


def test_standard_sheet_keys() -> None:
    assert set(SHEETS) == {"landuse", "controls", "sansheng", "assessment_ecology",
                           "assessment_agriculture", "assessment_urban", "conflicts"}
    assert SHEETS["landuse"].zh == "国土空间用地用海规划图"
    assert SHEETS["conflicts"].zh == "差异图斑分布图"
    assert all(s.admin_boundaries for s in SHEETS.values())


def _figure() -> object:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.1, 2.3), facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.1, 0.1, 0.8, 0.8))
    x = np.linspace(0, 2 * math.pi, 200)
    ax.fill_between(x, np.sin(x), color="tab:orange")
    ax.plot(x, np.cos(x), color="tab:blue", lw=2)
    fig.text(0.5, 0.95, "strip test", ha="center")
    return fig


def test_strip_png_equals_matplotlib_png(tmp_path) -> None:
    """Rendering in 23-row strips gives the image matplotlib renders in one piece."""
    fig = _figure()
    dpi = 100
    out = tmp_path / "strips.png"
    w, h = write_png_strips(fig, out, dpi, strip_pixels=310 * 23)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    ref = np.asarray(Image.open(buf).convert("RGB")).astype(int)
    got_img = Image.open(out)
    assert got_img.size == (w, h) == (ref.shape[1], ref.shape[0])
    assert got_img.info.get("dpi") == pytest.approx((dpi, dpi), abs=0.01)
    got = np.asarray(got_img.convert("RGB")).astype(int)

    def frac(a: np.ndarray, b: np.ndarray) -> float:
        return float((np.abs(a - b).max(axis=2) > 60).mean())

    same = frac(got, ref)
    # the strips line up: no row lost or doubled (a one-row shift differs far more) and
    # only antialiased edge pixels differ (Agg snaps paths per band)
    shifted = min(frac(got[1:], ref[:-1]), frac(got[:-1], ref[1:]))
    assert same < 0.02
    assert same < 0.4 * shifted
    assert np.abs(got - ref).mean() < 2.0


def test_legend_stays_in_its_box_and_counts_what_it_leaves_out() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

    from multiplan.core.sheets import elements as el
    from multiplan.core.sheets.layout import Box
    from multiplan.core.sheets.themes import LegendItem, Style

    fig = Figure(figsize=(297 / 25.4, 210 / 25.4))
    FigureCanvasAgg(fig)
    p = el.Painter(fig, 297, 210, FontProperties(family=["DejaVu Sans"]), 0.707)
    items = [LegendItem(f"{i:04d}", f"class {i}", Style(face=(i % 255, 100, 150)))
             for i in range(400)]
    box = Box(10, 10, 60, 100)
    el.draw_legend(p, box, [("", items)])
    shown = [t for t in fig.texts if t.get_text()[:4].isdigit()]
    note = [t for t in fig.texts if "另有" in t.get_text()]
    assert len(note) == 1
    left = int(re.search(r"另有 (\d+) 项", note[0].get_text()).group(1))
    assert len(shown) + left == 400
    for t in [*shown, *note]:
        x, y = t.get_position()  # mm (the painter's transform)
        assert box.x <= x <= box.x1 and box.y <= y <= box.y1
