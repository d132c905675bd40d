"""Property-based tests: random command sequences on a small parcel layer.

For every sequence (hypothesis draws the commands, their targets and coordinates, the
invalid-geometry policy and whether editing is topological):

* a refused command changes nothing (layer and stack);
* no edit leaves an invalid geometry without saying so (with policy "refuse" every
  geometry stays valid; with "warn" each invalid one was announced by a warning);
* undo of everything returns the original layer exactly (WKB bytes and values);
* redo of everything returns the edited layer exactly;
* saved and reopened — by a new session and by GDAL — equals the in-memory state.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, MultiPolygon, box

from multiplan.core.commands import EditRefused, iter_vertices
from multiplan.core.editing import EditSession
from multiplan.core.layers import LayerRecord
from multiplan.core.project import Project

LAYER = "地块"
N = 4  # 4 × 4 parcels of 100 m
CODES = ["0101", "0103", "0201", "0301", "0703", "1207", "9999"]  # 9999 is not a code


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("props") / "p"
    project = Project.create(folder, county="测试县", crs=4549)
    geoms, rows = [], []
    for r in range(N):
        for c in range(N):
            x, y = 480000 + 100 * c, 3420000 + 100 * r
            geoms.append(MultiPolygon([box(x, y, x + 100, y + 100)]))
            code = CODES[(r + c) % 5]
            rows.append({"YDYHFLDM": code, "YDYHFLMC": None, "TBMJ": 10000.0,
                         "BZ": f"{r}-{c}"})
    gdf = gpd.GeoDataFrame(rows, geometry=geoms, crs=4549)
    from multiplan.core.classification import load_scheme

    gdf["YDYHFLMC"] = [load_scheme("ydyh2023").name(c) for c in gdf["YDYHFLDM"]]
    project.write_vector_layer(gdf, LayerRecord(
        name=LAYER, kind="vector", level="county", role="current_use",
        geometry_type="MultiPolygon", scheme="ydyh2023", code_field="YDYHFLDM",
        name_field="YDYHFLMC"))
    return folder


# --------------------------------------------------------------------------- strategies

coord = st.floats(min_value=-50, max_value=450, allow_nan=False, allow_infinity=False)
small = st.floats(min_value=-30, max_value=30, allow_nan=False, allow_infinity=False)
pick = st.integers(min_value=0, max_value=10_000)

ops = st.one_of(
    st.tuples(st.just("add"), coord, coord, st.floats(1, 150), st.floats(1, 150)),
    st.tuples(st.just("delete"), pick),
    st.tuples(st.just("move_vertex"), pick, pick, small, small),
    st.tuples(st.just("add_vertex"), pick, pick, st.floats(0.05, 0.95)),
    st.tuples(st.just("delete_vertex"), pick, pick),
    st.tuples(st.just("reshape"), pick, st.lists(st.tuples(small, small), min_size=2,
                                                  max_size=4)),
    st.tuples(st.just("split"), pick, st.floats(0, math.pi), st.floats(-0.4, 0.4)),
    st.tuples(st.just("merge"), pick, pick),
    st.tuples(st.just("attrs"), st.lists(pick, min_size=1, max_size=3),
              st.sampled_from(CODES), st.one_of(st.none(), st.floats(0, 1e6))),
    st.tuples(st.just("paste"), pick, small, small),
    st.tuples(st.just("move"), pick, small, small),
    st.tuples(st.just("undo")),
    st.tuples(st.just("redo")),
)


def _fid(s: EditSession, k: int) -> int:
    fids = s.fids()
    return fids[k % len(fids)]


def apply(s: EditSession, op: tuple) -> object:
    """Apply one drawn operation (its targets resolved against the current layer)."""
    kind = op[0]
    ox, oy = 480000.0, 3420000.0
    if kind == "undo":
        return s.undo()
    if kind == "redo":
        return s.redo()
    if kind == "add":
        _, x, y, w, h = op
        return s.add_polygon(box(ox + x, oy + y, ox + x + w, oy + y + h), {"YDYHFLDM": "0301"})
    if kind == "attrs":
        fids = sorted({_fid(s, k) for k in op[1]})
        values: dict = {"YDYHFLDM": op[2]}
        if op[3] is not None:
            values["TBMJ"] = op[3]
        return s.set_attributes(fids, values)
    fid = _fid(s, op[1])
    g = s.feature(fid).geometry
    verts = list(iter_vertices(g))
    if kind == "delete":
        return s.delete([fid])
    if kind == "move_vertex":
        ref, x, y = verts[op[2] % len(verts)]
        return s.move_vertex(fid, ref, (x + op[3], y + op[4]))
    if kind == "add_vertex":
        ref, x, y = verts[op[2] % len(verts)]
        nxt = verts[(op[2] + 1) % len(verts)]
        if nxt[0].part != ref.part or nxt[0].ring != ref.ring:
            nxt = next(v for v in verts if v[0].part == ref.part and v[0].ring == ref.ring)
        t = op[3]
        return s.add_vertex(fid, ref, (x + t * (nxt[1] - x), y + t * (nxt[2] - y)))
    if kind == "delete_vertex":
        return s.delete_vertex(fid, verts[op[2] % len(verts)][0])
    if kind == "reshape":
        c = g.centroid
        pts = [(c.x + 3 * dx, c.y + 3 * dy) for dx, dy in op[2]]
        return s.reshape(fid, LineString(pts))
    if kind == "split":
        c = g.centroid
        x0, y0, x1, y1 = g.bounds
        r = max(x1 - x0, y1 - y0)
        ang, off = op[2], op[3] * r
        dx, dy = math.cos(ang), math.sin(ang)
        cx, cy = c.x - dy * off, c.y + dx * off
        return s.split(LineString([(cx - 2 * r * dx, cy - 2 * r * dy),
                                   (cx + 2 * r * dx, cy + 2 * r * dy)]), [fid])
    if kind == "merge":
        other = _fid(s, op[2])
        return s.merge([fid, other], keep=other)
    if kind == "paste":
        src = s.feature(fid)
        moved = src.evolve(geometry=shapely.transform(src.geometry,
                                                      lambda a: a + (op[2], op[3])))
        return s.paste([moved])
    if kind == "move":
        return s.move_features([fid], op[2], op[3])
    raise AssertionError(kind)


def _py(v):
    if isinstance(v, float) and math.isnan(v):
        return None
    return v.item() if isinstance(v, np.generic) else v


def gdal_snapshot(gpkg: Path) -> dict:
    df = pyogrio.read_dataframe(gpkg, layer=LAYER, fid_as_index=True)
    cols = sorted(c for c in df.columns if c != "geometry")
    wkb = shapely.to_wkb(df.geometry.values)
    return {int(f): (wkb[i], tuple((c, _py(df[c].iloc[i])) for c in cols))
            for i, f in enumerate(df.index)}


# --------------------------------------------------------------------------- the property


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(ops, min_size=1, max_size=14),
       policy=st.sampled_from(["refuse", "warn"]), topological=st.booleans())
def test_random_command_sequences(template: Path, sequence: list, policy: str,
                                  topological: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "p"
        shutil.copytree(template, folder)
        project = Project.open(folder)
        s = EditSession.open(project, LAYER, invalid_policy=policy, topological=topological)
        original = s.snapshot()
        announced: set[int] = set()
        for op in sequence:
            before, depth, index = s.snapshot(), len(s.stack), s.stack.index
            try:
                cmd = apply(s, op)
            except EditRefused as exc:
                event(f"{op[0]} refused: {exc.code}")
                assert exc.zh and exc.en  # bilingual
                assert s.snapshot() == before
                assert (len(s.stack), s.stack.index) == (depth, index)
                continue
            event(f"{op[0]} done")
            if cmd is not None:
                announced |= {w.feature for w in cmd.warnings if w.code == "geometry.invalid"}
            for fid in s.fids():
                g = s.feature(fid).geometry
                if not g.is_valid:
                    assert policy == "warn" and fid in announced, (op, fid,
                                                                    shapely.is_valid_reason(g))
        edited, done = s.snapshot(), s.stack.index
        s.stack.undo_all()
        assert s.snapshot() == original
        for _ in range(done):  # redo what was done (commands undone at the end stay so)
            s.redo()
        assert s.snapshot() == edited
        s.save()
        assert s.snapshot() == edited
        s.close()
        with contextlib.closing(EditSession.open(project, LAYER)) as reopened:
            assert reopened.snapshot() == edited
        assert gdal_snapshot(project.gpkg) == edited
