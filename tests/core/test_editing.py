"""Editing sessions on a copy of the 长兴县 sample: save in one transaction (checked by GDAL
and validate_gpkg), discard, cancel, locks, avoid-overlap, attribute domains, the
journal of unsaved edits, snapping, and the GeoPackage binary codec."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, box

from multiplan.core.commands import EditRefused, VertexRef, find_vertices, iter_vertices
from multiplan.core.editing import (
    EditSession,
    SnapIndex,
    Snapper,
    discard_journal,
    geometry_from_blob,
    gpkg_blob,
    gpkg_header,
    is_locked,
    lock_layer,
    locked_layers,
    pending_journals,
    register_gpkg_functions,
    search_codes,
    unlock_layer,
)
from multiplan.core.project import Project
from multiplan.core.tasks import Cancelled, CancelToken, Task

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "changxing"
LAYER = "现状用地"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    shutil.copytree(SAMPLE, tmp_path / "p")
    return Project.open(tmp_path / "p")


def validate_gpkg(path: Path, extra: bool = False) -> None:
    args = [sys.executable, "-m", "osgeo_utils.samples.validate_gpkg"]
    proc = subprocess.run([*args, *(["--extra"] if extra else []), str(path)], check=False,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _py(v):
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    return v.item() if isinstance(v, np.generic) else v


def gdal_snapshot(gpkg: Path, layer: str) -> dict:
    """The layer as GDAL reads it, in the shape of EditSession.snapshot()."""
    df = pyogrio.read_dataframe(gpkg, layer=layer, fid_as_index=True, use_arrow=True)
    cols = sorted(c for c in df.columns if c != "geometry")
    wkb = shapely.to_wkb(df.geometry.values)
    values = [[_py(v) for v in df[c].tolist()] for c in cols]
    return {int(fid): (wkb[i], tuple(zip(cols, (v[i] for v in values), strict=True)))
            for i, fid in enumerate(df.index)}


def table_digest(gpkg: Path, layer: str) -> str:
    """SHA-256 over every row of the layer table and its R-tree, read with plain SQLite."""
    h = hashlib.sha256()
    with contextlib.closing(sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True)) as conn:
        for table in (layer, f"rtree_{layer}_geom"):
            for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY 1'):
                h.update(repr(row).encode())
    return h.hexdigest()


def edits(s: EditSession) -> dict:
    """The session's unsaved state: {fid: feature key or None} over the touched fids (with
    the same loaded layer, equal edits mean equal layers)."""
    p = s.buffer.pending()
    out = {}
    for fid in sorted(p["added"] + p["changed"] + p["deleted"]):
        f = s.feature(fid)
        out[fid] = None if f is None else (shapely.to_wkb(f.geometry),
                                           tuple(sorted(f.attrs.items())))
    return out


def rtree_consistent(gpkg: Path, layer: str) -> None:
    """Every row has an R-tree entry whose box holds the row's geometry (R-tree boxes are
    float32, rounded outwards), and there are no stray entries."""
    df = pyogrio.read_dataframe(gpkg, layer=layer, fid_as_index=True, columns=[])
    with sqlite3.connect(gpkg) as conn:
        rt = {r[0]: r[1:] for r in conn.execute(f'SELECT id, minx, maxx, miny, maxy FROM '
                                                 f'"rtree_{layer}_geom"')}
        counted = conn.execute("SELECT feature_count FROM gpkg_ogr_contents WHERE "
                               "table_name = ?", (layer,)).fetchone()[0]
    assert set(rt) == {int(f) for f in df.index}
    assert counted == len(df)
    b = shapely.bounds(df.geometry.values)
    box_ = np.array([rt[int(f)] for f in df.index])
    assert (box_[:, 0] <= b[:, 0]).all() and (box_[:, 1] >= b[:, 2]).all()
    assert (box_[:, 2] <= b[:, 1]).all() and (box_[:, 3] >= b[:, 3]).all()
    assert np.abs(box_ - b[:, [0, 2, 1, 3]]).max() < 1.0


def shared_vertex(s: EditSession) -> tuple[int, VertexRef, float, float, list[int]]:
    """A vertex of parcel 1 shared with at least one other parcel."""
    f = s.feature(1)
    for ref, x, y in iter_vertices(f.geometry):
        others = [fid for fid in s.buffer.candidates((x, y, x, y)) if fid != 1
                  and find_vertices(s.feature(fid).geometry, x, y, 0)]
        if others:
            return 1, ref, x, y, others
    raise AssertionError("no shared vertex")


# --------------------------------------------------------------------------- binary format


def test_gpkg_blob_matches_gdal_bytes(project: Project) -> None:
    with sqlite3.connect(project.gpkg) as conn:
        rows = conn.execute(f'SELECT geom FROM "{LAYER}" LIMIT 50').fetchall()
    for (blob,) in rows:
        srs, env, empty, off = gpkg_header(blob)
        assert srs == 4549 and not empty and off == 40
        g = geometry_from_blob(blob)
        x0, y0, x1, y1 = g.bounds
        assert env == (x0, x1, y0, y1)
        assert gpkg_blob(g, 4549) == blob  # byte for byte what GDAL wrote
    empty = gpkg_blob(MultiPolygon(), 4549)
    assert empty[:4] == b"GP\x00\x11" and gpkg_header(empty)[2]


def test_rtree_functions_registered(project: Project) -> None:
    conn = sqlite3.connect(project.gpkg)
    try:
        blob = gpkg_blob(MultiPolygon([box(470000, 3420000, 470010, 3420020)]), 4549)
        with pytest.raises(sqlite3.OperationalError, match="ST_IsEmpty"):
            conn.execute(f'INSERT INTO "{LAYER}" (geom) VALUES (?)', (blob,))
        conn.rollback()
        register_gpkg_functions(conn)
        cur = conn.execute(f'INSERT INTO "{LAYER}" (geom) VALUES (?)', (blob,))
        row = conn.execute(f'SELECT minx, maxx, miny, maxy FROM "rtree_{LAYER}_geom" '
                           f'WHERE id = ?', (cur.lastrowid,)).fetchone()
        assert row == pytest.approx((470000, 470010, 3420000, 3420020))
        conn.rollback()
    finally:
        conn.close()


# --------------------------------------------------------------------------- save


def test_save_commits_everything_gdal_reads_it_back(project: Project) -> None:
    before_change = _last_change(project)
    s = EditSession.open(project, LAYER, actor="张工")
    fid, ref, x, y, others = shared_vertex(s)
    s.options.topological = True
    s.move_vertex(fid, ref, (x + 0.5, y + 0.25), reason="与影像核对")
    x0, y0, x1, y1 = s.feature(5).geometry.bounds
    split = s.split(LineString([(x0 - 1, (y0 + y1) / 2), (x1 + 1, (y0 + y1) / 2)]), [5])
    s.set_attributes([2, 3, 4], {"YDYHFLDM": "0201"})
    s.delete([6, 7])
    add = s.add_polygon(box(480000, 3420000, 480020, 3420030), {"YDYHFLDM": "0703"})
    s.undo()
    s.redo()
    expected = s.snapshot()
    assert s.dirty
    result = s.save()
    assert result.added == sorted([*split.new_fids, add.fid])
    assert result.deleted == [6, 7]
    assert set(result.changed) >= {1, 2, 3, 4, 5, *others}
    assert result.commands == 5 and not s.dirty and not s.stack.can_undo

    validate_gpkg(project.gpkg, extra=True)
    assert gdal_snapshot(project.gpkg, LAYER) == expected
    rtree_consistent(project.gpkg, LAYER)
    assert project.layer(LAYER).feature_count == 20006 - 2 + 2
    assert _last_change(project) != before_change

    log = project.audit_log()
    edits = [r for r in log if r["action"].startswith("edit.")]
    assert [r["action"] for r in edits] == ["edit.move_vertex", "edit.split",
                                           "edit.change_attributes", "edit.delete_features",
                                           "edit.add_polygon", "edit.save"]
    assert {r["actor"] for r in edits} == {"张工"} and {r["target"] for r in edits} == {LAYER}
    first = json.loads(edits[0]["detail"])
    assert first["label"] == "移动顶点" and first["reason"] == "与影像核对"
    assert first["changed"] == sorted([fid, *others]) and first["edited_at"]

    # the reopened layer is what the session holds; a second save writes nothing new
    s2 = EditSession.open(project, LAYER)
    assert s2.snapshot() == expected
    assert s.save().rows == 0
    s.close()
    s2.close()


def _last_change(project: Project) -> str:
    with sqlite3.connect(project.gpkg) as conn:
        return conn.execute("SELECT last_change FROM gpkg_contents WHERE table_name = ?",
                            (LAYER,)).fetchone()[0]


def test_discard_and_cancel_leave_the_layer_untouched(project: Project) -> None:
    original = table_digest(project.gpkg, LAYER)
    s = EditSession.open(project, LAYER)
    s.delete(range(1, 2001))
    s.set_attributes(range(3000, 5000), {"BZ": "草稿"})
    token = CancelToken()
    calls = []

    def progress(frac, msg):
        calls.append(frac)
        if len(calls) == 5:
            token.cancel()

    with pytest.raises(Cancelled):
        s.save(Task(progress, token))
    assert table_digest(project.gpkg, LAYER) == original  # rolled back
    assert s.dirty and s.stack.can_undo  # the session kept its edits
    s.discard()
    assert edits(s) == {} and not s.dirty and not s.stack.can_undo
    assert table_digest(project.gpkg, LAYER) == original
    assert project.audit_log()[-1]["action"] == "edit.discard"
    assert pending_journals(project) == []
    s.close()


def test_save_refuses_a_layer_changed_on_disk(project: Project) -> None:
    a = EditSession.open(project, LAYER)
    b = EditSession.open(project, LAYER)
    a.set_attributes(1, {"BZ": "甲"})
    b.set_attributes(1, {"BZ": "乙"})
    a.save()
    with pytest.raises(EditRefused) as err:
        b.save()
    assert err.value.code == "layer.changed_on_disk" and "日志" in err.value.zh
    assert gdal_snapshot(project.gpkg, LAYER)[1][1] == tuple(sorted(a.feature(1).attrs.items()))
    a.close()
    b.close()


# --------------------------------------------------------------------------- locks


def test_control_lines_are_locked_and_unlock_is_audited(project: Project) -> None:
    assert set(locked_layers(project)) == {"生态保护红线", "永久基本农田", "城镇开发边界"}
    with pytest.raises(EditRefused) as err:
        EditSession.open(project, "生态保护红线")
    assert err.value.code == "layer.locked"
    assert "生态保护红线" in err.value.zh and "read-only" in err.value.en
    with pytest.raises(EditRefused) as err:
        EditSession.open(project, "永久基本农田", unlock_reason="  ")
    assert err.value.code == "layer.locked"

    s = EditSession.open(project, "永久基本农田", unlock_reason="落实省厅核查意见", actor="李工")
    row = project.audit_log()[-1]
    assert (row["action"], row["target"], row["actor"]) == ("layer.unlock", "永久基本农田",
                                                           "李工")
    assert json.loads(row["detail"])["reason"] == "落实省厅核查意见"
    s.set_attributes(s.fids()[0], {"DLMC": "水田"})
    s.save()
    assert json.loads(project.audit_log()[-1]["detail"])["unlock_reason"] == "落实省厅核查意见"
    s.close()
    with pytest.raises(EditRefused) as err:
        unlock_layer(project, "城镇开发边界", "想改")
    assert err.value.code == "layer.control_line"


def test_project_can_lock_any_layer(project: Project) -> None:
    assert not is_locked(project, LAYER)
    lock_layer(project, LAYER, reason="报批冻结", actor="王工")
    assert is_locked(project, LAYER)
    with pytest.raises(EditRefused):
        EditSession.open(project, LAYER)
    with pytest.raises(EditRefused) as err:
        unlock_layer(project, LAYER, "")
    assert err.value.code == "layer.unlock_reason"
    unlock_layer(project, LAYER, "批复已下达", actor="王工")
    assert not is_locked(project, LAYER)
    actions = [(r["action"], json.loads(r["detail"]).get("reason")) for r in
               project.audit_log()[-2:]]
    assert actions == [("layer.lock", "报批冻结"), ("layer.unlock", "批复已下达")]


# --------------------------------------------------------------------------- avoid overlap


def test_avoid_overlap_clips_against_locked_layers_and_neighbours(project: Project) -> None:
    red = project.read_layer("生态保护红线").geometry.union_all()
    parcels = project.read_layer(LAYER).geometry
    s = EditSession.open(project, LAYER)
    # a 200 m square straddling the edge of a redline polygon
    edge = red.boundary.interpolate(0.3, normalized=True)
    square = box(edge.x - 100, edge.y - 100, edge.x + 100, edge.y + 100)
    overlap = square.intersection(red).area
    assert 0 < overlap < square.area
    s.set_avoid_overlap("locked")
    cmd = s.add_polygon(square, {"YDYHFLDM": "0701"})
    got = s.feature(cmd.fid).geometry
    assert got.intersection(red).area < 1e-6
    assert got.area == pytest.approx(square.area - overlap, rel=1e-9)
    assert [w.code for w in cmd.warnings] == ["overlap.clipped"]
    assert cmd.warnings[0].extra["removed_m2"] == pytest.approx(overlap, rel=1e-9)
    s.undo()

    # parcels tile the county: delete one and draw over its hole and into its neighbours;
    # clipped against the neighbours, the new parcel fills exactly the hole
    hole = s.feature(100).geometry
    s.delete([100])
    s.set_avoid_overlap(None, neighbours=True)
    drawn = hole.buffer(15, join_style="mitre")
    cmd = s.add_polygon(drawn)
    got = s.feature(cmd.fid).geometry
    near = parcels.drop(index=100)
    near = near.iloc[near.sindex.query(drawn, predicate="intersects")]
    assert len(near) >= 3
    assert shapely.area(shapely.intersection(got, near.values)).sum() < 1e-6 * got.area
    assert got.symmetric_difference(hole).area < 1e-6 * hole.area
    s.close(discard=True)


# --------------------------------------------------------------------------- attributes


def test_attribute_domains_and_derived_columns(project: Project) -> None:
    s = EditSession.open(project, LAYER)
    with pytest.raises(EditRefused) as err:
        s.set_attributes(1, {"YDYHFLDM": "9999"})
    assert err.value.code == "attribute.code_invalid" and "9999" in err.value.zh
    s.set_attributes(1, {"YDYHFLDM": 101})  # normalised to the code "0101"
    a = s.feature(1).attrs
    assert (a["YDYHFLDM"], a["YDYHFLMC"], a["mp_code"], a["mp_name"], a["mp_status"]) == (
        "0101", "水田", "0101", "水田", "ok")
    with pytest.raises(EditRefused) as err:
        s.set_attributes(1, {"YDYHFLDM": "0101", "YDYHFLMC": "旱地"})
    assert err.value.code == "attribute.name_mismatch"
    with pytest.raises(EditRefused) as err:
        s.set_attributes(1, {"TBMJ": "abc"})
    assert err.value.code == "attribute.type" and "TBMJ" in err.value.en
    s.set_attributes(1, {"TBMJ": "12.5"})
    assert s.feature(1).attrs["TBMJ"] == 12.5
    with pytest.raises(EditRefused) as err:
        s.set_attributes(1, {"mp_status": "ok"})
    assert err.value.code == "attribute.derived"
    s.close(discard=True)

    # a gbt21010_2017 layer: its own domain, and the 2023 columns follow its crosswalk
    s = EditSession.open(project, "土地利用规划")
    fid = next(f for f in s.fids() if s.feature(f).attrs["DLBM"] != "0101")
    s.set_attributes(fid, {"DLBM": "0101"})
    a = s.feature(fid).attrs
    assert (a["DLBM"], a["DLMC"], a["mp_code"], a["mp_status"]) == ("0101", "水田", "0101", "ok")
    with pytest.raises(EditRefused):
        s.set_attributes(fid, {"DLBM": "0703"})  # a 2023 code, not a 2017 one
    s.set_attributes(fid, {"mp_code": "0102"})  # a person's decision on the 2023 class
    assert (s.feature(fid).attrs["mp_name"], s.feature(fid).attrs["mp_status"]) == ("水浇地",
                                                                                    "ok")
    s.close(discard=True)


def test_code_picker_search() -> None:
    by_name = search_codes("水田")
    assert by_name[0].code == "0101"
    by_code = search_codes("07")
    assert by_code[0].code == "07" and all(e.code.startswith("07") for e in by_code)
    assert {e.code for e in search_codes("宅基地")} >= {"0703"}


# --------------------------------------------------------------------------- journal


def test_journal_restores_unsaved_edits(project: Project) -> None:
    s = EditSession.open(project, LAYER, actor="赵工")
    assert not s.journal.path.exists()  # nothing written before the first edit
    s.delete([10, 11])
    s.set_attributes([12, 13], {"BZ": "待核"})
    s.move_features([14], 3, 4)
    s.undo()  # undone: restored as redo-able
    expected = edits(s)
    assert s.journal.path.exists()
    assert pending_journals(project) == []  # a live session's journal is not offered
    s.close()  # closed without saving: the journal stays

    (info,) = pending_journals(project)
    assert (info.layer, info.actor, info.commands, info.base_matches) == (LAYER, "赵工", 2,
                                                                          True)
    assert info.labels == ["删除要素", "批量修改属性"]
    assert "2 项未保存的编辑" in info.describe()
    r = EditSession.restore(project, info)
    assert edits(r) == expected
    assert r.stack.undo_text() == "撤销 批量修改属性" and r.stack.redo_text() == "重做 移动要素"
    r.redo()
    r.set_attributes(20, {"BZ": "续编"})  # appended to the same journal
    expected = r.snapshot()
    r.close()
    (info,) = pending_journals(project)
    assert info.commands == 4
    r = EditSession.restore(project, info)
    assert r.snapshot() == expected
    r.save()
    assert pending_journals(project) == []
    assert gdal_snapshot(project.gpkg, LAYER) == expected
    r.close()


def test_journal_refused_when_the_layer_changed(project: Project) -> None:
    s = EditSession.open(project, LAYER)
    s.set_attributes(1, {"BZ": "甲"})
    s.close()
    other = EditSession.open(project, LAYER)
    other.set_attributes(1, {"BZ": "乙"})
    other.save()
    other.close()
    (info,) = pending_journals(project)
    assert not info.base_matches
    with pytest.raises(EditRefused) as err:
        EditSession.restore(project, info)
    assert err.value.code == "journal.conflict" and "要素 1" in err.value.zh
    (info,) = pending_journals(project)  # still offered; the user may discard it
    discard_journal(project, info, actor="周工")
    assert pending_journals(project) == []
    assert project.audit_log()[-1]["action"] == "edit.journal_discard"


def test_torn_last_journal_line_is_ignored(project: Project) -> None:
    s = EditSession.open(project, LAYER)
    s.delete([1])
    s.delete([2])
    path = s.journal.path
    s.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # the last record was cut short by a crash
    (info,) = pending_journals(project)
    assert info.commands == 1
    r = EditSession.restore(project, info)
    assert r.feature(1) is None and r.feature(2) is not None
    r.delete([3])
    r.close()
    (info,) = pending_journals(project)
    assert info.commands == 2 and info.labels == ["删除要素", "删除要素"]


# --------------------------------------------------------------------------- snapping


def test_snapping_to_vertices_then_segments(project: Project) -> None:
    s = EditSession.open(project, LAYER)
    _, _ref, x, y, _ = shared_vertex(s)
    snap = s.snapper(["乡镇界"])
    hit = snap.snap(x + 0.3, y - 0.4, 1.0)
    assert (hit.kind, hit.x, hit.y, hit.layer) == ("vertex", x, y, LAYER)
    assert hit.distance == pytest.approx(0.5)
    assert snap.snap(x + 0.3, y - 0.4, 0.4) is None or snap.snap(
        x + 0.3, y - 0.4, 0.4).kind == "segment"
    # the middle of an edge of parcel 1: snaps onto the edge, not to a vertex
    ring = np.asarray(s.feature(1).geometry.geoms[0].exterior.coords)
    lengths = np.hypot(*(ring[1:] - ring[:-1]).T)
    i = int(np.argmax(lengths))
    mx, my = (ring[i] + ring[i + 1]) / 2
    hit = snap.snap(mx + 0.2, my + 0.2, 0.5)
    assert hit.kind == "segment" and hit.distance <= 0.5 * math.sqrt(2) * 0.4 + 1e-9
    assert Point(hit.x, hit.y).distance(s.feature(hit.fid).geometry.boundary) < 1e-6
    # unsaved edits are snapped to; the dragged vertex itself is not
    s.move_features([1], 1000, 0)
    moved = s.feature(1).geometry.geoms[0].exterior.coords[0]
    hit = snap.snap(moved[0] + 0.1, moved[1], 0.5)
    assert (hit.fid, hit.kind) == (1, "vertex")
    hit = snap.snap(moved[0] + 0.1, moved[1], 0.5, exclude_xy=moved)
    assert hit is None or (hit.x, hit.y) != moved
    s.close(discard=True)


def test_snapping_to_a_line_layer(project: Project) -> None:
    rivers = project.read_layer("河流")
    line = rivers.geometry.iloc[0]
    first = line.geoms[0] if line.geom_type == "MultiLineString" else line
    (x0, y0), (x1, y1) = first.coords[0], first.coords[1]
    snap = Snapper([SnapIndex.from_project(project, "河流")])
    hit = snap.snap(x0 + 0.2, y0 - 0.1, 1.0)
    assert (hit.kind, hit.x, hit.y, hit.layer) == ("vertex", x0, y0, "河流")
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    tol = 0.25 * math.hypot(x1 - x0, y1 - y0)
    hit = snap.snap(mx, my, tol)
    assert hit.kind == "segment" and hit.distance < 1e-6
    assert Point(hit.x, hit.y).distance(line) < 1e-6


def test_snap_index_on_a_synthetic_150k_layer() -> None:
    n = 388  # 388 × 388 ≈ 150k squares of 50 m
    xs, ys = np.meshgrid(np.arange(n) * 50.0, np.arange(n) * 50.0)
    geoms = shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + 50, ys.ravel() + 50)
    index = SnapIndex("grid", geoms, np.arange(1, len(geoms) + 1))
    snap = Snapper([index])
    rng = np.random.default_rng(7)
    for x, y in rng.uniform(0, n * 50, size=(200, 2)):
        hit = snap.snap(x, y, 3.0)
        vx, vy = round(x / 50) * 50, round(y / 50) * 50
        if math.hypot(x - vx, y - vy) <= 3.0:
            assert (hit.kind, hit.x, hit.y) == ("vertex", vx, vy)
        elif min(abs(x - vx), abs(y - vy)) <= 3.0:
            assert hit.kind == "segment"
        else:
            assert hit is None
