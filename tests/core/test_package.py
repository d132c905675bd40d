"""The data package of an export (issue 9 part 6): a GeoPackage 1.3 that GDAL's validator
accepts, the published layers, and QGIS styles in ``layer_styles`` and as ``.qml`` files.

The QML shape checked here is QGIS's documented one (``<qgis>`` root, ``renderer-v2`` of
type ``categorizedSymbol`` with ``categories/category`` (value, label, symbol) and
``symbols/symbol`` of type ``fill`` holding a ``SimpleFill`` layer with ``prop`` k/v pairs).
Colours are compared with the official table as printed in domain.md §3.1 (typed in here),
not with the code's own lookup.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pyogrio
import pytest
from osgeo_utils.samples import validate_gpkg as _validator
from test_publish import X0, Y0, build_project, set_state

from multiplan.core.project import Project
from multiplan.core.publish.package import PACKAGE_NAME, qml_categorized, write_package

#: 《市级国土空间总体规划制图规范（试行）》附录B as transcribed in domain.md §3.1 (level-2
#: name first, else level-1).
OFFICIAL = {"0101": (245, 248, 220), "0301": (104, 177, 103), "0701": (255, 255, 45),
            "1701": (51, 142, 192), "1001": (187, 150, 116)}
LABELS = {"0101": "0101 水田", "0301": "0301 乔木林地", "0701": "0701 城镇住宅用地",
          "1701": "1701 河流水面", "1001": "1001 工业用地"}


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> tuple[Project, Path, list, list]:
    root = tmp_path_factory.mktemp("package")
    project = build_project(root / "p")
    from multiplan.core.conflicts import detect_conflicts
    detect_conflicts(project, "国土空间规划", "生态保护红线")
    (root / "data").mkdir()
    layers, notes = write_package(project, root / "data" / PACKAGE_NAME, public=False,
                                  when="2026-11-29T08:00:00+00:00")
    return project, root / "data" / PACKAGE_NAME, layers, notes


def test_geopackage_is_valid_version_1_3(package) -> None:
    _, path, _, _ = package
    errors = _validator.check(str(path), abort_at_first_error=False, warning_msg=False)
    assert errors == [], errors
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 10300


def test_published_layers_and_their_content(package) -> None:
    project, path, layers, notes = package
    got = {name for name, _ in pyogrio.list_layers(path)}
    assert {"GHYDYH", "STBHHX", "YJJBNT", "CZKFBJ", "XZQ", "SSKJ", "CYTB"} <= got
    assert [li.table for li in layers] == ["GHYDYH", "STBHHX", "YJJBNT", "CZKFBJ", "XZQ",
                                          "SSKJ", "CYTB"]
    plan = pyogrio.read_dataframe(path, layer="GHYDYH")
    src = pyogrio.read_dataframe(project.gpkg, layer="国土空间规划")
    assert sorted(plan["YDYHFLDM"]) == sorted(src["DLBM"])
    assert plan.geometry.area.sum() == pytest.approx(src.geometry.area.sum())
    assert plan.crs.to_epsg() == 4549
    # ogrinfo (GDAL's own reader) sees the layer with its features
    out = subprocess.run(["ogrinfo", "-so", "-ro", str(path), "STBHHX"], capture_output=True,
                         text=True, check=True).stdout
    assert "Feature Count: 1" in out and "Multi Polygon" in out
    with sqlite3.connect(path) as conn:
        n = conn.execute("SELECT count(*) FROM CYTB").fetchone()[0]
    with sqlite3.connect(project.gpkg) as conn:
        want = conn.execute("SELECT count(*) FROM mp_conflicts WHERE sliver = 0").fetchone()[0]
    assert n == want > 0
    assert any("公众意见" in n and "GZYJ" in n for n in notes)  # none imported here


def test_layer_styles_table_follows_the_qgis_convention(package) -> None:
    _, path, layers, _ = package
    with sqlite3.connect(path) as conn:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(layer_styles)")]
        rows = conn.execute("SELECT f_table_name, f_geometry_column, styleName, styleQML, "
                            "useAsDefault, update_time FROM layer_styles").fetchall()
        reg = conn.execute("SELECT data_type FROM gpkg_contents WHERE table_name = "
                           "'layer_styles'").fetchone()
        geom = dict(conn.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
    for c in ("f_table_catalog", "f_table_schema", "f_table_name", "f_geometry_column",
              "styleName", "styleQML", "styleSLD", "useAsDefault", "description", "owner",
              "ui", "update_time"):
        assert c in cols
    assert reg == ("attributes",)
    assert {r[0] for r in rows} == {li.table for li in layers}
    for table, gcol, _, qml, default, when in rows:
        assert gcol == geom[table] and default == 1
        assert when == "2026-11-29T08:00:00.000Z"
        qml_file = path.parent / f"{table}.qml"
        assert qml_file.read_text(encoding="utf-8") == qml


def _renderer(qml: str) -> ET.Element:
    root = ET.fromstring(qml.split("\n", 1)[1])  # after the DOCTYPE line
    assert root.tag == "qgis"
    r = root.find("renderer-v2")
    assert r is not None
    return r


def _fill_colour(sym: ET.Element) -> tuple[int, ...]:
    assert sym.get("type") == "fill"
    layer = sym.find("layer")
    assert layer is not None and layer.get("class") == "SimpleFill"
    props = {p.get("k"): p.get("v") for p in layer.findall("prop")}
    return tuple(int(v) for v in props["color"].split(","))


def test_land_use_style_is_categorized_with_official_colours(package) -> None:
    _, path, _, _ = package
    r = _renderer((path.parent / "GHYDYH.qml").read_text(encoding="utf-8"))
    assert r.get("type") == "categorizedSymbol" and r.get("attr") == "YDYHFLDM"
    cats = r.findall("categories/category")
    syms = {s.get("name"): s for s in r.findall("symbols/symbol")}
    assert [c.get("value") for c in cats] == sorted(OFFICIAL)  # only the classes present
    for c in cats:
        code = c.get("value")
        assert c.get("label") == LABELS[code]
        assert c.get("render") == "true"
        assert _fill_colour(syms[c.get("symbol")])[:3] == OFFICIAL[code]


def test_control_line_and_sansheng_styles(package) -> None:
    _, path, _, _ = package
    r = _renderer((path.parent / "STBHHX.qml").read_text(encoding="utf-8"))
    assert r.get("type") == "singleSymbol"
    layer = r.find("symbols/symbol/layer")
    props = {p.get("k"): p.get("v") for p in layer.findall("prop")}
    assert props["outline_color"].startswith("220,20,20")  # red outline (provisional)
    r = _renderer((path.parent / "CZKFBJ.qml").read_text(encoding="utf-8"))
    props = {p.get("k"): p.get("v") for p in r.find("symbols/symbol/layer").findall("prop")}
    assert props["outline_style"] == "dash"
    r = _renderer((path.parent / "SSKJ.qml").read_text(encoding="utf-8"))
    assert r.get("attr") == "SSKJ"
    assert [c.get("label") for c in r.findall("categories/category")] == ["生产", "生活", "生态"]
    r = _renderer((path.parent / "CYTB.qml").read_text(encoding="utf-8"))
    assert r.get("attr") == "severity"


def test_qml_escapes_labels() -> None:
    qml = qml_categorized("c", [('a"<b>&', "标签 <1> & “2”", (1, 2, 3))])
    cat = _renderer(qml).find("categories/category")
    assert cat.get("value") == 'a"<b>&' and cat.get("label") == "标签 <1> & “2”"


def test_package_without_plan_or_register_says_what_is_missing(tmp_path) -> None:
    p = Project.create(tmp_path / "p", county="空县", crs=4549)
    layers, notes = write_package(p, tmp_path / "x.gpkg", public=True, generalise_m=50)
    assert layers == [] and not (tmp_path / "x.gpkg").exists()
    assert any("GHYDYH" in n for n in notes) and any("CYTB" in n for n in notes)


def test_sample_county_package_is_valid(tmp_path, repo_root) -> None:
    """The committed sample county (copied): 2 344 plan parcels, public, generalised."""
    shutil.copytree(repo_root / "sample_data" / "changxing", tmp_path / "cx")
    p = Project.open(tmp_path / "cx")
    layers, _ = write_package(p, tmp_path / "pkg.gpkg", public=True, generalise_m=50)
    errors = _validator.check(str(tmp_path / "pkg.gpkg"), abort_at_first_error=False,
                              warning_msg=False)
    assert errors == [], errors
    by = {li.table: li for li in layers}
    assert by["GHYDYH"].features == 2344 and by["YJJBNT"].features == 1701
    g = pyogrio.read_dataframe(tmp_path / "pkg.gpkg", layer="GHYDYH", read_geometry=True)
    assert g.geometry.is_valid.all()


def test_public_comments_as_points_without_names_in_the_public_edition(tmp_path) -> None:
    from multiplan.core.comments import import_comments

    p = build_project(tmp_path / "p")
    set_state(p, "公示中")
    csv = tmp_path / "comments.csv"
    csv.write_text("意见,x,y,姓名\n"
                   f"河边不宜建工厂,{X0 + 4500},{Y0 + 3250},张三\n"
                   f"保留农田,{X0 + 500},{Y0 + 500},李四\n", encoding="utf-8")
    import_comments(p, csv)
    for public in (True, False):
        path = tmp_path / f"{public}.gpkg"
        layers, _notes = write_package(p, path, public=public, generalise_m=50)
        assert "GZYJ" in {li.table for li in layers}
        assert _validator.check(str(path), abort_at_first_error=False, warning_msg=False) == []
        g = pyogrio.read_dataframe(path, layer="GZYJ")
        assert sorted(g["text"]) == ["保留农田", "河边不宜建工厂"]
        assert set(g.geometry.geom_type) == {"Point"}
        xy = sorted((round(pt.x), round(pt.y)) for pt in g.geometry)
        assert xy == sorted([(round(X0 + 4500), round(Y0 + 3250)),
                             (round(X0 + 500), round(Y0 + 500))])
        assert ("author" in g.columns) is (not public)
        r = _renderer((tmp_path / "GZYJ.qml").read_text(encoding="utf-8"))
        sym = r.find("symbols/symbol")
        assert sym.get("type") == "marker"
        assert sym.find("layer").get("class") == "SimpleMarker"


QGIS_PYTHON = Path("/usr/bin/python3")
QGIS_SCRIPT = """
import json, sys
from qgis.core import QgsApplication, QgsVectorLayer
app = QgsApplication([], False); app.initQgis()
out = {}
for name in sys.argv[2:]:
    lyr = QgsVectorLayer(f"{sys.argv[1]}|layername={name}", name, "ogr")
    r = lyr.renderer()
    cats = r.categories() if hasattr(r, "categories") else []
    out[name] = {"valid": lyr.isValid(), "count": lyr.featureCount(),
                 "renderer": r.type(), "attr": getattr(r, "classAttribute", lambda: None)(),
                 "cats": [[c.value(), c.label(), list(c.symbol().color().getRgb()[:3])]
                          for c in cats]}
print(json.dumps(out, ensure_ascii=False))
"""


def _has_qgis() -> bool:
    if not QGIS_PYTHON.exists():
        return False
    return subprocess.run([str(QGIS_PYTHON), "-c", "import qgis.core"], capture_output=True,
                          check=False).returncode == 0


@pytest.mark.skipif(not _has_qgis(), reason="QGIS (Debian python3-qgis) is not installed")
def test_qgis_opens_the_package_styled(package) -> None:
    """Where QGIS is installed, QGIS itself loads each layer with the default style stored
    in layer_styles: the land-use layer categorized by code in the official colours."""
    import json
    import os

    _, path, _, _ = package
    proc = subprocess.run([str(QGIS_PYTHON), "-c", QGIS_SCRIPT, str(path), "GHYDYH", "SSKJ"],
                          capture_output=True, text=True, check=False, timeout=120,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    land = got["GHYDYH"]
    assert land["valid"] and land["renderer"] == "categorizedSymbol"
    assert land["attr"] == "YDYHFLDM"
    assert {v: (label, tuple(rgb)) for v, label, rgb in land["cats"]} == {
        code: (LABELS[code], OFFICIAL[code]) for code in OFFICIAL}
    assert got["SSKJ"]["valid"] and got["SSKJ"]["renderer"] == "categorizedSymbol"
