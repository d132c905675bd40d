"""Public comments: CSV import during 公示中 only, UTF-8 and GBK (undeclared), three kinds of
location, links to conflict-register rows (expected ids from geopandas on the register as
GDAL reads it), and bad rows named by line with nothing stored."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from pyproj import Transformer
from test_assessment_support import X0, Y0
from test_workflow import T0, copy_of, shared_gated_base, to_notice

from multiplan.core import comments, workflow
from multiplan.core.comments import CommentError, import_comments, read_comments
from multiplan.core.project import Project
from multiplan.core.workflow import WorkflowError


@pytest.fixture(scope="module")
def notice_base(tmp_path_factory) -> Path:
    p = copy_of(shared_gated_base(tmp_path_factory), tmp_path_factory.mktemp("cm") / "p")
    to_notice(p, T0)
    return p.folder


@pytest.fixture
def project(notice_base: Path, tmp_path: Path) -> Project:
    dst = tmp_path / "p"
    shutil.copytree(notice_base, dst)
    return Project.open(dst)


def register(p: Project) -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(p.gpkg, layer="mp_conflicts")


def table_rows(p: Project) -> int:
    with sqlite3.connect(p.gpkg) as c:
        if not c.execute("SELECT 1 FROM sqlite_master WHERE name = 'mp_public_comments'"
                         ).fetchone():
            return 0
        return c.execute("SELECT count(*) FROM mp_public_comments").fetchone()[0]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_refused_outside_public_notice(tmp_path: Path, project: Project):
    workflow.advance(project, "编制中", now=T0)
    f = write(tmp_path / "c.csv", "x,y,text\n1,2,意见\n")
    with pytest.raises(WorkflowError) as exc:
        import_comments(project, f)
    assert exc.value.code == "comments.not_in_notice" and "公示中" in exc.value.zh
    assert table_rows(project) == 0


def test_points_lonlat_and_parcels_are_stored_and_linked(tmp_path: Path, project: Project):
    reg = register(project)
    row = reg[reg["severity"] == "冲突"].iloc[0]
    inside = row.geometry.representative_point()
    outside = shapely.Point(X0 + 50, Y0 + 4400)  # north-west corner, no register row
    assert not reg.geometry.intersects(outside).any()
    lon, lat = Transformer.from_crs(4549, 4490, always_xy=True).transform(inside.x, inside.y)
    # the parcel named by the register row: it touches/holds the same conflict
    layer, fid = row["layer_a"], int(row["fid_a"])
    parcel = pyogrio.read_dataframe(project.gpkg, layer=layer, fid_as_index=True).geometry.loc[
        fid]
    expect_parcel = sorted(reg.loc[(reg.geometry.intersects(parcel)
                                    & ~reg.geometry.touches(parcel))
                                   | ((reg["layer_a"] == layer) & (reg["fid_a"] == fid))
                                   | ((reg["layer_b"] == layer) & (reg["fid_b"] == fid)),
                                   "conflict_id"])
    f = write(tmp_path / "c.csv",
              "编号,姓名,x,y,lon,lat,layer,fid,意见\n"
              f"A1,张三,{inside.x},{inside.y},,,,,建设用地太多\n"
              f"A2,,{outside.x},{outside.y},,,,,保留农田\n"
              f"A3,李四,,,{lon:.9f},{lat:.9f},,,同一处经纬度\n"
              f"A4,王五,,,,,{layer},{fid},整块图斑的意见\n")
    new = import_comments(project, f, actor="公示办")
    assert new["comment_id"].tolist() == ["PC-0001", "PC-0002", "PC-0003", "PC-0004"]
    got = read_comments(project)
    assert got["comment_id"].tolist() == new["comment_id"].tolist()
    assert got["text"].tolist() == ["建设用地太多", "保留农田", "同一处经纬度", "整块图斑的意见"]
    assert got["location_kind"].tolist() == ["xy", "xy", "lonlat", "parcel"]
    assert got["author"].tolist()[:2] == ["张三", None]
    cid = row["conflict_id"]
    assert got["conflict_ids"].iloc[0] == cid and got["n_conflicts"].iloc[0] == 1
    assert got["conflict_ids"].iloc[1] in (None, "") and got["n_conflicts"].iloc[1] == 0
    assert got["conflict_ids"].iloc[2] == cid
    assert got["geometry"].iloc[2].distance(inside) < 0.01  # lon/lat back to the same spot
    assert sorted(got["conflict_ids"].iloc[3].split(",")) == expect_parcel
    assert parcel.contains(got.geometry.iloc[3]) and got["parcel_fid"].iloc[3] == fid
    # a real GeoPackage point layer in the project CRS (GDAL's view)
    info = pyogrio.read_info(project.gpkg, layer="mp_public_comments")
    assert info["geometry_type"] == "Point" and info["crs"].endswith("4549")
    assert comments.comments_for_conflict(project, cid)["comment_id"].tolist() == \
        ["PC-0001", "PC-0003"] + (["PC-0004"] if cid in expect_parcel else [])
    assert project.audit_log()[-1]["action"] == "comments.import"
    # a second file continues the numbering
    f2 = write(tmp_path / "d.csv", f"x,y,text\n{outside.x},{outside.y},再提一条\n")
    assert import_comments(project, f2)["comment_id"].tolist() == ["PC-0005"]
    assert table_rows(project) == 5


def test_gbk_without_declaration(tmp_path: Path, project: Project):
    lon, lat = Transformer.from_crs(4549, 4490, always_xy=True).transform(X0 + 3000, Y0 + 2000)
    f = write(tmp_path / "gbk.csv", f"经度,纬度,意见内容\n{lon:.9f},{lat:.9f},河道两侧应保留绿地\n",
              encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        f.read_bytes().decode("utf-8")
    new = import_comments(project, f)
    assert new["text"].tolist() == ["河道两侧应保留绿地"]
    assert new.geometry.iloc[0].distance(shapely.Point(X0 + 3000, Y0 + 2000)) < 0.01


@pytest.mark.parametrize(("body", "line", "fragment"), [
    ("x,y,text\n1000abc,3431000,意见\n", 2, "坐标无效"),
    ("x,y,text\n480100,3431000,好\n9999999,1,远处\n", 3, "不在本县范围内"),
    ("x,y,text\n119.9,31.0,填成了经纬度\n", 2, "像是经纬度"),
    ("lon,lat,text\n31.0,119.9,填反了\n", 2, "超出中国范围"),
    ("x,y,text\n480100,3431000,\n", 2, "意见内容为空"),
    ("x,y,layer,fid,text\n,,,,没有位置\n", 2, "没有位置"),
])
def test_bad_rows_are_named_and_nothing_is_stored(tmp_path: Path, project: Project, body: str,
                                                  line: int, fragment: str):
    f = write(tmp_path / "bad.csv", body)
    with pytest.raises(CommentError) as exc:
        import_comments(project, f)
    assert exc.value.exit_code == 3
    assert f"第 {line} 行" in exc.value.zh and fragment in exc.value.zh
    assert f"line {line}" in exc.value.en and exc.value.path == str(f)
    assert table_rows(project) == 0


def test_unknown_parcel_and_layer(tmp_path: Path, project: Project):
    f = write(tmp_path / "p.csv", "layer,fid,text\n国土空间规划,1,好\n国土空间规划,99,不存在\n"
              "没有的图层,1,错图层\n国土空间规划,1.5,小数\n")
    with pytest.raises(CommentError) as exc:
        import_comments(project, f)
    zh = exc.value.zh
    assert "4 处" not in zh and "3 处错误" in zh
    assert "第 3 行：图层 国土空间规划 中没有要素号 99 的图斑" in zh
    assert "第 4 行：项目中没有矢量图层 '没有的图层'" in zh
    assert "第 5 行：要素号 '1.5' 不是整数" in zh
    assert {p["line"] for p in exc.value.message.extra["problems"]} == {3, 4, 5}
    assert table_rows(project) == 0


def test_missing_columns_and_undecodable_file(tmp_path: Path, project: Project):
    with pytest.raises(CommentError) as exc:
        import_comments(project, write(tmp_path / "a.csv", "x,y,备注\n1,2,3\n"))
    assert exc.value.code == "comments.no_text_column"
    with pytest.raises(CommentError) as exc:
        import_comments(project, write(tmp_path / "b.csv", "name,text\n张,好\n"))
    assert exc.value.code == "comments.no_location_columns"
    (tmp_path / "c.csv").write_bytes(b"x,y,text\n1,2,\xff\xfe\xff\n")
    with pytest.raises(CommentError) as exc:
        import_comments(project, tmp_path / "c.csv")
    assert exc.value.code == "comments.encoding"


def test_tab_separated_export_with_bom(tmp_path: Path, project: Project):
    f = tmp_path / "t.csv"
    f.write_bytes("\ufeff横坐标\t纵坐标\t意见\n".encode()
                  + f"{X0 + 3000}\t{Y0 + 2000}\t道路，再宽一点\n".encode())
    new = import_comments(project, f)
    assert new["text"].tolist() == ["道路，再宽一点"]
    assert new.geometry.iloc[0].equals(shapely.Point(X0 + 3000, Y0 + 2000))


def test_quoted_multiline_text_and_ragged_rows_are_named_by_file_line(tmp_path: Path,
                                                                       project: Project):
    ok = f'x,y,text\n{X0 + 3000},{Y0 + 2000},"第一段\n第二段"\n\n{X0 + 3100},{Y0 + 2000},x\n'
    f = write(tmp_path / "m.csv", ok)
    new = import_comments(project, f)
    assert new["text"].tolist() == ["第一段\n第二段", "x"]
    assert new["source_line"].tolist() == [2, 5]  # the blank line 4 is skipped
    bad = f'x,y,text\n{X0 + 3000},{Y0 + 2000},"跨\n行"\n{X0 + 3000},{Y0 + 2000},多,一列\n'
    with pytest.raises(CommentError) as exc:
        import_comments(project, write(tmp_path / "r.csv", bad))
    assert "第 4 行：有 4 个字段，表头有 3 个" in exc.value.zh
    assert table_rows(project) == 2
