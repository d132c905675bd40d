"""Paper sizes, the sheet layout (where frame, title, map, panel go, in millimetres) and the
scale rules.

Every position here is in millimetres on the paper, origin at the lower-left corner. The
layout is drawn for A3 and scaled linearly with the paper's short side (factor ``k``), so an
A0 sheet is an A3 sheet enlarged 2.83×: the same proportions, a larger map.

Scale rule (``fit_scale``): the map frame fills the space left by the title and the panel;
the smallest N for which the county's bounding box, grown by ``FIT_PAD`` on each side, fits
into the frame at 1:N is rounded *up* to two significant figures (1:187 345 → 1:190 000;
1:45 310 → 1:46 000). At county scale (1:100 000 – 1:999 999) that is a step of 10 000, and the
map is never more than 10 % smaller than the largest that would fit.

Scale bar rule (``scalebar_segment``): four equal segments; one segment's ground length is
the largest of 1, 2, 2.5 or 5 × 10^n metres whose four segments stay within the target
length on paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: ISO 216 A series, (short, long) side in mm.
PAPER_MM: dict[str, tuple[float, float]] = {
    "A0": (841.0, 1189.0), "A1": (594.0, 841.0), "A2": (420.0, 594.0),
    "A3": (297.0, 420.0), "A4": (210.0, 297.0),
}
ORIENTATIONS = ("landscape", "portrait")

#: Margin added round the county's bounding box before fitting the scale (each side).
FIT_PAD = 0.03

MM_PER_PT = 25.4 / 72.0
PT_PER_MM = 72.0 / 25.4


def paper_size(paper: str, orientation: str) -> tuple[float, float]:
    """(width, height) in mm."""
    key = str(paper).upper()
    if key not in PAPER_MM:
        raise ValueError(f"unknown paper {paper!r}; one of {', '.join(PAPER_MM)}")
    if orientation not in ORIENTATIONS:
        raise ValueError(f"unknown orientation {orientation!r}; one of {ORIENTATIONS}")
    s, long_ = PAPER_MM[key]
    return (long_, s) if orientation == "landscape" else (s, long_)


@dataclass(frozen=True)
class Box:
    """A rectangle on the paper, mm."""

    x: float
    y: float
    w: float
    h: float

    @property
    def x1(self) -> float:
        return self.x + self.w

    @property
    def y1(self) -> float:
        return self.y + self.h

    def inset(self, d: float) -> Box:
        return Box(self.x + d, self.y + d, self.w - 2 * d, self.h - 2 * d)

    def top(self, h: float) -> Box:
        """The strip of height h at the top of this box."""
        return Box(self.x, self.y1 - h, self.w, h)

    def bottom(self, h: float) -> Box:
        return Box(self.x, self.y, self.w, h)

    def below_top(self, h: float, gap: float = 0.0) -> Box:
        """What is left under a top strip of height h (and a gap)."""
        return Box(self.x, self.y, self.w, self.h - h - gap)


@dataclass(frozen=True)
class Layout:
    """Where everything goes on one sheet (all mm)."""

    paper: str
    orientation: str
    width: float
    height: float
    k: float  # size factor against A3 (1.0 on A3)
    outer: Box  # 外图廓 (thick line)
    inner: Box  # 内图廓 (neat line)
    title: Box  # title band
    map: Box  # the map frame: the map is drawn at true scale inside it
    panel: Box  # legend, north arrow, scale bar, inset, title block
    panel_side: str  # "right" (landscape) or "bottom" (portrait)

    @property
    def outer_lw(self) -> float:
        return 0.9 * self.k

    @property
    def inner_lw(self) -> float:
        return 0.25 * self.k

    @property
    def map_lw(self) -> float:
        return 0.3 * self.k


def make_layout(paper: str = "A3", orientation: str = "landscape") -> Layout:
    w, h = paper_size(paper, orientation)
    k = min(w, h) / PAPER_MM["A3"][0]
    outer = Box(0, 0, w, h).inset(10.0 * k)
    inner = outer.inset(1.8 * k)
    content = inner.inset(4.0 * k)
    title = content.top(24.0 * k)
    body = content.below_top(title.h, 2.0 * k)
    gap = 4.0 * k
    if orientation == "landscape":
        pw = 80.0 * k
        panel = Box(body.x1 - pw, body.y, pw, body.h)
        mapbox = Box(body.x, body.y, body.w - pw - gap, body.h)
        side = "right"
    else:
        ph = 74.0 * k
        panel = Box(body.x, body.y, body.w, ph)
        mapbox = Box(body.x, body.y + ph + gap, body.w, body.h - ph - gap)
        side = "bottom"
    return Layout(str(paper).upper(), orientation, w, h, k, outer, inner, title, mapbox,
                  panel, side)


def nice_scale(n_min: float) -> int:
    """Round a scale denominator up to two significant figures (see the module doc)."""
    if not math.isfinite(n_min) or n_min <= 0:
        raise ValueError(f"invalid scale denominator {n_min}")
    n_min = max(n_min, 100.0)
    step = 10.0 ** (math.floor(math.log10(n_min)) - 1)
    n = math.ceil(n_min / step - 1e-9) * step
    return round(n)


def fit_scale(bounds: tuple[float, float, float, float], map_w_mm: float,
              map_h_mm: float, pad: float = FIT_PAD) -> int:
    """The nice scale at which ``bounds`` (grown by ``pad`` per side) fits the frame."""
    xmin, ymin, xmax, ymax = bounds
    bw = max(xmax - xmin, 1.0) * (1 + 2 * pad)
    bh = max(ymax - ymin, 1.0) * (1 + 2 * pad)
    n_min = max(bw / (map_w_mm / 1000.0), bh / (map_h_mm / 1000.0))
    return nice_scale(n_min)


def map_extent(center: tuple[float, float], scale: int, map_w_mm: float,
               map_h_mm: float) -> tuple[float, float, float, float]:
    """Ground extent (project CRS metres) of a frame of map_w × map_h mm at 1:scale."""
    cx, cy = center
    gw = map_w_mm / 1000.0 * scale
    gh = map_h_mm / 1000.0 * scale
    return (cx - gw / 2, cy - gh / 2, cx + gw / 2, cy + gh / 2)


_NICE = (1.0, 2.0, 2.5, 5.0)


def scalebar_segment(scale: int, target_mm: float, segments: int = 4) -> float:
    """Ground length (m) of one scale-bar segment: the largest 1/2/2.5/5 × 10^n with
    ``segments`` of them at most ``target_mm`` long on paper."""
    limit = target_mm / 1000.0 * scale / segments
    e = math.floor(math.log10(limit))
    best = 10.0 ** (e - 1)
    for p in (e - 1, e):
        for m in _NICE:
            v = m * 10.0 ** p
            if v <= limit * (1 + 1e-9):
                best = max(best, v)
    return best


def format_length(metres: float, unit: str) -> str:
    """A scale-bar label: metres in ``unit`` ("km" or "m"), no trailing zeros."""
    v = metres / 1000.0 if unit == "km" else metres
    s = f"{v:.3f}".rstrip("0").rstrip(".")
    return s or "0"


def format_scale(n: int) -> str:
    """1:190 000 (a space between thousands, as map scales are printed)."""
    return "1:" + f"{int(n):,}".replace(",", " ")
