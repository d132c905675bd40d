"""The committee report PDF: Chinese text with an embedded CJK SC font, the open and decided
conflicts, totals and the gate status, location maps, paging.

Checked with poppler's tools (pdffonts, pdftotext, pdfinfo, pdftoppm), not with matplotlib.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from multiplan.core import committee_report as cr
from multiplan.core import conflicts as cf
from multiplan.core import review as rv
from multiplan.core.classification import unify
from multiplan.core.fonts import cjk_font
from multiplan.core.layers import LayerRecord
from multiplan.core.project import Project

X0, Y0 = 500_000.0, 3_430_000.0
NOW = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)

pytestmark = pytest.mark.skipif(
    shutil.which("pdffonts") is None or shutil.which("pdftotext") is None,
    reason="poppler-utils (pdffonts, pdftotext) not installed")


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def add_layer(project: Project, name: str, role: str, geoms: list,
              codes: list | None = None, replace: bool = False) -> None:
    data: dict = {}
    if codes is not None:
        data["DLBM"] = codes
        u = unify(pd.Series(codes), "ydyh2023")
        for c in u.columns:
            data[c] = u[c].to_numpy()
    else:
        data["name"] = [name] * len(geoms)
    gdf = gpd.GeoDataFrame(data, geometry=geoms, crs=project.epsg)
    rec = LayerRecord(name=name, kind="vector", level="county", role=role, title=name,
                      geometry_type="MultiPolygon", scheme="ydyh2023" if codes else None,
                      code_field="DLBM" if codes else None)
    project.write_vector_layer(gdf, rec, replace=replace)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """Two C6 conflicts (5000 m² and 2000 m²) between 土规 and 永农, inside a county."""
    project = Project.create(tmp_path / "p", county="测试县", crs=4549)
    add_layer(project, "县界", "admin_boundary", [box(-500, -500, 1000, 600)])
    add_layer(project, "土规", "land_use_plan",
              [box(0, 0, 100, 100), box(200, 0, 300, 100), box(400, 0, 500, 100)],
              ["0701", "0101", "1001"])
    add_layer(project, "永农", "basic_farmland",
              [box(50, 0, 150, 100), box(200, 0, 300, 100), box(400, 0, 420, 100)],
              ["0101", "0101", "0101"])
    cf.detect_conflicts(project, "土规", "永农")
    return project


def ids(project: Project) -> list[str]:
    with sqlite3.connect(project.gpkg) as conn:
        return [r[0] for r in conn.execute(
            "SELECT conflict_id FROM mp_conflicts WHERE conflict_type = 'C6' AND sliver = 0 "
            "ORDER BY area_m2 DESC")]


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def test_report_text_fonts_pages_and_maps(project: Project, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch):
    if cjk_font() is None:
        pytest.skip("no CJK font installed")
    big, small = ids(project)
    rv.decide(project, small, "认可例外", reviewer="张三", comment="省级重点项目", now=NOW)
    rv.record_committee_decision(project, "修改后通过", members=["甲", "乙"], chair="丙",
                                 now=NOW)
    # a third conflict: 土规 fid 2 becomes construction land on farmland (10000 m², open)
    add_layer(project, "土规", "land_use_plan",
              [box(0, 0, 100, 100), box(200, 0, 300, 100), box(400, 0, 500, 100)],
              ["0701", "1001", "1001"], replace=True)
    cf.detect_conflicts(project, "土规", "永农")
    third = next(i for i in ids(project) if i not in (big, small))
    monkeypatch.setattr(cr, "ROWS_PER_PAGE", 1)  # two open conflicts → two list pages
    pdf = cr.committee_report(project, tmp_path / "out" / "committee.pdf", now=NOW)
    assert pdf.is_file()
    fonts = run("pdffonts", str(pdf)).splitlines()[2:]
    sc = [f for f in fonts if "cjksc" in f.split()[0].lower()]
    assert sc, fonts
    assert all(f.split()[-5] == "yes" for f in sc)  # the emb column
    text = run("pdftotext", str(pdf), "-")
    flat = text.replace(" ", "")
    assert "规划评议报告" in flat and "测试县" in flat
    assert big in text and small in text and third in text
    assert "认可例外" in flat and "省级重点项目" in flat
    assert "修改后通过" in flat and "评议委员会" in flat
    assert "2026-03-02" in text  # the fixed clock, Beijing date
    assert "无未决冲突" in flat  # the conflicts gate is listed …
    assert "未通过" in flat       # … and fails: two 冲突 conflicts are open
    pages = text.split("\f")
    # title, totals, open list on two pages (largest first), decided list, maps
    heads = [p.split("\n")[0].replace(" ", "") for p in pages if p.strip()]
    assert len(heads) == 6, heads
    open_pages = [p for p in pages if p.startswith("未决评议对象（")]
    assert len(open_pages) == 2
    assert third in open_pages[0] and big in open_pages[1]  # 1.00 ha before 0.50 ha
    assert sum(small in p for p in open_pages) == 0
    decided_page = next(p for p in pages if p.startswith("已决评议对象（"))
    assert small in decided_page and "张三" in decided_page
    maps_page = next(p for p in pages if "位置图" in p.split("\n")[0])
    assert third in maps_page and big in maps_page and "1.0000" in maps_page
    if shutil.which("pdftoppm") is not None:
        run("pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(pdf),
            str(tmp_path / "pg"))
        from PIL import Image

        img = np.asarray(Image.open(next(tmp_path.glob("pg*.png"))).convert("L"))
        assert (img < 128).mean() > 0.005  # text was drawn (not a blank page)


def test_report_on_a_project_without_conflicts(tmp_path: Path):
    project = Project.create(tmp_path / "e", county="空县", crs=4549)
    pdf = cr.committee_report(project, tmp_path / "e.pdf", now=NOW)
    text = run("pdftotext", str(pdf), "-").replace(" ", "")
    assert "空县" in text and "尚未记录" in text


def test_cjk_rc_names_the_sc_family_and_restores():
    import matplotlib

    from multiplan.core import fonts

    if fonts.cjk_font() is None:
        pytest.skip("no CJK font installed")
    before = (matplotlib.rcParams["pdf.fonttype"], list(matplotlib.rcParams["font.sans-serif"]))
    with fonts.cjk_rc() as fam:
        assert fam in fonts.CJK_FAMILIES and fam.endswith(("SC", "Hei"))
        assert matplotlib.rcParams["font.sans-serif"][0] == fam
        assert matplotlib.rcParams["pdf.fonttype"] == 42
        assert matplotlib.rcParams["axes.unicode_minus"] is False
    assert (matplotlib.rcParams["pdf.fonttype"],
            list(matplotlib.rcParams["font.sans-serif"])) == before
    # the two older callers now use the shared finder
    from multiplan.core import sansheng
    from multiplan.core.assessment import report

    assert sansheng.cjk_font is fonts.cjk_font and report.cjk_font is fonts.cjk_font
