"""Drawing the parts of a sheet with matplotlib: geometry paths, frames, title, legend,
north arrow, scale bar, title block, inset locator, watermark.

Everything outside the map is placed in millimetres on the paper through :func:`mm_transform`
(figure fraction = mm / paper size). Geometry is turned into one compound path per class
(rings oriented so holes stay holes under the non-zero fill rule), which keeps a sheet of
tens of thousands of parcels to a few dozen PDF paths.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import PathPatch, Polygon, Rectangle
from matplotlib.path import Path as MPath
from matplotlib.transforms import Affine2D

from .layout import MM_PER_PT, PT_PER_MM, Box, format_length, format_scale
from .themes import LegendItem, Style

DASHES = {"dashed": "--", "dashdot": "-.", "dotted": ":", None: "-"}
TEXT = "#222222"


def rgb(c: Sequence[int] | None) -> tuple[float, float, float] | str:
    if c is None:
        return "none"
    return (c[0] / 255.0, c[1] / 255.0, c[2] / 255.0)


def mm_transform(fig: Any, width_mm: float, height_mm: float) -> Any:
    return Affine2D().scale(1.0 / width_mm, 1.0 / height_mm) + fig.transFigure


def text_width_mm(s: str, size_pt: float) -> float:
    """Estimated advance width: CJK characters one em, others about 0.56 em."""
    em = size_pt * MM_PER_PT
    return sum(1.0 if ord(ch) >= 0x2E80 else 0.56 for ch in s) * em


# --------------------------------------------------------------------------- geometry

def polygon_path(geoms: np.ndarray) -> MPath | None:
    """One compound path of all (multi)polygons: exteriors counter-clockwise, holes
    clockwise, each ring closed."""
    if not len(geoms):
        return None
    parts = shapely.get_parts(shapely.orient_polygons(geoms))
    parts = parts[shapely.get_type_id(parts) == 3]
    if not len(parts):
        return None
    rings = shapely.get_rings(parts)
    coords, idx = shapely.get_coordinates(rings, return_index=True)
    if not len(coords):
        return None
    codes = np.full(len(coords), MPath.LINETO, dtype=np.uint8)
    starts = np.r_[0, np.flatnonzero(np.diff(idx)) + 1]
    ends = np.r_[starts[1:] - 1, len(coords) - 1]
    codes[starts] = MPath.MOVETO
    codes[ends] = MPath.CLOSEPOLY
    return MPath(coords, codes)


def line_path(geoms: np.ndarray) -> MPath | None:
    if not len(geoms):
        return None
    parts = shapely.get_parts(geoms)
    parts = parts[np.isin(shapely.get_type_id(parts), (1, 2))]  # LineString, LinearRing
    if not len(parts):
        return None
    coords, idx = shapely.get_coordinates(parts, return_index=True)
    if not len(coords):
        return None
    codes = np.full(len(coords), MPath.LINETO, dtype=np.uint8)
    starts = np.r_[0, np.flatnonzero(np.diff(idx)) + 1]
    codes[starts] = MPath.MOVETO
    return MPath(coords, codes)


def draw_vector(ax: Any, kind: str, geoms: np.ndarray, style: Style, zorder: float) -> None:
    """Draw geometries of one class on the map axes (data coordinates)."""
    lw = style.lw_mm * PT_PER_MM
    if kind == "polygon":
        path = polygon_path(geoms)
        if path is None:
            return
        if style.face is not None:
            ax.add_artist(PathPatch(path, facecolor=rgb(style.face), edgecolor="none",
                                   linewidth=0, alpha=style.alpha, zorder=zorder))
        if style.hatch:
            ax.add_artist(PathPatch(path, facecolor="none", edgecolor=rgb(style.edge or (0, 0, 0)),
                                   linewidth=0, hatch=style.hatch, zorder=zorder + 0.01))
        if style.edge is not None and lw > 0:
            ax.add_artist(PathPatch(path, facecolor="none", edgecolor=rgb(style.edge),
                                   linewidth=lw, linestyle=DASHES.get(style.dash, "-"),
                                   joinstyle="round", zorder=zorder + 0.02))
    elif kind == "line":
        path = line_path(geoms)
        if path is None:
            return
        ax.add_artist(PathPatch(path, facecolor="none", edgecolor=rgb(style.edge),
                               linewidth=lw, linestyle=DASHES.get(style.dash, "-"),
                               capstyle="round", joinstyle="round", zorder=zorder))
    elif kind == "point":
        pts = shapely.get_coordinates(shapely.get_parts(geoms))
        if len(pts):
            ax.plot(pts[:, 0], pts[:, 1], linestyle="none", marker="o",
                    markersize=style.size_mm * PT_PER_MM, markerfacecolor=rgb(style.face),
                    markeredgecolor=rgb(style.edge), markeredgewidth=style.lw_mm * PT_PER_MM,
                    zorder=zorder)


# --------------------------------------------------------------------------- primitives

class Painter:
    """Adds artists to a figure in paper millimetres."""

    def __init__(self, fig: Any, width_mm: float, height_mm: float, font: FontProperties,
                 k: float) -> None:
        self.fig = fig
        self.tr = mm_transform(fig, width_mm, height_mm)
        self.font = font
        self.k = k

    def rect(self, box: Box, *, face: Any = "none", edge: Any = TEXT, lw_mm: float = 0.2,
             hatch: str | None = None, alpha: float = 1.0, zorder: float = 5,
             dash: str | None = None, gid: str | None = None) -> Rectangle:
        r = Rectangle((box.x, box.y), box.w, box.h, transform=self.tr, facecolor=face,
                      edgecolor=edge, linewidth=lw_mm * PT_PER_MM, hatch=hatch, alpha=alpha,
                      zorder=zorder, linestyle=DASHES.get(dash, "-"), joinstyle="miter")
        if gid:
            r.set_gid(gid)
        self.fig.add_artist(r)
        return r

    def line(self, xs: Sequence[float], ys: Sequence[float], *, color: Any = TEXT,
             lw_mm: float = 0.2, dash: str | None = None, zorder: float = 5) -> None:
        self.fig.add_artist(Line2D(xs, ys, transform=self.tr, color=color,
                                   linewidth=lw_mm * PT_PER_MM,
                                   linestyle=DASHES.get(dash, "-"), zorder=zorder,
                                   solid_capstyle="butt"))

    def polygon(self, xy: Sequence[tuple[float, float]], *, face: Any, edge: Any = TEXT,
                lw_mm: float = 0.15, zorder: float = 5) -> None:
        self.fig.add_artist(Polygon(xy, closed=True, transform=self.tr, facecolor=face,
                                    edgecolor=edge, linewidth=lw_mm * PT_PER_MM,
                                    zorder=zorder, joinstyle="miter"))

    def text(self, x: float, y: float, s: str, size_pt: float, *, ha: str = "left",
             va: str = "baseline", color: Any = TEXT, zorder: float = 6, **kw: Any) -> Any:
        return self.fig.text(x, y, s, transform=self.tr, fontproperties=self.font,
                             fontsize=size_pt, ha=ha, va=va, color=color, zorder=zorder, **kw)


# --------------------------------------------------------------------------- elements

def draw_frames(p: Painter, outer: Box, inner: Box, outer_lw: float, inner_lw: float) -> None:
    p.rect(outer, lw_mm=outer_lw, zorder=20)
    p.rect(inner, lw_mm=inner_lw, zorder=20)


def draw_title(p: Painter, box: Box, title: str, sheet_name: str) -> None:
    k = p.k
    p.text(box.x + box.w / 2, box.y1 - 8.0 * k, title, 15 * k, ha="center")
    p.text(box.x + box.w / 2, box.y + 3.0 * k, sheet_name, 22 * k, ha="center")


def draw_north_arrow(p: Painter, box: Box) -> None:
    """A two-tone arrow pointing to grid north, with 北 above it. ``box``: its space."""
    k = p.k
    h = min(box.h - 7.0 * k, 16.0 * k)
    w = h * 0.5
    cx = box.x + box.w / 2
    top = box.y1 - 6.5 * k
    base = top - h
    notch = base + h * 0.28
    p.polygon([(cx, top), (cx - w / 2, base), (cx, notch)], face=TEXT, lw_mm=0.15 * k)
    p.polygon([(cx, top), (cx + w / 2, base), (cx, notch)], face="white", lw_mm=0.15 * k)
    p.text(cx, top + 1.2 * k, "北", 9 * k, ha="center")


def draw_scalebar(p: Painter, box: Box, scale: int, segment_m: float) -> dict[str, float]:
    """Numeric scale and a graphic bar of 4 equal segments of ``segment_m`` metres each,
    alternately black and white, labelled at every division. Returns the bar's position
    and length on paper (mm)."""
    k = p.k
    seg_mm = segment_m / scale * 1000.0
    n = 4
    length = n * seg_mm
    unit = "km" if segment_m * n >= 1000 else "m"
    unit_zh = "千米" if unit == "km" else "米"
    p.text(box.x + box.w / 2, box.y1 - 4.5 * k, f"比例尺 {format_scale(scale)}", 9 * k,
           ha="center")
    bh = 1.6 * k
    last = format_length(n * segment_m, unit)
    gap = text_width_mm(last, 7 * k) / 2 + 1.0 * k  # clear of the last number
    unit_w = text_width_mm(unit_zh, 7 * k) + gap
    x0 = box.x + (box.w - length - unit_w) / 2
    y0 = box.y1 - 11.5 * k
    for i in range(n):
        p.rect(Box(x0 + i * seg_mm, y0, seg_mm, bh), face=TEXT if i % 2 == 0 else "white",
               edge="none", lw_mm=0, zorder=6)
    p.rect(Box(x0, y0, length, bh), lw_mm=0.15 * k, zorder=6.1)
    for i in range(n + 1):
        x = x0 + i * seg_mm
        p.line([x, x], [y0 + bh, y0 + bh + 0.8 * k], lw_mm=0.15 * k)
        p.text(x, y0 + bh + 1.3 * k, format_length(i * segment_m, unit), 7 * k, ha="center")
    p.text(x0 + length + gap, y0 + bh / 2, unit_zh, 7 * k, va="center")
    return {"x0_mm": x0, "y0_mm": y0, "length_mm": length, "segment_m": segment_m,
            "segments": n}


def legend_layout(groups: list[tuple[str, list[LegendItem]]], box: Box, k: float
                  ) -> tuple[float, int, int]:
    """(size factor, columns, rows per column) so that every entry fits ``box``."""
    entries = sum(len(items) for _, items in groups) + max(len(groups) - 1, 0)
    longest = max((text_width_mm(it.name if it.code in it.name else f"{it.code} {it.name}", 7)
                   for _, items in groups for it in items), default=10.0)
    for f in (1.0, 0.9, 0.8, 0.7, 0.62, 0.55, 0.5):
        row = 4.6 * k * f
        rows = int((box.h - 7.0 * k) // row)
        if rows < 1:
            continue
        cols = max(1, math.ceil(entries / rows))
        col_w = (8.0 * k + longest * k + 3.0 * k) * f
        if cols * col_w <= box.w + 1e-6:
            return f, cols, rows
    f = 0.5  # does not fit even at half size: as many columns as there is room for
    rows = max(1, int((box.h - 7.0 * k) // (4.6 * k * f)))
    col_w = (8.0 * k + longest * k + 3.0 * k) * f
    return f, max(1, min(math.ceil(entries / rows), int(box.w // col_w))), rows


def _swatch(p: Painter, box: Box, st: Style) -> None:
    k = p.k
    if st.kind == "line":
        y = box.y + box.h / 2
        p.line([box.x, box.x1], [y, y], color=rgb(st.edge), lw_mm=max(st.lw_mm, 0.2 * k),
               dash=st.dash, zorder=6)
    elif st.kind == "point":
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        p.fig.add_artist(Line2D([cx], [cy], transform=p.tr, marker="o", linestyle="none",
                                markersize=st.size_mm * PT_PER_MM,
                                markerfacecolor=rgb(st.face), markeredgecolor=rgb(st.edge),
                                markeredgewidth=st.lw_mm * PT_PER_MM, zorder=6))
    else:
        if st.face is not None:
            p.rect(box, face=rgb(st.face), edge="none", lw_mm=0, alpha=st.alpha, zorder=6)
        if st.hatch:
            p.rect(box, face="none", edge=rgb(st.edge or (0, 0, 0)), lw_mm=0,
                   hatch=st.hatch, zorder=6.05)
        edge = st.edge if (st.edge is not None and st.lw_mm >= 0.2) else (110, 110, 110)
        p.rect(box, edge=rgb(edge), lw_mm=max(min(st.lw_mm, 0.4), 0.12) * k,
               dash=st.dash, zorder=6.1)


def draw_legend(p: Painter, box: Box, groups: list[tuple[str, list[LegendItem]]]) -> None:
    """图例: the thematic classes then the reference group, in as many columns as needed,
    shrinking text and swatches (down to half size) when they do not fit."""
    k = p.k
    p.text(box.x + box.w / 2, box.y1 - 4.5 * k, "图  例", 11 * k, ha="center")
    f, cols, rows = legend_layout(groups, box, k)
    row = 4.6 * k * f
    col_w = box.w / cols
    size = 7.0 * k * f
    sw, sh = 7.0 * k * f, 3.4 * k * f
    flat: list[LegendItem | None] = []
    for gi, (_, items) in enumerate(groups):
        if gi and items:
            flat.append(None)  # a blank row between groups
        flat.extend(items)
    while flat and flat[-1] is None:
        flat.pop()
    dropped = 0
    if len(flat) > cols * rows:  # still too many: the last slot says how many are left out
        keep = cols * rows - 1
        dropped = sum(1 for it in flat[keep:] if it is not None)
        flat = flat[:keep]
    top = box.y1 - 8.0 * k
    if dropped:
        c, r = divmod(len(flat), rows)
        p.text(box.x + c * col_w + 1.0 * k, top - (r + 0.5) * row,
               f"……另有 {dropped} 项未列出（见统计表）", size, va="center")
    for i, it in enumerate(flat):
        c, r = divmod(i, rows)
        if it is None:
            continue
        x = box.x + c * col_w + 1.0 * k
        y = top - (r + 1) * row
        _swatch(p, Box(x, y + (row - sh) / 2, sw, sh), it.style)
        label = it.name if (it.code in it.name or it.style.kind in ("line", "point")
                            or it.style.kind == "raster"
                            or not it.code[:1].isdigit()) else f"{it.code} {it.name}"
        p.text(x + sw + 1.5 * k * f, y + row / 2, label, size, va="center")


def draw_title_block(p: Painter, box: Box, rows: list[tuple[str, str]]) -> None:
    """A ruled table: label | value, one row each (value may wrap onto two lines)."""
    k = p.k
    size = 7.0 * k
    lab_w = 15.0 * k
    val_w = box.w - lab_w
    lines = []
    for lab, val in rows:
        lines.append((lab, _wrap(val, val_w - 3.5 * k, size)))
    heights = [max(1, len(v)) * 3.6 * k + 2.2 * k for _, v in lines]
    total = sum(heights)
    y = box.y + total
    p.rect(Box(box.x, box.y, box.w, total), lw_mm=0.25 * k)
    p.line([box.x + lab_w, box.x + lab_w], [box.y, box.y + total], lw_mm=0.15 * k)
    for (lab, vals), h in zip(lines, heights, strict=True):
        y -= h
        if y > box.y + 1e-6:
            p.line([box.x, box.x1], [y, y], lw_mm=0.15 * k)
        p.text(box.x + lab_w / 2, y + h / 2, lab, size, ha="center", va="center")
        n = len(vals)
        for j, v in enumerate(vals):
            yy = y + h / 2 + (n - 1) * 1.8 * k - j * 3.6 * k
            p.text(box.x + lab_w + 1.5 * k, yy, v, size, va="center")


def title_block_height(rows: list[tuple[str, str]], width: float, k: float) -> float:
    size = 7.0 * k
    val_w = width - 15.0 * k
    return sum(max(1, len(_wrap(v, val_w - 3.5 * k, size))) * 3.6 * k + 2.2 * k
               for _, v in rows)


def _wrap(s: str, width_mm: float, size_pt: float, max_lines: int = 3) -> list[str]:
    if not s:
        return [""]
    out, cur = [], ""
    for ch in s:
        if text_width_mm(cur + ch, size_pt) > width_mm and cur:
            out.append(cur)
            cur = ch
        else:
            cur += ch
    out.append(cur)
    if len(out) > max_lines:
        out = out[:max_lines]
        out[-1] = out[-1][:-1] + "…"
    return out


def draw_watermark(p: Painter, box: Box, text: str) -> None:
    """Large translucent diagonal text across the map frame."""
    angle = math.degrees(math.atan2(box.h, box.w))
    diag = math.hypot(box.w, box.h) * 0.62
    ems = sum(1.0 if ord(ch) >= 0x2E80 else 0.56 for ch in text) or 1.0
    size_pt = diag / ems / MM_PER_PT
    p.text(box.x + box.w / 2, box.y + box.h / 2, text, size_pt, ha="center", va="center",
           color=(0.85, 0.1, 0.1), alpha=0.2, rotation=angle, rotation_mode="anchor",
           zorder=30)


def tick_interval(ground_width_m: float, target: int = 6) -> float:
    """A 1/2/5 × 10^n km-grid interval giving about ``target`` ticks across the frame."""
    raw = ground_width_m / target
    e = math.floor(math.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * 10.0 ** e >= raw:
            return m * 10.0 ** e
    return 10.0 ** (e + 1)


def draw_frame_ticks(p: Painter, box: Box, extent: tuple[float, float, float, float],
                     scale: int) -> None:
    """Internal sheets: coordinate ticks on the map frame (inward, all four sides) with
    kilometre labels under the bottom edge (X, easting) and left of the left edge (Y,
    northing). Public sheets carry no coordinates (domain.md §7.2)."""
    k = p.k
    x0, y0, x1, y1 = extent
    step = tick_interval(x1 - x0)
    tl = 1.5 * k
    size = 5.5 * k
    grey = (0.25, 0.25, 0.25)

    def fmt(v: float) -> str:
        return f"{v / 1000:.3f}".rstrip("0").rstrip(".")

    xs = np.arange(math.ceil(x0 / step) * step, x1, step)
    ys = np.arange(math.ceil(y0 / step) * step, y1, step)
    for i, gx in enumerate(xs):
        mx = box.x + (gx - x0) / scale * 1000.0
        if mx - box.x < 3 * k or box.x1 - mx < 3 * k:
            continue
        p.line([mx, mx], [box.y, box.y + tl], color=grey, lw_mm=0.15 * k, zorder=21)
        p.line([mx, mx], [box.y1 - tl, box.y1], color=grey, lw_mm=0.15 * k, zorder=21)
        label = fmt(gx) + (" km" if i == len(xs) - 1 else "")
        p.text(mx, box.y - 0.8 * k, label, size, ha="center", va="top", color=grey)
    for gy in ys:
        my = box.y + (gy - y0) / scale * 1000.0
        if my - box.y < 3 * k or box.y1 - my < 3 * k:
            continue
        p.line([box.x, box.x + tl], [my, my], color=grey, lw_mm=0.15 * k, zorder=21)
        p.line([box.x1 - tl, box.x1], [my, my], color=grey, lw_mm=0.15 * k, zorder=21)
        p.text(box.x - 0.8 * k, my, fmt(gy), size, ha="center", va="bottom", color=grey,
               rotation=90, rotation_mode="anchor")
