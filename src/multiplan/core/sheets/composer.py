"""The map sheet composer: a standard sheet of the project at a true scale 1:N on A4–A0
paper, as a vector PDF and a PNG.

* The map frame's physical width (mm) × N / 1000 is exactly the ground width of the
  extent (and the same for the height): the map axes are placed in millimetres and their
  limits set from N, never "fitted" by matplotlib.
* ``scale=None`` fits the county (see :mod:`.layout` for the rounding rule).
* The PNG is rendered in horizontal strips (``savefig`` of one strip's bounding box at a
  time) and written by a streaming PNG encoder, so memory stays at one strip (≈ 80 MB for
  A0 at 300 dpi) instead of the whole ≈ 560 MB RGBA canvas.
* Text uses the SC face of Noto Sans CJK (else WenQuanYi Micro Hei) and the PDF embeds it
  as TrueType (``pdf.fonttype`` 42), so ``pdftotext`` returns the Chinese text.

Settings read from the project (all optional): ``plan_period`` (default "2021—2035年"),
``plan_title`` (the whole first title line), ``plan_organisation`` (编制单位),
``plan_date`` (编制日期, default this month), ``data_source_note`` (数据来源),
``sheet_inset_layer`` (a polygon layer drawn round the county in the locator inset, e.g. the
city's districts).
"""

from __future__ import annotations

import io
import re
import struct
import threading
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from ..project import Project
from ..tasks import Task, ensure_task
from . import elements as el
from . import themes as th
from .layout import Box, Layout, fit_scale, make_layout, map_extent, scalebar_segment
from .themes import DrawLayer, LegendItem, RasterLayer, SheetData, SheetError

DEFAULT_PERIOD = "2021—2035年"
CRS_TEXT = "2000国家大地坐标系"
HEIGHT_TEXT = "1985国家高程基准"
FORMATS = ("pdf", "png")
#: PNG strips are at most this many pixels (rows × width) each.
STRIP_PIXELS = 20_000_000


@dataclass(frozen=True)
class SheetSpec:
    """One standard sheet. ``zh`` is the sheet name printed under the plan title."""

    key: str
    zh: str
    en: str
    theme: str  # landuse | controls | sansheng | assessment | conflicts
    result: str | None = None  # assessment output key
    admin_boundaries: bool = True  # shows the county / township boundaries

    @property
    def name(self) -> str:
        return self.zh

    @property
    def title(self) -> str:
        return self.zh


SHEETS: dict[str, SheetSpec] = {s.key: s for s in [
    SheetSpec("landuse", "国土空间用地用海规划图", "land and sea use plan", "landuse"),
    SheetSpec("controls", "国土空间控制线规划图", "control lines (三区三线)", "controls"),
    SheetSpec("sansheng", "三生空间分布图", "production / living / ecological space",
              "sansheng"),
    SheetSpec("assessment_ecology", "双评价结果图（生态保护重要性）",
              "assessment: ecological protection importance", "assessment", "eco_importance"),
    SheetSpec("assessment_agriculture", "双评价结果图（农业生产适宜性）",
              "assessment: agricultural production suitability", "assessment",
              "agri_suitability"),
    SheetSpec("assessment_urban", "双评价结果图（城镇建设适宜性）",
              "assessment: urban construction suitability", "assessment", "urban_suitability"),
    SheetSpec("conflicts", "差异图斑分布图", "conflict patches (差异图斑)", "conflicts"),
]}


@dataclass
class SheetResult:
    key: str
    paths: dict[str, Path]
    scale: int
    extent: tuple[float, float, float, float]
    legend: list[tuple[str, str]]
    title: str  # the plan title line, e.g. 长兴县国土空间总体规划（2021—2035年）
    sheet_name: str
    paper: str
    orientation: str
    dpi: int
    reference_legend: list[tuple[str, str]] = field(default_factory=list)
    map_box_mm: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # x, y, w, h
    scalebar: dict[str, float] = field(default_factory=dict)
    public: bool = False
    generalise_m: float | None = None
    font: str | None = None
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "paths": {k: str(v) for k, v in self.paths.items()},
                "scale": self.scale, "extent": list(self.extent),
                "legend": [list(x) for x in self.legend], "title": self.title,
                "sheet_name": self.sheet_name, "paper": self.paper,
                "orientation": self.orientation, "dpi": self.dpi, "public": self.public,
                "generalise_m": self.generalise_m, "font": self.font, "notes": self.notes}


# --------------------------------------------------------------------------- availability

def _open(project: Project | str | Path) -> Project:
    return project if isinstance(project, Project) else Project.open(project)


def sheet_availability(project: Project | str | Path) -> dict[str, tuple[bool, str, str]]:
    """Per sheet key: (available, reason in Chinese, reason in English) — the reason says
    what data is missing when it is not available."""
    project = _open(project)
    recs = project.layers()
    roles = {r.role for r in recs if r.kind == "vector"}
    plan = th.plan_layer_name(project, recs)
    out: dict[str, tuple[bool, str, str]] = {}
    for key, spec in SHEETS.items():
        if spec.theme in ("landuse", "sansheng"):
            ok = plan is not None
            out[key] = (ok, "" if ok else "缺少规划图层（国土空间规划或土地利用规划）",
                        "" if ok else "no plan layer (国土空间规划 or 土地利用规划)")
        elif spec.theme == "controls":
            ok = bool(roles & {"eco_redline", "basic_farmland", "urban_boundary"})
            out[key] = (ok, "" if ok else "缺少三区三线图层（生态保护红线、永久基本农田、城镇开发边界）",
                        "" if ok else "no control-line layer (生态保护红线, 永久基本农田, "
                                      "城镇开发边界)")
        elif spec.theme == "assessment":
            ok = th.assessment_record(project, spec.result or "") is not None
            out[key] = (ok, "" if ok else "缺少双评价结果（请先运行 multiplan assess）",
                        "" if ok else "no 双评价 result (run multiplan assess first)")
        elif spec.theme == "conflicts":
            import contextlib

            with contextlib.closing(project.connect()) as conn:
                ok = conn.execute("SELECT 1 FROM gpkg_geometry_columns WHERE table_name = ?",
                                  (th.CONFLICTS_TABLE,)).fetchone() is not None
            out[key] = (ok, "" if ok else "缺少差异图斑登记表（请先运行 multiplan conflicts）",
                        "" if ok else "no conflict register (run multiplan conflicts first)")
    return out


def available_sheets(project: Project | str | Path) -> list[str]:
    """Keys of the standard sheets whose data exist (see :func:`sheet_availability` for why
    the others are missing)."""
    return [k for k, (ok, _, _) in sheet_availability(project).items() if ok]


def _theme(project: Project, spec: SheetSpec) -> tuple[list[DrawLayer | RasterLayer], list[str]]:
    if spec.theme == "landuse":
        return th.landuse_theme(project)
    if spec.theme == "sansheng":
        return th.sansheng_theme(project)
    if spec.theme == "controls":
        return th.controls_theme(project)
    if spec.theme == "conflicts":
        return th.conflicts_theme(project)
    return th.assessment_theme(project, spec.result or "")


_DATA_CACHE: dict[tuple[str, int, int, str], SheetData] = {}
_DATA_LOCK = threading.Lock()


def load_sheet_data(project: Project, key: str) -> SheetData:
    """The sheet's layers, read once per state of the project file: a preview that changes
    only paper, orientation or scale does not read the layers again (the two most recent
    are kept; any write to plan.gpkg changes its size or time and so the key)."""
    st = project.gpkg.stat()
    ck = (str(project.gpkg.resolve()), st.st_mtime_ns, st.st_size, key)
    with _DATA_LOCK:
        hit = _DATA_CACHE.get(ck)
    if hit is not None:
        return hit
    data = _load_sheet_data(project, key)
    with _DATA_LOCK:
        while len(_DATA_CACHE) >= 2:
            _DATA_CACHE.pop(next(iter(_DATA_CACHE)))
        _DATA_CACHE[ck] = data
    return data


def _load_sheet_data(project: Project, key: str) -> SheetData:
    if key not in SHEETS:
        raise SheetError("sheet.unknown", f"没有名为 {key} 的标准图（可选：{'、'.join(SHEETS)}）",
                         f"no standard sheet named {key} (one of {', '.join(SHEETS)})")
    spec = SHEETS[key]
    recs = project.layers()
    county = th.county_geometry(project, recs)
    layers, sources = _theme(project, spec)
    ref, ref_sources = th.reference_layers(project, recs, county)
    return SheetData(layers + ref, county, project.county, sources + ref_sources)


# --------------------------------------------------------------------------- texts

def plan_title(project: Project) -> str:
    t = project.setting("plan_title")
    if t:
        return str(t)
    period = str(project.setting("plan_period") or DEFAULT_PERIOD).strip()
    if not period.endswith("年"):
        period += "年"
    period = re.sub(r"(\d{4})\s*[-–~～至]\s*(\d{4})", r"\1—\2", period)
    return f"{project.county}国土空间总体规划（{period}）"


def _plan_date(project: Project) -> str:
    d = project.setting("plan_date")
    if d:
        return str(d)
    now = datetime.now()
    return f"{now.year}年{now.month}月"


def _cjk_family() -> str | None:
    from ..fonts import cjk_family

    return cjk_family()


# --------------------------------------------------------------------------- preparation

def _generalise(layer: DrawLayer, tol: float) -> DrawLayer:
    """Topology-preserving simplification: as a coverage when the layer tiles (shared edges
    stay shared), else per feature with preserve_topology."""
    g = layer.geoms
    if layer.kind == "point" or not len(g):
        return layer
    out = None
    if layer.kind == "polygon" and layer.coverage:
        try:
            if bool(shapely.coverage_is_valid(g)):
                out = shapely.coverage_simplify(g, tol)
        except Exception:  # noqa: BLE001 — an invalid coverage falls back below
            out = None
    if out is None:
        out = shapely.simplify(g, tol, preserve_topology=True)
    keep = ~(shapely.is_missing(out) | shapely.is_empty(out))
    res = DrawLayer(layer.name, layer.kind, out, layer.cls, layer.items, layer.zorder,
                    layer.thematic, layer.coverage)
    return res.subset(keep)


def _raster_window(lay: RasterLayer, extent: tuple[float, float, float, float],
                   max_px: int, generalise_m: float | None
                   ) -> tuple[np.ndarray, tuple[float, float, float, float], np.ndarray]:
    """(decimated array for drawing, its extent (l, r, b, t), class codes present in the
    mapped extent at full resolution)."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.windows import Window, from_bounds

    with rasterio.open(lay.path) as ds:
        win = from_bounds(*extent, transform=ds.transform)
        win = win.intersection(Window(0, 0, ds.width, ds.height))
        win = win.round_offsets().round_lengths()
        if win.width <= 0 or win.height <= 0:
            # the raster lies outside the frame: nothing to draw, no class present
            return (np.zeros((1, 1), np.uint8), (extent[0], extent[2], extent[1], extent[3]),
                    np.empty(0, np.int64))
        full = ds.read(1, window=win)
        present = np.unique(full)
        present = present[present != 0]
        f = max(1, int(np.ceil(max(win.width, win.height) / max_px)))
        if generalise_m:
            f = max(f, int(np.ceil(generalise_m / abs(ds.transform.a))))
        if f > 1:
            shape = (max(1, int(win.height) // f), max(1, int(win.width) // f))
            arr = ds.read(1, window=win, out_shape=shape,
                          resampling=Resampling.mode if generalise_m else Resampling.nearest)
            if generalise_m:
                present = np.unique(arr)
                present = present[present != 0]
        else:
            arr = full
        b = ds.window_bounds(win)
    return arr, (b[0], b[2], b[1], b[3]), present.astype(np.int64)


@dataclass
class _Prepared:
    spec: SheetSpec
    layout: Layout
    scale: int
    extent: tuple[float, float, float, float]
    draw: list[Any]  # DrawLayer | (RasterLayer, arr, ext)
    legend: list[LegendItem]
    reference: list[LegendItem]
    data: SheetData


def _prepare(project: Project, key: str, paper: str, orientation: str | None, scale: Any,
             generalise_m: float | None, task: Task) -> _Prepared:
    data = load_sheet_data(project, key)
    task.progress(0.3, "范围与比例尺 / extent and scale")
    b = data.bounds()
    if orientation is None:  # the orientation that shows the county larger
        fits = {o: fit_scale(b, make_layout(paper, o).map.w, make_layout(paper, o).map.h)
                for o in ("landscape", "portrait")}
        orientation = "portrait" if fits["portrait"] < fits["landscape"] else "landscape"
    layout = make_layout(paper, orientation)
    if scale is None:
        n = fit_scale(b, layout.map.w, layout.map.h)
    else:
        try:
            n = round(float(scale))
        except (TypeError, ValueError):
            n = 0
        if n < 100:
            raise SheetError("sheet.bad_scale", f"比例尺分母须为不小于 100 的整数，而不是 {scale}",
                             f"the scale denominator must be an integer of at least 100, not "
                             f"{scale}")
    center = ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    extent = map_extent(center, n, layout.map.w, layout.map.h)
    frame = shapely.box(*extent)
    draw: list[Any] = []
    legend: list[LegendItem] = []
    reference: list[LegendItem] = []
    seen_ref: set[str] = set()
    tol = float(generalise_m) if generalise_m else None
    for lay in data.layers:
        task.check()
        if isinstance(lay, RasterLayer):
            arr, ext, present = _raster_window(lay, extent, 4000, tol)
            draw.append((lay, arr, ext))
            legend.extend(lay.items[int(c)] for c in present if int(c) in lay.items)
            continue
        mask = shapely.intersects(lay.geoms, frame)
        sub = lay.subset(mask)
        if tol:
            sub = _generalise(sub, tol)
            sub = sub.subset(shapely.intersects(sub.geoms, frame))
        draw.append(sub)
        present = np.unique(sub.cls)
        items = [sub.items[i] for i in present]
        if lay.thematic:  # two layers of one role (e.g. two red-line layers): one entry
            legend.extend(it for it in items if all(it.code != o.code for o in legend))
        else:
            for it in items:
                if it.code not in seen_ref:
                    seen_ref.add(it.code)
                    reference.append(it)
    order = ["water", "river", "railway", "road", "township", "county", "seat"]
    reference.sort(key=lambda it: order.index(it.code) if it.code in order else 99)
    return _Prepared(SHEETS[key], layout, n, extent, draw, legend, reference, data)


# --------------------------------------------------------------------------- composing

def _font(family: str | None) -> Any:
    from matplotlib.font_manager import FontProperties

    fams = [family] if family else ["DejaVu Sans"]
    return FontProperties(family=fams)


def _source_note(project: Project, prep: _Prepared) -> str:
    note = project.setting("data_source_note")
    if note:
        return str(note)
    return "本项目数据库：" + "、".join(dict.fromkeys(prep.data.sources))


def _build_figure(project: Project, prep: _Prepared, *, public: bool, watermark: str | None,
                  review_no: str | None, inset: bool, font_family: str | None) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lo = prep.layout
    fig = Figure(figsize=(lo.width / 25.4, lo.height / 25.4), facecolor="white")
    FigureCanvasAgg(fig)
    p = el.Painter(fig, lo.width, lo.height, _font(font_family), lo.k)
    # the map
    m = lo.map
    ax = fig.add_axes((m.x / lo.width, m.y / lo.height, m.w / lo.width, m.h / lo.height))
    ax.set_axis_off()
    ax.set_xlim(prep.extent[0], prep.extent[2])
    ax.set_ylim(prep.extent[1], prep.extent[3])
    ax.set_aspect("auto")
    ax.set_autoscale_on(False)
    for item in prep.draw:
        if isinstance(item, tuple):
            _draw_raster(ax, *item)
            continue
        for i, it in enumerate(item.items):
            sel = item.cls == i
            if sel.any():
                el.draw_vector(ax, item.kind, item.geoms[sel], it.style,
                               item.zorder + 0.001 * i)
    p.rect(m, lw_mm=lo.map_lw, zorder=21, gid="map_frame")
    if not public:
        el.draw_frame_ticks(p, m, prep.extent, prep.scale)
    el.draw_frames(p, lo.outer, lo.inner, lo.outer_lw, lo.inner_lw)
    el.draw_title(p, lo.title, plan_title(project), prep.spec.zh)
    # the panel
    k = lo.k
    rows = [("编制单位", str(project.setting("plan_organisation") or "")),
            ("编制日期", _plan_date(project)),
            ("坐标系统", CRS_TEXT),
            ("投影方式", _projection_text(project)),
            ("高程基准", HEIGHT_TEXT),
            ("审图号", (review_no or "") if public else ""),
            ("数据来源", _source_note(project, prep))]
    groups = [("", prep.legend), ("", prep.reference)]
    pb = lo.panel
    gap = 3.0 * k
    info: dict[str, Any] = {}
    if lo.panel_side == "right":
        north = pb.top(22.0 * k)
        bar = Box(pb.x, north.y - 16.0 * k, pb.w, 16.0 * k)
        tb_h = el.title_block_height(rows, pb.w, k)
        tbox = Box(pb.x, pb.y, pb.w, tb_h)
        ins_h = min(48.0 * k, pb.w * 0.66) if inset else 0.0
        ibox = Box(pb.x, tbox.y1 + gap, pb.w, ins_h)
        leg_bottom = (ibox.y1 if ins_h else tbox.y1) + gap
        lbox = Box(pb.x, leg_bottom, pb.w, bar.y - gap - leg_bottom)
        if inset and lbox.h < 60.0 * k:  # the legend needs the room more than the inset
            ins_h = 0.0
            lbox = Box(pb.x, tbox.y1 + gap, pb.w, bar.y - gap - tbox.y1 - gap)
    else:
        cw = pb.w - 2 * gap
        lw, mw = cw * 0.46, cw * 0.22
        lbox = Box(pb.x, pb.y, lw, pb.h)
        mid = Box(pb.x + lw + gap, pb.y, mw, pb.h)
        right = Box(mid.x1 + gap, pb.y, pb.x + pb.w - mid.x1 - gap, pb.h)
        north = mid.top(22.0 * k)
        bar = Box(mid.x, north.y - 16.0 * k, mid.w, 16.0 * k)
        ins_h = (bar.y - gap - mid.y) if inset else 0.0
        if ins_h < 22.0 * k:
            ins_h = 0.0
        ibox = Box(mid.x, mid.y, mid.w, ins_h)
        tb_h = el.title_block_height(rows, right.w, k)
        tbox = Box(right.x, right.y, right.w, min(tb_h, right.h))
    el.draw_north_arrow(p, north)
    seg = scalebar_segment(prep.scale, bar.w * 0.72)
    info["scalebar"] = el.draw_scalebar(p, bar, prep.scale, seg)
    el.draw_legend(p, lbox, groups)
    if ins_h > 0:
        _draw_inset(fig, p, ibox, project, prep)
    el.draw_title_block(p, tbox, rows)
    if watermark:
        el.draw_watermark(p, m, str(watermark))
    fig._multiplan_sheet = info  # type: ignore[attr-defined]
    return fig


def _projection_text(project: Project) -> str:
    cm = project.setting("central_meridian")
    cm_txt = f"，中央经线{cm}°E" if cm is not None else ""
    return f"高斯-克吕格投影3°带{cm_txt}，EPSG:{project.epsg}"


def _draw_raster(ax: Any, lay: RasterLayer, arr: np.ndarray,
                 ext: tuple[float, float, float, float]) -> None:
    from matplotlib.colors import BoundaryNorm, ListedColormap

    codes = sorted(lay.items)
    if not codes:
        return
    cmap = ListedColormap([np.array(lay.items[c].style.face or (200, 200, 200)) / 255.0
                           for c in codes])
    bounds = [c - 0.5 for c in codes] + [codes[-1] + 0.5]
    norm = BoundaryNorm(bounds, cmap.N)
    ax.imshow(np.ma.masked_equal(arr, 0), extent=ext, cmap=cmap, norm=norm,
              interpolation="none", origin="upper", zorder=lay.zorder, aspect="auto")
    ax.set_xlim(ax.get_xlim())  # imshow must not move the true-scale limits


def _draw_inset(fig: Any, p: el.Painter, box: Box, project: Project, prep: _Prepared) -> None:
    """位置示意图: the county (filled) in its surroundings — the layer named by the setting
    ``sheet_inset_layer`` when given, else the county alone — with the map frame's extent."""
    k = p.k
    lo = prep.layout
    county = prep.data.county
    p.rect(box, lw_mm=0.2 * k, zorder=6)
    p.text(box.x + 1.5 * k, box.y1 - 4.0 * k, "位置示意图", 7 * k, zorder=8)
    inner = box.inset(1.2 * k)
    inner = Box(inner.x, inner.y, inner.w, inner.h - 4.0 * k)
    ax = fig.add_axes((inner.x / lo.width, inner.y / lo.height, inner.w / lo.width,
                       inner.h / lo.height))
    ax.set_axis_off()
    ctx_geoms = None
    name = project.setting("sheet_inset_layer")
    if name and project.has_layer(str(name)):
        with_ctx = project.read_layer(str(name), columns=[])
        ctx_geoms = np.asarray(with_ctx.geometry.values, dtype=object)
        el.draw_vector(ax, "polygon", ctx_geoms,
                       th.Style(face=(235, 235, 235), edge=(120, 120, 120), lw_mm=0.12), 1)
    if county is not None:
        el.draw_vector(ax, "polygon", np.asarray([county], dtype=object),
                       th.Style(face=(240, 160, 140), edge=(120, 30, 30), lw_mm=0.2), 2)
    x0, y0, x1, y1 = prep.extent
    ax.add_artist(_rect_patch(prep.extent, k))
    bx = [x0, y0, x1, y1]
    if ctx_geoms is not None and len(ctx_geoms):
        cb = shapely.total_bounds(ctx_geoms)
        bx = [min(bx[0], cb[0]), min(bx[1], cb[1]), max(bx[2], cb[2]), max(bx[3], cb[3])]
    w, h = bx[2] - bx[0], bx[3] - bx[1]
    pad = 0.06
    cx, cy = (bx[0] + bx[2]) / 2, (bx[1] + bx[3]) / 2
    # equal aspect inside the fixed box
    sx = w * (1 + 2 * pad) / inner.w
    sy = h * (1 + 2 * pad) / inner.h
    s = max(sx, sy)
    ax.set_xlim(cx - s * inner.w / 2, cx + s * inner.w / 2)
    ax.set_ylim(cy - s * inner.h / 2, cy + s * inner.h / 2)
    ax.set_autoscale_on(False)


def _rect_patch(extent: tuple[float, float, float, float], k: float) -> Any:
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = extent
    return Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor="none", edgecolor=(0.85, 0.1, 0.1),
                     linewidth=0.35 * k * 72 / 25.4, zorder=5)


def compose_sheet(project: Project | str | Path, key: str, *, paper: str = "A3",
                  orientation: str | None = "landscape", scale: int | None = None,
                  public: bool = False, watermark: str | None = None,
                  generalise_m: float | None = None, review_no: str | None = None,
                  inset: bool = True, task: Task | None = None) -> Any:
    """The sheet as a matplotlib Figure (for previews: ``fig.savefig(png, dpi=40)``).
    ``fig._multiplan_result`` holds the :class:`SheetResult` fields known before saving."""
    fig, _ = _compose(_open(project), key, paper=paper, orientation=orientation, scale=scale,
                      public=public, watermark=watermark, generalise_m=generalise_m,
                      review_no=review_no, inset=inset, task=ensure_task(task))
    return fig


def _compose(project: Project, key: str, *, paper: str, orientation: str | None, scale: Any,
             public: bool, watermark: str | None, generalise_m: float | None,
             review_no: str | None, inset: bool, task: Task) -> tuple[Any, SheetResult]:
    try:
        make_layout(paper, orientation or "landscape")
    except ValueError as exc:
        raise SheetError("sheet.bad_paper", f"纸张或方向无效：{exc}",
                         f"invalid paper or orientation: {exc}") from None
    if generalise_m is not None and not (float(generalise_m) >= 0):
        raise SheetError("sheet.bad_generalise", "综合化容差须为非负数（米）",
                         "the generalisation tolerance must be a non-negative number (m)")
    task.progress(0.0, "读取图层 / reading layers")
    prep = _prepare(project, key, paper, orientation, scale, generalise_m, task)
    task.progress(0.5, "排版 / composing")
    family = _cjk_family()
    fig = _build_figure(project, prep, public=public, watermark=watermark,
                        review_no=review_no, inset=inset, font_family=family)
    lo = prep.layout
    notes = []
    if family is None:
        notes.append("未找到中文字体（Noto Sans CJK SC 或 WenQuanYi Micro Hei），中文可能无法显示 / "
                     "no CJK font found; Chinese text may not render")
    result = SheetResult(
        key=key, paths={}, scale=prep.scale, extent=tuple(float(v) for v in prep.extent),
        legend=[(it.code, it.name) for it in prep.legend], title=plan_title(project),
        sheet_name=prep.spec.zh, paper=lo.paper, orientation=lo.orientation, dpi=0,
        reference_legend=[(it.code, it.name) for it in prep.reference],
        map_box_mm=(lo.map.x, lo.map.y, lo.map.w, lo.map.h),
        scalebar=fig._multiplan_sheet.get("scalebar", {}), public=public,
        generalise_m=generalise_m, font=family, sources=list(prep.data.sources), notes=notes)
    fig._multiplan_result = result  # type: ignore[attr-defined]
    return fig, result


# --------------------------------------------------------------------------- output

def render_sheet(project: Project | str | Path, key: str, *, paper: str = "A3",
                 orientation: str | None = "landscape", scale: int | None = None,
                 public: bool = False, watermark: str | None = None,
                 generalise_m: float | None = None, review_no: str | None = None,
                 formats: tuple[str, ...] | list[str] = FORMATS, dpi: int = 300,
                 out_dir: str | Path, inset: bool = True, task: Task | None = None,
                 basename: str | None = None) -> SheetResult:
    """Compose sheet ``key`` and write it as ``<out_dir>/<basename>.<fmt>`` for each format
    (pdf: vector, fonts embedded; png: ``dpi``, strip-rendered). ``orientation=None``
    picks the orientation that shows the county at the larger scale; ``scale=None`` fits
    the county; ``public`` prints ``review_no`` in the 审图号 field (internal sheets leave it
    blank); ``watermark`` is drawn diagonally across the map; ``generalise_m`` simplifies
    the vector geometry (topology-preserving) and coarsens rasters to that size. The default basename is
    ``<county><sheet name>_<paper>`` (e.g. 长兴县国土空间用地用海规划图_A3)."""
    from matplotlib import rc_context

    task = ensure_task(task)
    project = _open(project)
    fmts = [str(f).lower().lstrip(".") for f in formats]
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        raise SheetError("sheet.bad_format", f"不支持的输出格式：{'、'.join(bad) or '（空）'}（可选 pdf、png）",
                         f"unsupported output format: {', '.join(bad) or '(none)'} "
                         "(pdf or png)")
    dpi = int(dpi)
    if not 30 <= dpi <= 1200:
        raise SheetError("sheet.bad_dpi", f"分辨率须在 30–1200 dpi 之间，而不是 {dpi}",
                         f"the resolution must be 30–1200 dpi, not {dpi}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with rc_context(_RC):
        fig, result = _compose(project, key, paper=paper, orientation=orientation, scale=scale,
                               public=public, watermark=watermark, generalise_m=generalise_m,
                               review_no=review_no, inset=inset, task=task.sub(0.0, 0.5))
        name = basename or _safe(f"{project.county}{result.sheet_name}_{result.paper}")
        result.dpi = dpi
        for i, fmt in enumerate(fmts):
            sub = task.sub(0.5 + 0.5 * i / len(fmts), 0.5 + 0.5 * (i + 1) / len(fmts))
            path = out / f"{name}.{fmt}"
            tmp = path.with_name(path.name + ".part")
            try:
                if fmt == "pdf":
                    sub.progress(0.0, "PDF")
                    fig.savefig(tmp, format="pdf", metadata=_pdf_metadata(result))
                else:
                    write_png_strips(fig, tmp, dpi, task=sub)
                tmp.replace(path)
            finally:
                tmp.unlink(missing_ok=True)
            result.paths[fmt] = path
    return result


_RC = {"pdf.fonttype": 42, "ps.fonttype": 42, "axes.unicode_minus": False,
       "hatch.linewidth": 0.5, "path.simplify": False, "agg.path.chunksize": 0}


def _safe(name: str) -> str:
    return re.sub(r'[\\/:*?"<>|\s]+', "_", name)


def _pdf_metadata(result: SheetResult) -> dict[str, str]:
    return {"Title": f"{result.title} {result.sheet_name}", "Subject": result.sheet_name,
            "Creator": "multiplan"}


def write_png_strips(fig: Any, path: str | Path, dpi: int, *, task: Task | None = None,
                     strip_pixels: int | None = None) -> tuple[int, int]:
    """Render ``fig`` to an RGB PNG strip by strip (each strip is ``savefig`` of a band of
    the figure, so Agg never holds more than one band) and stream it into the file.
    Returns (width, height) in pixels."""
    from matplotlib.transforms import Bbox

    task = ensure_task(task)
    w_in, h_in = fig.get_figwidth(), fig.get_figheight()
    width = round(w_in * dpi)
    height = round(h_in * dpi)
    rows_per = max(1, min(height, (strip_pixels or STRIP_PIXELS) // max(width, 1)))
    with open(path, "wb") as fh:
        png = _PngStream(fh, width, height, dpi)
        # whole-pixel bands: row r of the image is figure pixel row height - 1 - r, so each
        # band is an integer shift of the figure (no resampling differences); Agg truncates
        # a band's size, hence the 0.001-pixel overshoot
        r = 0
        while r < height:
            n = min(rows_per, height - r)
            y0 = (height - r - n) / dpi
            y1 = (height - r + 1e-3) / dpi
            buf = io.BytesIO()
            fig.savefig(buf, format="rgba", dpi=dpi,
                        bbox_inches=Bbox([[0.0, y0], [(width + 1e-3) / dpi, y1]]),
                        facecolor="white")
            a = np.frombuffer(buf.getbuffer(), dtype=np.uint8)
            got = a.size // 4 // width
            a = a[: got * width * 4].reshape(got, width, 4)
            if got < n:  # rounding: repeat the last row (never seen, but never short)
                a = np.concatenate([a, np.repeat(a[-1:], n - got, axis=0)])
            png.write_rows(_flatten_white(a[:n]))
            r += n
            task.progress(r / height, f"PNG {r}/{height}")
        png.close()
    return width, height


def _flatten_white(rgba: np.ndarray) -> np.ndarray:
    """RGB over white (the sheet's background is opaque white, so usually a plain slice)."""
    if int(rgba[..., 3].min()) == 255:
        return rgba[..., :3]
    alpha = rgba[..., 3:4].astype(np.uint16)
    rgb = rgba[..., :3].astype(np.uint16)
    out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return out.astype(np.uint8)


class _PngStream:
    """A minimal streaming PNG writer: 8-bit RGB, filter "Up" per row, one zlib stream
    split into IDAT chunks, pHYs with the resolution."""

    def __init__(self, fh: Any, width: int, height: int, dpi: int) -> None:
        self.fh = fh
        self.width = width
        self.prev = np.zeros((width * 3,), dtype=np.uint8)
        self.z = zlib.compressobj(3)  # level 6 is 3–4× slower for ≈ half the size
        fh.write(b"\x89PNG\r\n\x1a\n")
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        ppm = round(dpi / 0.0254)
        self._chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1))

    def _chunk(self, tag: bytes, data: bytes) -> None:
        self.fh.write(struct.pack(">I", len(data)))
        self.fh.write(tag)
        self.fh.write(data)
        self.fh.write(struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    def write_rows(self, rgb: np.ndarray, chunk: int = 256) -> None:
        for i in range(0, rgb.shape[0], chunk):
            part = np.ascontiguousarray(rgb[i:i + chunk]).reshape(min(chunk, rgb.shape[0] - i),
                                                                  -1)
            rows = np.empty((part.shape[0], part.shape[1] + 1), dtype=np.uint8)
            rows[:, 0] = 2  # filter "Up": byte minus the byte above, modulo 256
            np.subtract(part[:1], self.prev[None, :], out=rows[:1, 1:])
            np.subtract(part[1:], part[:-1], out=rows[1:, 1:])
            self.prev = part[-1].copy()
            data = self.z.compress(rows.tobytes())
            if data:
                self._chunk(b"IDAT", data)

    def close(self) -> None:
        data = self.z.flush()
        if data:
            self._chunk(b"IDAT", data)
        self._chunk(b"IEND", b"")
