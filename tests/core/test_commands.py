"""Edit commands and the command stack on an in-memory store.

Expected geometries and areas are worked out by hand on a 3 × 3 grid of 10 m squares
(fid = 1 + col + 3·row, square (col, row) spans [10·col, 10·col+10] × [10·row, 10·row+10]).
"""

from __future__ import annotations

import json

import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon, box

from multiplan.core.commands import (
    AddPolygon,
    AddVertex,
    ChangeAttributes,
    CommandStack,
    DeleteFeatures,
    DeleteVertex,
    EditRefused,
    Feature,
    MemoryStore,
    MergeFeatures,
    MoveFeatures,
    MoveVertex,
    PasteFeatures,
    ReshapeBoundary,
    SplitByLine,
    StoreOptions,
    VertexRef,
    command_from_json,
    command_to_json,
    find_vertices,
    nearest_segment,
    nearest_vertex,
    reshape_polygon,
)

COLUMNS = ["code", "name", "area"]


def square(col: int, row: int) -> MultiPolygon:
    return MultiPolygon([box(10 * col, 10 * row, 10 * col + 10, 10 * row + 10)])


def grid(**opts) -> tuple[MemoryStore, CommandStack]:
    feats = [Feature(1 + c + 3 * r, square(c, r), {"code": "0101", "name": "水田",
                                                      "area": 100.0})
             for r in range(3) for c in range(3)]
    store = MemoryStore(feats, columns=COLUMNS, options=StoreOptions(**opts))
    return store, CommandStack(store)


def vertex_of(store: MemoryStore, fid: int, x: float, y: float) -> VertexRef:
    refs = find_vertices(store.get(fid).geometry, x, y, 1e-9)
    assert refs, (fid, x, y)
    return refs[0]


def test_add_delete_undo_redo_exact() -> None:
    store, stack = grid()
    original = store.snapshot()
    cmd = stack.push(AddPolygon(box(40, 0, 50, 10), {"code": "0201"}))
    assert cmd.fid == 10 and cmd.label == "添加面" and cmd.text("en") == "Add polygon"
    new = store.get(10)
    assert isinstance(new.geometry, MultiPolygon) and new.geometry.area == 100
    assert new.attrs == {"code": "0201", "name": None, "area": None}
    stack.push(DeleteFeatures([1, 2]))
    assert store.get(1) is None and store.get(2) is None
    edited = store.snapshot()
    stack.undo_all()
    assert store.snapshot() == original
    stack.redo_all()
    assert store.snapshot() == edited
    assert store.get(10).geometry is new.geometry  # redo puts back the very same object


def test_move_vertex_plain_and_topological() -> None:
    store, stack = grid()
    ref = vertex_of(store, 1, 10, 10)  # corner shared by squares 1, 2, 4, 5
    stack.push(MoveVertex(1, ref, (12, 12)))
    # by the shoelace formula the quadrilateral (0,0),(10,0),(12,12),(0,10) has area 120
    assert store.get(1).geometry.area == pytest.approx(120)
    assert store.get(2).geometry.area == 100  # neighbours untouched
    stack.undo()

    store, stack = grid(topological=True)
    stack.push(MoveVertex(1, vertex_of(store, 1, 10, 10), (12, 12)))
    areas = {fid: store.get(fid).geometry.area for fid in (1, 2, 4, 5)}
    # the shared corner moves in all four squares; by the shoelace formula
    # 2: (10,0),(20,0),(20,10),(12,12) → 100 (the move is parallel to (10,0)→(20,10));
    # 4: (0,10),(12,12),(10,20),(0,20) → 100; 5: (12,12),(20,10),(20,20),(10,20) → 80
    assert areas == pytest.approx({1: 120, 2: 100, 4: 100, 5: 80})
    assert sum(store.get(f).geometry.area for f in range(1, 10)) == pytest.approx(900)
    assert len(stack.commands[0].changes) == 4 and len(stack) == 1  # one command
    assert stack.undo_text() == "撤销 移动顶点" and stack.undo_text("en") == "Undo Move vertex"


def test_closing_vertex_moves_with_the_first() -> None:
    store, stack = grid()
    # shapely's box ring starts at its (maxx, miny) corner
    assert store.get(1).geometry.geoms[0].exterior.coords[0] == (10.0, 0.0)
    stack.push(MoveVertex(1, (0, 0, 0), (11, -1)))
    ring = store.get(1).geometry.geoms[0].exterior.coords
    assert ring[0] == ring[-1] == (11.0, -1.0)
    assert store.get(1).geometry.is_valid


def test_add_and_delete_vertex_topological() -> None:
    store, stack = grid(topological=True)
    # the edge x = 10, 0 ≤ y ≤ 10 is shared by squares 1 and 2
    seg, at, d = nearest_segment(store.get(1).geometry, 10.2, 5)
    assert at == (10.0, 5.0) and d == pytest.approx(0.2)
    stack.push(AddVertex(1, seg, at))
    for fid in (1, 2):
        assert find_vertices(store.get(fid).geometry, 10, 5, 0), fid
    # moving the new shared vertex keeps the two squares gap-free
    stack.push(MoveVertex(2, vertex_of(store, 2, 10, 5), (13, 5)))
    assert store.get(1).geometry.area == pytest.approx(115)
    assert store.get(2).geometry.area == pytest.approx(85)
    assert store.get(1).geometry.intersection(store.get(2).geometry).area == pytest.approx(0)
    stack.push(DeleteVertex(1, vertex_of(store, 1, 13, 5)))
    assert store.get(1).geometry.area == 100 and store.get(2).geometry.area == 100
    assert len(store.get(1).geometry.geoms[0].exterior.coords) == 5


def test_delete_vertex_refuses_a_triangle() -> None:
    store = MemoryStore([Feature(1, MultiPolygon([Polygon([(0, 0), (1, 0), (0, 1)])]), {})])
    stack = CommandStack(store)
    with pytest.raises(EditRefused) as err:
        stack.push(DeleteVertex(1, (0, 0, 1)))
    assert err.value.code == "vertex.too_few" and "3" in err.value.zh
    assert len(stack) == 0


def test_reshape_cuts_and_extends() -> None:
    poly = box(0, 0, 10, 10)
    # a line through the square cuts off the corner triangle (0,7)-(3,10): 4.5 m² removed
    cut = reshape_polygon(poly, LineString([(-1, 6), (4, 11)]))
    assert cut.area == pytest.approx(95.5)
    # a line leaving at (10,2) and re-entering at (10,8) 5 m out adds a 6 × 5 rectangle
    out = reshape_polygon(poly, LineString([(9, 2), (15, 2), (15, 8), (9, 8)]))
    assert out.area == pytest.approx(130)
    assert reshape_polygon(poly, LineString([(20, 20), (30, 30)])) is None

    store, stack = grid()
    stack.push(ReshapeBoundary(3, [(29, 2), (35, 2), (35, 8), (29, 8)]))
    assert store.get(3).geometry.area == pytest.approx(130)
    with pytest.raises(EditRefused) as err:
        stack.push(ReshapeBoundary(3, [(100, 100), (101, 101)]))
    assert err.value.code == "reshape.no_effect"


def test_split_keeps_fid_for_largest_piece() -> None:
    store, stack = grid()
    cmd = stack.push(SplitByLine([(3, -1), (3, 11)], [1]))
    assert cmd.new_fids == [10]
    assert store.get(1).geometry.area == pytest.approx(70)
    assert store.get(10).geometry.area == pytest.approx(30)
    assert store.get(10).attrs == store.get(1).attrs
    assert store.get(1).geometry.bounds == (3.0, 0.0, 10.0, 10.0)
    # a line over several features splits each it crosses (fids=None)
    stack.undo()
    cmd = stack.push(SplitByLine([(-1, 5), (31, 5)]))
    assert sorted(c.fid for c in cmd.changes if c.kind == "changed") == [1, 2, 3]
    with pytest.raises(EditRefused) as err:
        stack.push(SplitByLine([(1, 1), (2, 2)]))
    assert err.value.code == "split.no_effect"


def test_merge_takes_chosen_attributes() -> None:
    store, stack = grid()
    stack.push(ChangeAttributes(2, {"code": "0201", "name": "果园"}))
    cmd = stack.push(MergeFeatures([1, 2], keep=2, attrs={"area": 200.0}))
    assert store.get(1) is None
    merged = store.get(2)
    assert merged.geometry.area == pytest.approx(200) and len(merged.geometry.geoms) == 1
    assert merged.attrs == {"code": "0201", "name": "果园", "area": 200.0}
    assert not cmd.warnings
    cmd = stack.push(MergeFeatures([2, 9], keep=9))
    assert [w.code for w in cmd.warnings] == ["merge.multipart"]
    with pytest.raises(EditRefused):
        stack.push(MergeFeatures([3], keep=3))
    with pytest.raises(EditRefused):
        stack.push(MergeFeatures([3, 4], keep=5))


def test_batch_attributes_label_and_unknown_field() -> None:
    _store, stack = grid()
    cmd = stack.push(ChangeAttributes([1, 2, 3], {"code": "0102"}))
    assert cmd.label == "批量修改属性" and cmd.text("en") == "Batch change attributes"
    assert ChangeAttributes(1, {"code": "x"}).label == "修改属性"
    with pytest.raises(EditRefused) as err:
        stack.push(ChangeAttributes([1], {"nope": 1}))
    assert err.value.code == "attribute.unknown_field"
    with pytest.raises(EditRefused) as err:  # setting what is already there changes nothing
        stack.push(ChangeAttributes([1], {"code": "0102"}))
    assert err.value.code == "edit.no_change"


def test_paste_drops_unknown_fields_with_a_warning() -> None:
    store, stack = grid()
    src = Feature(77, box(50, 50, 60, 60), {"code": "0301", "other": "x"})
    cmd = stack.push(PasteFeatures([src]))
    assert cmd.new_fids == [10]
    assert store.get(10).attrs == {"code": "0301", "name": None, "area": None}
    assert [w.code for w in cmd.warnings] == ["paste.fields_dropped"]


def test_move_features() -> None:
    store, stack = grid()
    stack.push(MoveFeatures([1, 2], 100, 50))
    assert store.get(1).geometry.bounds == (100.0, 50.0, 110.0, 60.0)
    stack.undo()
    assert store.get(1).geometry.bounds == (0.0, 0.0, 10.0, 10.0)


@pytest.mark.parametrize("policy", ["refuse", "warn", "repair"])
def test_invalid_geometry_is_never_silent(policy: str) -> None:
    store, stack = grid(invalid_policy=policy)
    before = store.snapshot()
    # dragging corner (10,10) of square 1 to (-5, 5) crosses its own edge: a bow-tie
    bowtie = MoveVertex(1, vertex_of(store, 1, 10, 10), (-5, 5))
    if policy == "refuse":
        with pytest.raises(EditRefused) as err:
            stack.push(bowtie)
        assert err.value.code == "geometry.invalid" and "Self-intersection" in err.value.en
        assert store.snapshot() == before and len(stack) == 0
        return
    stack.push(bowtie)
    g = store.get(1).geometry
    if policy == "warn":
        assert not g.is_valid
        assert [w.code for w in bowtie.warnings] == ["geometry.invalid"]
    else:
        assert g.is_valid and isinstance(g, MultiPolygon)
        assert [w.code for w in bowtie.warnings] == ["geometry.repaired"]


def test_macro_is_one_undo_step_and_aborts_whole() -> None:
    store, stack = grid()
    original = store.snapshot()
    with stack.macro("批量编辑", "Batch edit"):
        stack.push(DeleteFeatures([1]))
        stack.push(ChangeAttributes([2], {"code": "0201"}))
    assert len(stack) == 1 and stack.undo_text() == "撤销 批量编辑"
    stack.undo()
    assert store.snapshot() == original
    with pytest.raises(EditRefused), stack.macro("批量编辑", "Batch edit"):
        stack.push(DeleteFeatures([1]))
        stack.push(DeleteFeatures([1]))  # already deleted: refused
    assert store.snapshot() == original and not stack.can_undo and stack.can_redo


def test_push_drops_redo_and_tracks_clean_state() -> None:
    _store, stack = grid()
    stack.push(DeleteFeatures([1]))
    stack.set_clean()
    assert stack.is_clean
    stack.undo()
    assert not stack.is_clean and stack.redo_text() == "重做 删除要素"
    stack.push(DeleteFeatures([2]))
    assert not stack.can_redo and len(stack) == 1 and not stack.is_clean


def test_failing_listener_reverts_the_step() -> None:
    store, stack = grid()
    original = store.snapshot()

    def boom(event, cmd):
        raise OSError("disk full")

    stack.add_listener(boom)
    with pytest.raises(OSError):
        stack.push(DeleteFeatures([1]))
    assert store.snapshot() == original and len(stack) == 0


def test_json_round_trip_replays_exactly_and_checks_state() -> None:
    store, stack = grid(topological=True)
    original = store.snapshot()
    stack.push(MoveVertex(5, vertex_of(store, 5, 10, 10), (11, 9)))
    stack.push(SplitByLine([(-1, 15), (31, 15)]))
    with stack.macro("合并整理", "Tidy"):
        stack.push(MergeFeatures([1, 2], keep=1))
        stack.push(ChangeAttributes([1], {"area": None}))
    edited = store.snapshot()
    records = [json.loads(json.dumps(command_to_json(c))) for c in stack.commands]

    replay_store, replay_stack = grid(topological=True)
    for rec in records:
        replay_stack.push(command_from_json(rec))
    assert replay_store.snapshot() == edited
    replay_stack.undo_all()
    assert replay_store.snapshot() == original
    assert [c.label for c in replay_stack.commands] == ["移动顶点", "分割要素", "合并整理"]

    # replaying onto a layer that differs from the recorded "before" is refused whole
    other, other_stack = grid()
    other_stack.push(MoveFeatures([5], 1, 0))
    changed = other.snapshot()
    with pytest.raises(EditRefused) as err:
        other_stack.push(command_from_json(records[0]))
    assert err.value.code == "edit.state_mismatch"
    assert other.snapshot() == changed


def test_nearest_helpers() -> None:
    g = square(0, 0)  # ring (10,0), (10,10), (0,10), (0,0), (10,0)
    ref, d = nearest_vertex(g, 9, 9.5)
    assert tuple(ref) == (0, 0, 1) and d == pytest.approx(shapely.Point(9, 9.5).distance(
        shapely.Point(10, 10)))
    seg, at, d = nearest_segment(g, 5, -2)
    assert tuple(seg) == (0, 0, 3) and at == (5.0, 0.0) and d == 2  # (0,0) → (10,0)
