"""Correctness of the map sheets, measured on the files written.

Independent routes: poppler's ``pdffonts`` / ``pdftotext``; the PDF's own drawing
operators (decompressed and read here, not through matplotlib); pixels of the PNG; geopandas
and rasterio on the project's layers for what the legend and the extent must be.

The golden image ``tests/data/golden/sheet_a4_tiny.png`` is the A4 land-use sheet of the
tiny synthetic project at 72 dpi. Regenerate it after an intended change of the look with
``MULTIPLAN_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/core/test_sheets_output.py -k golden``
and look at it before committing.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from PIL import Image
from shapely.geometry import Polygon, box

from multiplan.core.layers import LayerRecord
from multiplan.core.project import Project
from multiplan.core.sheets import (
    SheetError,
    available_sheets,
    compose_sheet,
    render_sheet,
    sheet_availability,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data" / "changxing"
GOLDEN = ROOT / "tests" / "data" / "golden" / "sheet_a4_tiny.png"
EPSG = 4549
X0, Y0 = 480_000.0, 3_400_000.0

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None
                                   or shutil.which("pdffonts") is None,
                                   reason="poppler-utils (pdftotext, pdffonts) not installed")


# --------------------------------------------------------------------------- helpers

def pdftotext(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], check=True,
                          capture_output=True).stdout.decode("utf-8")


def pdf_content_paths(pdf: Path) -> list[dict]:
    """Every painted path of the page content streams: its points (page points), the paint
    operator and the fill colour (gray or rgb) in force. A small reader of the PDF operators
    m/l/c/h/re and f/S/B/n/g/rg, independent of the writer."""
    data = pdf.read_bytes()
    out: list[dict] = []
    for m in re.finditer(rb"<<(.*?)>>\s*stream\r?\n", data, re.DOTALL):
        start = m.end()
        end = data.index(b"endstream", start)
        raw = data[start:end]
        if b"FlateDecode" in m.group(1):
            try:
                raw = zlib.decompress(raw)
            except zlib.error:
                continue
        if b" m\n" not in raw:
            continue
        text = raw.decode("latin1")
        fill: tuple = (0.0,)
        stack: list[str] = []
        subpaths: list[list[tuple[float, float]]] = []
        in_text = False
        for line in text.splitlines():
            s = line.strip()
            if s == "BT":
                in_text = True
                continue
            if s == "ET":
                in_text = False
                continue
            if in_text:
                continue
            for tok in s.split():
                if tok in ("m", "l", "c", "re", "h", "f", "f*", "S", "s", "B", "B*", "b", "n",
                           "g", "rg"):
                    nums = [float(v) for v in stack if _num(v)]
                    if tok == "m":
                        subpaths.append([(nums[-2], nums[-1])])
                    elif tok in ("l", "c") and subpaths:
                        subpaths[-1].append((nums[-2], nums[-1]))
                    elif tok == "re":
                        x, y, w, h = nums[-4:]
                        subpaths.append([(x, y), (x + w, y), (x + w, y + h), (x, y + h)])
                    elif tok == "g":
                        fill = (nums[-1],)
                    elif tok == "rg":
                        fill = tuple(nums[-3:])
                    elif tok in ("f", "f*", "S", "s", "B", "B*", "b", "n"):
                        for sp in subpaths:
                            out.append({"pts": sp, "op": tok, "fill": fill})
                        subpaths = []
                    stack = []
                else:
                    stack.append(tok)
    return out


def _num(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _rect(pts: list[tuple[float, float]]) -> tuple[float, float, float, float] | None:
    """(x0, y0, x1, y1) if the points are an axis-parallel rectangle."""
    p = pts[:-1] if len(pts) == 5 and pts[0] == pts[-1] else pts
    if len(p) != 4:
        return None
    xs = sorted({round(x, 3) for x, _ in p})
    ys = sorted({round(y, 3) for _, y in p})
    if len(xs) != 2 or len(ys) != 2:
        return None
    return xs[0], ys[0], xs[1], ys[1]


PT_MM = 25.4 / 72.0


def scale_from_text(text: str) -> int:
    m = re.search(r"比例尺\s*1\s*:\s*([\d ]+\d)", text)
    assert m, "no numeric scale on the sheet"
    return int(m.group(1).replace(" ", ""))


def scalebar_labels(text: str) -> tuple[list[float], str]:
    """The numbers printed under the scale bar and its unit, from the PDF text."""
    after = text[text.index("比例尺"):]
    lines = [t.strip() for t in after.splitlines()[1:] if t.strip()]
    nums = []
    for t in lines:
        if re.fullmatch(r"\d+(\.\d+)?", t):
            nums.append(float(t))
        else:
            assert t in ("千米", "米"), t
            return nums, t
    raise AssertionError("scale bar unit not found")


def read_png_rows(path: Path, every: int = 1):
    """Decode an 8-bit RGB PNG row by row (all five PNG filters), yielding (row, array)
    for every ``every``-th row — bounded memory even for an A0 sheet."""
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
        chunks = []
        while True:
            n, tag = struct.unpack(">I4s", fh.read(8))
            body = fh.read(n)
            fh.read(4)
            if tag == b"IHDR":
                w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
                assert depth == 8 and ctype == 2
            elif tag == b"IDAT":
                chunks.append(body)
            elif tag == b"IEND":
                break
    z = zlib.decompressobj()
    stride = w * 3 + 1
    prev = np.zeros(w * 3, dtype=np.uint8)
    buf = b""
    row = 0
    for c in chunks:
        buf += z.decompress(c)
        pos = 0
        while len(buf) - pos >= stride and row < h:
            line = np.frombuffer(buf, dtype=np.uint8, count=stride, offset=pos)
            pos += stride
            f, cur = int(line[0]), line[1:].astype(np.int16)
            if f == 0:
                rec = cur.astype(np.uint8)
            elif f == 2:
                rec = ((cur + prev) & 0xFF).astype(np.uint8)
            else:  # Sub, Average, Paeth: per byte
                rec = np.zeros(w * 3, dtype=np.uint8)
                for i in range(w * 3):
                    a = int(rec[i - 3]) if i >= 3 else 0
                    b = int(prev[i])
                    cc = int(prev[i - 3]) if i >= 3 else 0
                    if f == 1:
                        pr = a
                    elif f == 3:
                        pr = (a + b) // 2
                    else:
                        p = a + b - cc
                        pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
                        pr = a if pa <= pb and pa <= pc else (b if pb <= pc else cc)
                    rec[i] = (int(cur[i]) + pr) & 0xFF
            prev = rec
            if row % every == 0:
                yield row, rec.reshape(w, 3)
            row += 1
        buf = buf[pos:]
    assert row == h, f"PNG has {row} rows, header says {h}"


def png_size(path: Path) -> tuple[int, int, float | None]:
    with open(path, "rb") as fh:
        data = fh.read(200)
    w, h = struct.unpack(">II", data[16:24])
    dpi = None
    i = data.find(b"pHYs")
    if i > 0:
        ppm, _, unit = struct.unpack(">IIB", data[i + 4:i + 13])
        dpi = ppm * 0.0254 if unit == 1 else None
    return w, h, dpi


# --------------------------------------------------------------------------- projects

def _write(tmp: Path, name: str, gdf: gpd.GeoDataFrame) -> Path:
    p = tmp / f"{name}.gpkg"
    pyogrio.write_dataframe(gdf, p, driver="GPKG")
    return p


def make_tiny_project(folder: Path) -> Project:
    """A 4 km × 3 km county: 4 plan parcels (0101 水田, 0301 乔木林地, 0701 城镇住宅用地,
    1701 河流水面) plus one 0201 果园 parcel 30 km away (never in the mapped extent), two
    townships, a red line, basic farmland, a development boundary, a lake crossing the edge,
    and a seat point."""
    from multiplan.core.io import import_layer

    src = folder.parent / (folder.name + "_src")
    src.mkdir(parents=True, exist_ok=True)
    prj = Project.create(folder, "示例县", crs=EPSG)
    prj.set_settings(plan_date="2026年11月", plan_organisation="示例规划设计研究院",
                     plan_period="2021-2035")
    county = box(X0, Y0, X0 + 4000, Y0 + 3000)
    crs = f"EPSG:{EPSG}"
    g = gpd.GeoDataFrame({"name": ["示例县"]}, geometry=[county], crs=crs)
    import_layer(prj, _write(src, "county", g), name="行政区", role="admin_boundary")
    tw = gpd.GeoDataFrame({"XZQMC": ["甲镇", "乙乡"]},
                          geometry=[box(X0, Y0, X0 + 2000, Y0 + 3000),
                                    box(X0 + 2000, Y0, X0 + 4000, Y0 + 3000)], crs=crs)
    import_layer(prj, _write(src, "tw", tw), name="乡镇界", role="township",
                 name_field="XZQMC")
    # the river parcel is a wiggly band (many vertices) for the generalisation test
    t = np.linspace(0, 4000, 401)
    upper = [(X0 + x, Y0 + 1500 + 60 * np.sin(x / 90.0) + 40) for x in t]
    lower = [(X0 + x, Y0 + 1500 + 60 * np.sin(x / 90.0) - 40) for x in t[::-1]]
    river = Polygon(upper + lower)
    parcels = [box(X0, Y0 + 1500, X0 + 2000, Y0 + 3000).difference(river),
               box(X0 + 2000, Y0 + 1500, X0 + 4000, Y0 + 3000).difference(river),
               box(X0, Y0, X0 + 4000, Y0 + 1500).difference(river),
               river.intersection(county),
               box(X0 + 30_000, Y0, X0 + 31_000, Y0 + 1000)]
    plan = gpd.GeoDataFrame({"YDYHFLDM": ["0101", "0301", "0701", "1701", "0201"]},
                            geometry=parcels, crs=crs)
    import_layer(prj, _write(src, "plan", plan), name="国土空间规划", role="spatial_plan",
                 scheme="ydyh2023", code_field="YDYHFLDM")
    red = gpd.GeoDataFrame({"HXMC": ["水源涵养"]},
                           geometry=[box(X0 + 2300, Y0 + 2000, X0 + 3800, Y0 + 2900)], crs=crs)
    import_layer(prj, _write(src, "red", red), name="生态保护红线", role="eco_redline")
    farm = gpd.GeoDataFrame({"DLBM": ["0101"]},
                            geometry=[box(X0 + 200, Y0 + 1800, X0 + 1800, Y0 + 2800)],
                            crs=crs)
    import_layer(prj, _write(src, "farm", farm), name="永久基本农田", role="basic_farmland")
    ub = gpd.GeoDataFrame({"KFBJLX": ["集中建设区"]},
                          geometry=[box(X0 + 500, Y0 + 200, X0 + 3000, Y0 + 1200)], crs=crs)
    import_layer(prj, _write(src, "ub", ub), name="城镇开发边界", role="urban_boundary")
    lake = gpd.GeoDataFrame({"name": ["湖"]},
                            geometry=[box(X0 + 3700, Y0 + 2200, X0 + 5200, Y0 + 3300)], crs=crs)
    import_layer(prj, _write(src, "lake", lake), name="湖泊", role="water")
    return prj


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_tiny_project(tmp_path_factory.mktemp("tiny") / "p")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("sample") / "changxing"
    shutil.copytree(SAMPLE, dst, ignore=shutil.ignore_patterns("exports"))
    return dst


@pytest.fixture(scope="module")
def landuse_a3(sample: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("landuse")
    # an internal sheet: a review number passed by mistake must not be printed
    return render_sheet(sample, "landuse", paper="A3", orientation="landscape", dpi=300,
                        review_no="浙S(2026)001号", out_dir=out)


# --------------------------------------------------------------------------- fonts, text

@needs_poppler
def test_pdf_embeds_an_sc_cjk_font_and_the_title_round_trips(landuse_a3) -> None:
    pdf = landuse_a3.paths["pdf"]
    fonts = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True,
                           text=True).stdout.splitlines()[2:]
    rows = [re.match(r"^(\S+)\s.*\s(yes|no)\s+(yes|no)\s+(yes|no)\s+\d+\s+\d+\s*$", r)
            for r in fonts]
    rows = [r for r in rows if r]
    assert rows, fonts
    assert all(r.group(2) == "yes" for r in rows), fonts  # every font embedded
    assert any("cjksc" in r.group(1).lower().replace("-", "").replace(" ", "")
               or "wenquanyi" in r.group(1).lower() for r in rows), fonts
    text = pdftotext(pdf)
    lines = [t.strip() for t in text.splitlines()]
    assert "长兴县国土空间总体规划（2021—2035年）" in lines
    assert landuse_a3.title == "长兴县国土空间总体规划（2021—2035年）"
    assert "国土空间用地用海规划图" in lines
    for must in ("2000国家大地坐标系", "1985国家高程基准", "审图号", "编制单位", "编制日期",
                 "图  例", "北", "数据来源"):
        assert must in text.replace("图 例", "图  例"), must
    assert scale_from_text(text) == landuse_a3.scale
    assert "浙S(2026)001号" not in text and "征求意见稿" not in text
    # internal sheets carry km coordinates on the frame: eastings every 20 km in the
    # extent 448.8–518.8 km (the last one with its unit), northings 3400–3440
    x0, y0, x1, y1 = landuse_a3.extent
    assert (x0, x1) == (pytest.approx(448_837, abs=1), pytest.approx(518_849, abs=1))
    assert (y0, y1) == (pytest.approx(3_397_962, abs=1), pytest.approx(3_453_024, abs=1))
    for label in ("460", "480", "500 km", "3400", "3420", "3440"):
        assert label in lines, label


# --------------------------------------------------------------------------- true scale

@needs_poppler
def test_scale_bar_in_the_pdf_matches_the_stated_scale(landuse_a3) -> None:
    pdf = landuse_a3.paths["pdf"]
    text = pdftotext(pdf)
    n = scale_from_text(text)
    nums, unit = scalebar_labels(text)
    assert nums[0] == 0 and len(nums) >= 3
    seg_ground = (nums[1] - nums[0]) * (1000.0 if unit == "千米" else 1.0)
    total_ground = nums[-1] * (1000.0 if unit == "千米" else 1.0)
    # the bar: filled rectangles of one height, end to end, alternately dark and white
    rects = []
    for p in pdf_content_paths(pdf):
        r = _rect(p["pts"])
        if r and p["op"] in ("f", "f*"):
            rects.append((r, p["fill"]))
    bars = []
    for (r, fill) in rects:
        row = sorted([(q, f) for q, f in rects if abs(q[1] - r[1]) < 0.01
                      and abs(q[3] - r[3]) < 0.01], key=lambda t: t[0][0])
        chain = [row[0]]
        for q in row[1:]:
            if abs(q[0][0] - chain[-1][0][2]) < 0.01:
                chain.append(q)
        dark = [sum(f) / len(f) < 0.3 for _, f in chain]
        if len(chain) >= 4 and all(dark[i] != dark[i + 1] for i in range(len(chain) - 1)):
            bars.append(chain)
    assert bars, "no scale bar found in the PDF drawing"
    chain = bars[0]
    widths_mm = [(q[2] - q[0]) * PT_MM for q, _ in chain]
    for w in widths_mm:
        assert w / 1000.0 * n == pytest.approx(seg_ground, rel=0.005)
    total_mm = (chain[-1][0][2] - chain[0][0][0]) * PT_MM
    assert total_mm / 1000.0 * n == pytest.approx(total_ground, rel=0.005)


def test_scale_bar_in_the_png_matches_the_stated_scale(landuse_a3) -> None:
    """Measured in pixels of the 300 dpi PNG: the bar's third segment (dark, between two
    white ones) by its ink — antialiasing keeps the coverage, so this is sub-pixel exact."""
    png = landuse_a3.paths["png"]
    _, _, dpi = png_size(png)
    assert dpi == pytest.approx(300, abs=0.01)
    img = np.asarray(Image.open(png).convert("L")).astype(float)
    found = None
    for y in range(img.shape[0]):
        row = img[y]
        dark = row < 128
        edges = np.flatnonzero(np.diff(dark.astype(np.int8))) + 1
        runs = np.split(np.arange(len(row)), edges)
        for i in range(len(runs) - 3):
            a, b, c, d = runs[i:i + 4]
            if dark[a[0]] and not dark[b[0]] and dark[c[0]] and not dark[d[0]] and \
                    len(b) >= 60 and abs(len(b) - len(c)) <= 2 and len(d) >= 0.8 * len(c):
                found = (y, b, c, d)
                break
        if found:
            break
    assert found, "no scale bar pattern in the PNG"
    y, b, c, d = found
    y += 3  # a row inside the bar, away from its top edge
    lo, hi = b[len(b) // 2], d[len(d) // 2]
    ink = float(np.median(img[y, c[len(c) // 4]:c[3 * len(c) // 4]]))  # the bar's dark tone
    paper = float(np.median(img[y, b[len(b) // 4]:b[3 * len(b) // 4]]))
    cover = np.clip((paper - img[y, lo:hi]) / (paper - ink), 0.0, 1.0)
    seg_px = float(cover.sum())
    seg_mm = seg_px / dpi * 25.4
    n = landuse_a3.scale
    seg_ground = landuse_a3.scalebar["segment_m"]
    assert seg_mm / 1000.0 * n == pytest.approx(seg_ground, rel=0.005)
    # and the labels say the same segment length (independent of the returned value)
    nums, unit = scalebar_labels(pdftotext(landuse_a3.paths["pdf"])) \
        if shutil.which("pdftotext") else ([0, seg_ground / 1000], "千米")
    assert (nums[1] - nums[0]) * (1000.0 if unit == "千米" else 1.0) == pytest.approx(seg_ground)


@needs_poppler
def test_map_frame_in_the_pdf_is_the_extent_at_true_scale(landuse_a3, sample: Path) -> None:
    pdf = landuse_a3.paths["pdf"]
    n = scale_from_text(pdftotext(pdf))
    xmin, ymin, xmax, ymax = landuse_a3.extent
    frames = []
    for p in pdf_content_paths(pdf):
        r = _rect(p["pts"])
        if r and p["op"] in ("S", "s"):
            w_mm = (r[2] - r[0]) * PT_MM
            h_mm = (r[3] - r[1]) * PT_MM
            frames.append((w_mm, h_mm))
    hits = [f for f in frames
            if f[0] / 1000 * n == pytest.approx(xmax - xmin, rel=0.005)
            and f[1] / 1000 * n == pytest.approx(ymax - ymin, rel=0.005)]
    assert hits, f"no stroked frame of the extent's size at 1:{n} among {frames[:12]}"
    # the extent holds the county and is not much larger (fit rule: 3 % margin, N rounded
    # up to two significant figures, so the limiting side is at most 1.06 × 1.1 the county)
    county = gpd.read_file(sample / "plan.gpkg", layer="行政区")
    cx0, cy0, cx1, cy1 = county.total_bounds
    assert xmin <= cx0 and ymin <= cy0 and xmax >= cx1 and ymax >= cy1
    ratio = min((xmax - xmin) / (cx1 - cx0), (ymax - ymin) / (cy1 - cy0))
    assert 1.0 < ratio <= 1.06 * 1.1 + 1e-9
    # centred on the county
    assert (xmin + xmax) / 2 == pytest.approx((cx0 + cx1) / 2, abs=1.0)
    assert (ymin + ymax) / 2 == pytest.approx((cy0 + cy1) / 2, abs=1.0)


# --------------------------------------------------------------------------- legend

def _plan_classes(gpkg: Path, layer: str, extent: tuple[float, ...]) -> set[str]:
    gdf = gpd.read_file(gpkg, layer=layer)
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    gdf = gdf[gdf.intersects(box(*extent))]
    assert (gdf["mp_status"] == "ok").all()
    return set(gdf["mp_code"])


@needs_poppler
def test_legend_is_the_classes_present(landuse_a3, sample: Path) -> None:
    want = _plan_classes(sample / "plan.gpkg", "土地利用规划", landuse_a3.extent)
    assert {c for c, _ in landuse_a3.legend} == want
    text = pdftotext(landuse_a3.paths["pdf"])
    drawn = set(re.findall(r"^(\d{4,6}) \S+$", text, re.MULTILINE))
    assert drawn == want


@needs_poppler
def test_zoomed_sheet_legend_drops_classes_outside(sample: Path, tmp_path: Path) -> None:
    """At 1:50 000 on A4 the frame shows the county seat's surroundings only: the legend
    lists exactly the plan classes meeting that frame (fewer than the county has)."""
    res = render_sheet(sample, "landuse", paper="A4", orientation="landscape", scale=50_000,
                       formats=("pdf",), out_dir=tmp_path)
    x0, _, x1, _ = res.extent
    lo = res.map_box_mm
    assert (x1 - x0) == pytest.approx(lo[2] / 1000 * 50_000)
    want = _plan_classes(sample / "plan.gpkg", "土地利用规划", res.extent)
    every = _plan_classes(sample / "plan.gpkg", "土地利用规划", (0, 0, 1e7, 1e7))
    assert want < every
    text = pdftotext(res.paths["pdf"])
    assert set(re.findall(r"^(\d{4,6}) \S+$", text, re.MULTILINE)) == want
    assert scale_from_text(text) == 50_000


def test_tiny_legends_and_availability(tiny: Project, tmp_path: Path) -> None:
    avail = sheet_availability(tiny)
    assert available_sheets(tiny) == ["landuse", "controls", "sansheng"]
    assert not avail["conflicts"][0] and "差异图斑" in avail["conflicts"][1]
    assert not avail["assessment_urban"][0] and "双评价" in avail["assessment_urban"][1]
    with pytest.raises(SheetError) as ei:
        render_sheet(tiny, "conflicts", out_dir=tmp_path)
    assert "multiplan conflicts" in ei.value.zh
    fig = compose_sheet(tiny, "landuse", paper="A4")
    res = fig._multiplan_result
    # 0201 lies 30 km east of the county: outside the frame, so not in the legend
    assert [c for c, _ in res.legend] == ["0101", "0301", "0701", "1701"]
    assert dict(res.legend)["0701"] == "城镇住宅用地"
    assert res.title == "示例县国土空间总体规划（2021—2035年）"
    fig = compose_sheet(tiny, "controls", paper="A4", orientation="portrait")
    assert [c for c, _ in fig._multiplan_result.legend] == [
        "eco_redline", "basic_farmland", "urban_boundary"]
    assert {c for c, _ in fig._multiplan_result.reference_legend} >= {"county", "township",
                                                                      "water"}
    # orientation=None: the 4 km × 3 km county is wider than tall, so landscape shows it at
    # the larger scale; with the city layer named, the inset draws it too
    tiny_ctx = gpd.read_file(tiny.gpkg, layer="行政区")
    assert tiny_ctx.total_bounds[2] - tiny_ctx.total_bounds[0] > \
        tiny_ctx.total_bounds[3] - tiny_ctx.total_bounds[1]
    auto = compose_sheet(tiny, "landuse", paper="A3", orientation=None)._multiplan_result
    assert auto.orientation == "landscape"
    assert auto.scale <= compose_sheet(tiny, "landuse", paper="A3", orientation="portrait"
                                       )._multiplan_result.scale
    with pytest.raises(SheetError):
        render_sheet(tiny, "no_such_sheet", out_dir=tmp_path)
    for bad in ({"paper": "B5"}, {"orientation": "sideways"}, {"scale": 5},
                {"formats": ("svg",)}, {"dpi": 5}):
        with pytest.raises(SheetError):
            render_sheet(tiny, "landuse", out_dir=tmp_path, **bad)


def test_sheet_follows_a_change_of_the_project(tiny: Project, tmp_path: Path) -> None:
    """Layers are cached per state of plan.gpkg: a write shows on the next sheet."""
    prj = _copy(tiny, tmp_path / "p")
    first = compose_sheet(prj, "landuse", paper="A4")._multiplan_result
    again = compose_sheet(prj, "landuse", paper="A3")._multiplan_result
    assert [c for c, _ in first.legend] == [c for c, _ in again.legend] == [
        "0101", "0301", "0701", "1701"]
    prj.set_settings(plan_layer="永久基本农田")  # imported without a scheme: no 2023 codes
    after = compose_sheet(prj, "landuse", paper="A4")._multiplan_result
    assert after.legend == [("无", "未分类")]


def test_assessment_sheet_legend_is_the_raster_classes_in_frame(tiny: Project,
                                                                tmp_path: Path) -> None:
    import rasterio
    from rasterio.transform import from_origin

    prj = _copy(tiny, tmp_path / "p")
    # 100 m cells, 60 km wide: classes 1 and 3 over the county, 2 only 25 km east of it
    arr = np.zeros((60, 600), dtype=np.uint8)
    arr[:, :25] = 1
    arr[:, 25:45] = 3
    arr[:, 290:300] = 2
    tr = from_origin(X0 - 500, Y0 + 3500, 100, 100)
    (prj.folder / "rasters" / "assessment").mkdir(parents=True)
    path = prj.folder / "rasters" / "assessment" / "urban_suitability.tif"
    with rasterio.open(path, "w", driver="GTiff", width=600, height=60, count=1,
                       dtype="uint8", crs=f"EPSG:{EPSG}", transform=tr, nodata=0) as ds:
        ds.write(arr, 1)
    prj.register_raster(LayerRecord(
        name="双评价_城镇建设适宜性", kind="raster", level="county", role="assessment_result",
        raster_path="rasters/assessment/urban_suitability.tif",
        report={"classes": {"1": "适宜", "2": "一般适宜", "3": "不适宜",
                            "4": "生态保护极重要区（不评价）"}, "run_id": "x" * 32}))
    assert "assessment_urban" in available_sheets(prj)
    fig = compose_sheet(prj, "assessment_urban", paper="A4")
    res = fig._multiplan_result
    # independent: the classes of the cells whose centres fall in the frame
    with rasterio.open(path) as ds:
        data = ds.read(1)
        rows, cols = np.indices(data.shape)
        xs, ys = rasterio.transform.xy(ds.transform, rows.ravel(), cols.ravel())
    x0, y0, x1, y1 = res.extent
    xs, ys = np.asarray(xs), np.asarray(ys)
    inside = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
    want = sorted(set(data.ravel()[inside].tolist()) - {0})
    assert want == [1, 3]
    assert [c for c, _ in res.legend] == ["1", "3"]
    assert dict(res.legend) == {"1": "适宜", "3": "不适宜"}


def test_conflicts_sheet_legend_is_the_non_sliver_types(tiny: Project, tmp_path: Path) -> None:
    prj = _copy(tiny, tmp_path / "p")
    crs = f"EPSG:{EPSG}"
    reg = gpd.GeoDataFrame({
        "conflict_id": ["a", "b", "c", "d", "e"],
        "conflict_type": ["C5", "C6", "C2", "C8", "C3"],
        "type_name": ["规划建设用地占生态保护红线", "规划建设用地占永久基本农田",
                      "城规建设、土规非建设", "现状与规划地类差异", "土规建设、城规非建设"],
        "severity": ["冲突", "冲突", "冲突", "提示", "冲突"],
        "sliver": [0, 0, 1, 0, 0]},
        geometry=[box(X0 + 100, Y0 + 100, X0 + 400, Y0 + 400),
                  box(X0 + 1000, Y0 + 100, X0 + 1400, Y0 + 400),
                  box(X0 + 2000, Y0 + 100, X0 + 2001, Y0 + 400),  # a sliver: not shown
                  box(X0 + 3000, Y0 + 100, X0 + 3400, Y0 + 400),  # 提示: not shown
                  box(X0 + 40_000, Y0, X0 + 40_500, Y0 + 500)],  # far outside
        crs=crs)
    pyogrio.write_dataframe(reg, prj.gpkg, layer="mp_conflicts", driver="GPKG")
    assert "conflicts" in available_sheets(prj)
    res = compose_sheet(prj, "conflicts", paper="A4")._multiplan_result
    got = gpd.read_file(prj.gpkg, layer="mp_conflicts")
    got = got[(got["sliver"] == 0) & got["severity"].isin(["冲突", "警告"])
              & got.intersects(box(*res.extent))]
    assert [c for c, _ in res.legend] == sorted(got["conflict_type"]) == ["C5", "C6"]


# --------------------------------------------------------------------------- public version

@needs_poppler
def test_public_sheet_prints_review_number_watermark_and_generalises(tiny: Project,
                                                                      tmp_path: Path) -> None:
    public = render_sheet(tiny, "landuse", paper="A4", formats=("pdf",), public=True,
                          review_no="浙S(2026)001号", watermark="征求意见稿", generalise_m=50,
                          out_dir=tmp_path / "p")
    tp = pdftotext(public.paths["pdf"])
    assert "浙S(2026)001号" in tp
    assert " km" not in tp  # no coordinates on a public sheet
    flat = re.sub(r"\s", "", tp)  # the diagonal watermark comes out one glyph per line
    assert "征求意见稿" in flat or "稿见意求征" in flat
    # the wiggly river (800 vertices) and the parcels along it lose most of their vertices
    # at a 50 m tolerance: the PDF draws far fewer points than the plan layer has
    plan = gpd.read_file(tiny.gpkg, layer="国土空间规划")
    source = int(shapely.get_num_coordinates(plan.geometry.values).sum())
    drawn = sum(len(p["pts"]) for p in pdf_content_paths(public.paths["pdf"]))
    assert source > 1600
    assert drawn < source - 1000, (source, drawn)
    assert [c for c, _ in public.legend] == ["0101", "0301", "0701", "1701"]


def _copy(prj: Project, dst: Path) -> Project:
    shutil.copytree(prj.folder, dst)
    return Project.open(dst)


def test_cancel_leaves_no_file(tiny: Project, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    from multiplan.core.sheets import composer
    from multiplan.core.tasks import Cancelled, CancelToken, Task

    monkeypatch.setattr(composer, "STRIP_PIXELS", 200_000)  # about ten bands

    token = CancelToken()
    seen: list[float] = []

    def progress(f: float, msg: str) -> None:
        seen.append(f)
        if f > 0.6:  # while the PNG is being written
            token.cancel()

    with pytest.raises(Cancelled):
        render_sheet(tiny, "landuse", paper="A4", dpi=150, formats=("png",),
                     out_dir=tmp_path, task=Task(progress, token))
    assert seen and max(seen) < 1.0
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- golden image

def test_golden_image_of_a_small_sheet(tiny: Project, tmp_path: Path) -> None:
    from multiplan.core.fonts import cjk_family

    if cjk_family() != "Noto Sans CJK SC":
        pytest.skip("the golden image is drawn with Noto Sans CJK SC (fonts-noto-cjk)")
    res = render_sheet(tiny, "landuse", paper="A4", orientation="landscape", dpi=72,
                       formats=("png",), out_dir=tmp_path)
    png = res.paths["png"]
    if os.environ.get("MULTIPLAN_REGEN_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        Image.open(png).convert("RGB").save(GOLDEN, optimize=True)
        pytest.skip(f"golden image regenerated: {GOLDEN}")
    assert GOLDEN.is_file(), "no golden image; run with MULTIPLAN_REGEN_GOLDEN=1"
    got = np.asarray(Image.open(png).convert("RGB")).astype(int)
    ref = np.asarray(Image.open(GOLDEN).convert("RGB")).astype(int)
    assert got.shape == ref.shape == (595, 842, 3)
    diff = np.abs(got - ref)
    assert diff.mean() < 2.0
    assert (diff.max(axis=2) > 48).mean() < 0.01


# --------------------------------------------------------------------------- A0

# the peak is read from VmHWM: ru_maxrss survives exec, so in a child of a big pytest process
# it would report the parent's peak
A0_SCRIPT = """
import sys
from multiplan.core.sheets import render_sheet
r = render_sheet(sys.argv[1], "landuse", paper="A0", orientation="portrait", dpi=300,
                 formats=("png",), out_dir=sys.argv[2])
print(r.paths["png"])
print(r.map_box_mm)
with open("/proc/self/status", encoding="ascii") as f:
    print(next(int(x.split()[1]) for x in f if x.startswith("VmHWM:")))
"""


@pytest.mark.slow
def test_a0_at_300_dpi_renders_with_bounded_memory(sample: Path, tmp_path: Path) -> None:
    """A0 at 300 dpi (≈ 9933 × 14043 px) in a child process: it finishes, the PNG has the
    full size, the map area is not blank, and the peak memory stays well under what one
    whole RGBA canvas would take (0.56 GB) on top of the program itself."""
    proc = subprocess.run([sys.executable, "-c", A0_SCRIPT, str(sample), str(tmp_path)],
                          check=False, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    png = Path(lines[-3])
    mx, my, mw, mh = (float(v) for v in lines[-2].strip("()").split(","))
    rss_mb = int(lines[-1]) / 1024
    w, h, dpi = png_size(png)
    assert (w, h) == (9933, 14043)
    assert dpi == pytest.approx(300, abs=0.01)
    assert rss_mb < 700, rss_mb
    # the map area: many distinct colours (plan classes, water, lines), not a blank sheet
    px = 300 / 25.4
    c0, c1 = int(mx * px) + 20, int((mx + mw) * px) - 20
    r0, r1 = int(h - (my + mh) * px) + 20, int(h - my * px) - 20
    colours: set[tuple[int, int, int]] = set()
    white = 0
    total = 0
    for row, rgb in read_png_rows(png, every=97):
        if r0 <= row < r1:
            part = rgb[c0:c1:7]
            colours.update(map(tuple, part.tolist()))
            white += int((part.min(axis=1) >= 250).sum())
            total += len(part)
    assert len(colours) > 25
    assert white / total < 0.6
