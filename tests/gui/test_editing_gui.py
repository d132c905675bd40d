"""Editing tools driven with qtbot mouse and key events on a copy of the 长兴县 sample.

Expected coordinates come from the canvas's own pixel → map transform of the pixels the
test clicks; saved results are read back with pyogrio (GDAL), areas with shapely.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pyogrio
import pytest
import shapely
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QDialog, QInputDialog, QMessageBox

from multiplan.core.commands import find_vertices, iter_vertices
from multiplan.gui.editing import install_editing
from multiplan.gui.editing.controller import EditingController
from multiplan.gui.editing.dialogs import AttributeDialog, CodePicker, MergeDialog
from multiplan.gui.main_window import MainWindow

PARCELS = "现状用地"


def px(win: MainWindow, x: float, y: float) -> QPoint:
    return win.canvas.world_to_pixel(x, y).toPoint()


def world(win: MainWindow, p: QPoint) -> tuple[float, float]:
    return win.canvas.pixel_to_world(QPointF(p))


def shared_vertex(ctl: EditingController, fid: int) -> tuple[float, float, list[int]]:
    s = ctl.session
    for _, x, y in iter_vertices(s.feature(fid).geometry):
        others = [f for f in s.buffer.candidates((x, y, x, y)) if f != fid
                  and find_vertices(s.feature(f).geometry, x, y, 0)]
        if others:
            return x, y, others
    raise AssertionError("no shared vertex")


def _open_editor(win: MainWindow, wait_drawn) -> EditingController:
    ctl = install_editing(win)
    ctl.form_after_add = False
    assert ctl.start_editing(PARCELS)
    g = ctl.session.feature(1).geometry
    x0, y0, x1, y1 = g.bounds
    win.canvas.zoom_to_extent((x0 - 100, y0 - 100, x1 + 100, y1 + 100))
    wait_drawn(win)
    return ctl


@pytest.fixture(scope="module")
def shared_editor(qapp, sample: Path, tmp_path_factory: pytest.TempPathFactory):
    """One window editing a copy of the sample for the tests that do not save: each test
    starts from the discarded session (opening the county once saves seconds per test)."""
    import shutil

    from PySide6.QtTest import QTest

    folder = tmp_path_factory.mktemp("editing") / "changxing"
    shutil.copytree(sample, folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(QMessageBox, "critical", lambda *a, **k: None)
        mp.setattr(QMessageBox, "question",
                   lambda *a, **k: QMessageBox.StandardButton.Discard)
        win = MainWindow(None)
        win.resize(1400, 900)
        win.show()
        assert win.open_project(folder)

        def wait(w: MainWindow) -> None:
            for _ in range(3000):
                if not w.loading and w.canvas.is_current():
                    return
                QTest.qWait(10)
            raise AssertionError("the map was not drawn")

        ctl = _open_editor(win, wait)
        yield win, ctl
        ctl.session.close(discard=True)
        ctl.session = None
        win.undo_stack.setClean()
        win.close()
        win.deleteLater()


@pytest.fixture
def editor(shared_editor, wait_drawn, qtbot):
    win, ctl = shared_editor
    ctl.discard_edits()
    win.undo_stack.clear()
    win.canvas.clear_selection()
    ctl.snap_action.setChecked(True)
    ctl.topo_action.setChecked(False)
    g = ctl.session.feature(1).geometry
    x0, y0, x1, y1 = g.bounds
    win.canvas.zoom_to_extent((x0 - 100, y0 - 100, x1 + 100, y1 + 100))
    wait_drawn(win)
    qtbot.waitUntil(ctl.display_current, timeout=20000)
    yield win, ctl
    ctl.tools.set_tool(None)
    for act in ctl.tool_actions.values():
        act.setChecked(False)


def settle(qtbot, ctl: EditingController) -> None:
    """Wait until the edited layer is redrawn with the edits."""
    qtbot.waitUntil(ctl.display_current, timeout=20000)


def test_draw_a_polygon_and_undo_redo_from_the_window(editor, qtbot) -> None:
    win, ctl = editor
    ctl.snap_action.setChecked(False)
    ctl.set_tool("add")
    c = win.canvas
    pts = [QPoint(200, 200), QPoint(320, 210), QPoint(300, 330)]
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=pts[0])
    qtbot.mouseMove(c, pts[1])
    assert ctl.tools.points == [world(win, pts[0])]
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=pts[1])
    qtbot.mouseDClick(c, Qt.MouseButton.LeftButton, pos=pts[2])
    (fid,) = ctl.session.buffer.pending()["added"]
    ring = list(ctl.session.feature(fid).geometry.geoms[0].exterior.coords)
    assert ring[:3] == [world(win, p) for p in pts]
    assert win.undo_action.text() == "撤销 添加面"
    settle(qtbot, ctl)
    assert fid in c.layer(PARCELS).data.fids  # the layer is redrawn with the new parcel
    win.undo_action.trigger()
    assert ctl.session.feature(fid) is None
    assert win.redo_action.text() == "重做 添加面"
    win.redo_action.trigger()
    assert ctl.session.feature(fid) is not None
    # Esc abandons a polygon being drawn; too few points is a message, not an error
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=QPoint(400, 400))
    qtbot.keyClick(c, Qt.Key.Key_Escape)
    assert ctl.tools.points == []
    qtbot.mouseClick(c, Qt.MouseButton.LeftButton, pos=QPoint(400, 400))
    qtbot.mouseDClick(c, Qt.MouseButton.LeftButton, pos=QPoint(450, 400))
    assert "3" in ctl.last_message and len(ctl.session.stack) == 1


def test_drag_a_shared_vertex_topologically(editor, qtbot) -> None:
    win, ctl = editor
    ctl.topo_action.setChecked(True)
    ctl.set_tool("vertex")
    x, y, others = shared_vertex(ctl, 1)
    start = px(win, x, y) + QPoint(2, 1)  # grabbed within the snapping distance
    end = start + QPoint(6, -5)
    ctl.snap_action.setChecked(False)  # the drop point is exactly the pixel released on
    c = win.canvas
    qtbot.mouseMove(c, start)
    assert ctl.tools.hover is not None and (ctl.tools.hover.x, ctl.tools.hover.y) == (x, y)
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(c, end)
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=end)
    target = world(win, end)
    for fid in [1, *others]:
        g = ctl.session.feature(fid).geometry
        assert find_vertices(g, *target, 0), fid
        assert not find_vertices(g, x, y, 0), fid
    assert win.undo_action.text() == "撤销 移动顶点"
    win.undo_action.trigger()
    for fid in [1, *others]:
        assert find_vertices(ctl.session.feature(fid).geometry, x, y, 0)


def test_snapping_marks_the_nearest_vertex(editor, qtbot) -> None:
    win, ctl = editor
    ctl.set_tool("add")
    x, y, _ = shared_vertex(ctl, 1)
    qtbot.mouseMove(win.canvas, px(win, x, y) + QPoint(3, -2))
    snap = ctl.tools.snap
    assert snap is not None and (snap.kind, snap.x, snap.y) == ("vertex", x, y)
    image = win.canvas.grab().toImage()  # the overlay draws the marker over the map
    c = px(win, x, y)
    colours = [image.pixelColor(c + QPoint(dx, -6)) for dx in range(-4, 5)]
    # the marker's magenta (200, 0, 200); antialiasing over whatever the map has drawn
    # beneath by then may shift a channel by a few units
    assert any(abs(q.red() - 200) <= 8 and q.green() <= 8 and abs(q.blue() - 200) <= 8
               for q in colours), [q.name() for q in colours]
    # clicking there puts the polygon's vertex exactly on the neighbour's vertex
    qtbot.mouseClick(win.canvas, Qt.MouseButton.LeftButton, pos=px(win, x, y) + QPoint(3, -2))
    assert ctl.tools.points == [(x, y)]


def test_split_the_selected_parcel_by_a_drawn_line(editor, qtbot) -> None:
    win, ctl = editor
    ctl.snap_action.setChecked(False)
    g = ctl.session.feature(1).geometry
    x0, _, x1, _ = g.bounds
    c = g.representative_point()
    win.canvas.set_selection(PARCELS, [1])
    ctl.set_tool("split")
    a, b = px(win, x0 - 20, c.y), px(win, x1 + 20, c.y)
    qtbot.mouseClick(win.canvas, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseClick(win.canvas, Qt.MouseButton.LeftButton, pos=b)
    qtbot.keyClick(win.canvas, Qt.Key.Key_Return)
    (new,) = ctl.session.buffer.pending()["added"]
    parts = [ctl.session.feature(1).geometry, ctl.session.feature(new).geometry]
    assert sum(p.area for p in parts) == pytest.approx(g.area, rel=1e-9)
    assert shapely.union_all(parts).symmetric_difference(g).area < 1e-6 * g.area
    assert win.undo_action.text() == "撤销 分割要素"


def test_reshape_the_selected_parcel_outwards(editor, qtbot) -> None:
    win, ctl = editor
    ctl.snap_action.setChecked(False)
    g = ctl.session.feature(1).geometry
    ring = list(g.geoms[0].exterior.coords)
    edges = [(ring[i], ring[i + 1]) for i in range(len(ring) - 1)]
    (ax, ay), (bx, by) = max(edges, key=lambda e: shapely.LineString(e).length)
    length = shapely.LineString([(ax, ay), (bx, by)]).length
    tx, ty = (bx - ax) / length, (by - ay) / length
    mx, my = (ax + bx) / 2, (ay + by) / 2
    inside = g.representative_point()
    side = 1 if (inside.x - mx) * -ty + (inside.y - my) * tx > 0 else -1
    nx, ny = ty * side, -tx * side  # the outward normal of the edge
    w = min(length / 4, 20.0)
    path = [(mx - w * tx - nx, my - w * ty - ny), (mx - w * tx + 3 * w * nx, my - w * ty
                                                    + 3 * w * ny),
            (mx + w * tx + 3 * w * nx, my + w * ty + 3 * w * ny),
            (mx + w * tx - nx, my + w * ty - ny)]
    win.canvas.set_selection(PARCELS, [1])
    ctl.set_tool("reshape")
    clicks = [px(win, x, y) for x, y in path]
    for p in clicks[:-1]:
        qtbot.mouseClick(win.canvas, Qt.MouseButton.LeftButton, pos=p)
    qtbot.mouseDClick(win.canvas, Qt.MouseButton.LeftButton, pos=clicks[-1])
    drawn = shapely.Polygon([world(win, p) for p in clicks])
    got = ctl.session.feature(1).geometry
    assert got.area > g.area
    assert got.area == pytest.approx(g.union(drawn).area, rel=1e-6)
    assert win.undo_action.text() == "撤销 重塑边界"
    # in English the undo entry carries the English label
    ctl.lang = "en"
    try:
        ctl.run(lambda s: s.delete([2]))
        assert win.undo_stack.undoText() == "Delete features"
    finally:
        ctl.lang = "zh"


def test_merge_and_attribute_form_with_code_picker(editor, qtbot, monkeypatch) -> None:
    win, ctl = editor
    _, _, others = shared_vertex(ctl, 1)
    s = ctl.session
    pair = sorted([1, others[0]])
    area = sum(s.feature(f).geometry.area for f in pair)
    win.canvas.set_selection(PARCELS, pair)

    def merge_exec(dlg: MergeDialog) -> int:
        dlg.choose(pair[1])
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(MergeDialog, "exec", merge_exec)
    ctl.merge_selected()
    assert s.feature(pair[0]) is None
    merged = s.feature(pair[1])
    assert merged.geometry.area == pytest.approx(area, rel=1e-9)
    assert win.undo_action.text() == "撤销 合并要素"

    seen = {}

    def form_exec(dlg: AttributeDialog) -> int:
        picker = CodePicker("ydyh2023", None, "zh", dlg)
        assert picker.filter("水浇") == ["0102"]
        dlg.set_value("YDYHFLDM", "9999")
        dlg.accept()  # refused: the dialog shows why and stays open
        seen["error"] = dlg.error.text()
        assert dlg.result() != QDialog.DialogCode.Accepted
        dlg.set_value("YDYHFLDM", picker.chosen())
        dlg.accept()
        return dlg.result()

    monkeypatch.setattr(AttributeDialog, "exec", form_exec)
    win.canvas.set_selection(PARCELS, [pair[1]])
    assert ctl.edit_attributes()
    assert "9999" in seen["error"]
    attrs = s.feature(pair[1]).attrs
    assert (attrs["YDYHFLDM"], attrs["YDYHFLMC"], attrs["mp_code"]) == ("0102", "水浇地", "0102")
    assert win.undo_action.text() == "撤销 修改属性"

    # batch: only the filled field changes, on every selected parcel
    batch = [2, 3, 4]
    before = {f: dict(s.feature(f).attrs) for f in batch}

    def batch_exec(dlg: AttributeDialog) -> int:
        assert dlg.batch
        dlg.set_value("BZ", "批量核对")
        dlg.accept()
        return dlg.result()

    monkeypatch.setattr(AttributeDialog, "exec", batch_exec)
    win.canvas.set_selection(PARCELS, batch)
    assert ctl.edit_attributes()
    for f in batch:
        assert s.feature(f).attrs == {**before[f], "BZ": "批量核对"}
    assert win.undo_action.text() == "撤销 批量修改属性"


def test_save_writes_the_layer_and_clears_edit_undo(open_window, sample_copy: Path,
                                                    wait_drawn) -> None:
    win = open_window(sample_copy)
    ctl = _open_editor(win, wait_drawn)
    win.canvas.set_selection(PARCELS, [1, 2])
    ctl.delete_selected()
    assert win.undo_action.text() == "撤销 删除要素"
    assert ctl.save_edits()
    df = pyogrio.read_dataframe(win.project.gpkg, layer=PARCELS, columns=[],
                                fid_as_index=True)
    assert 1 not in df.index and 2 not in df.index and len(df) == 20004
    assert not win.undo_action.text().endswith("删除要素")
    wait_drawn(win)
    assert 1 not in win.loaded[PARCELS].attributes.index  # the window re-read the layer
    assert "删除 2" in ctl.last_message


def test_locked_control_line_needs_a_reason(open_window, sample_copy: Path, monkeypatch,
                                            dialogs) -> None:
    win = open_window(sample_copy)
    ctl = install_editing(win)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("", True))
    assert not ctl.start_editing("生态保护红线")
    assert dialogs[-1][0] == "critical" and "原因" in dialogs[-1][2]
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("落实省厅核查意见", True))
    assert ctl.start_editing("生态保护红线")
    with sqlite3.connect(sample_copy / "plan.gpkg") as conn:
        action, detail = conn.execute("SELECT action, detail FROM mp_audit ORDER BY fid DESC "
                                      "LIMIT 1").fetchone()
    assert action == "layer.unlock" and json.loads(detail)["reason"] == "落实省厅核查意见"
    ctl.stop_editing()


def test_unsaved_edits_are_offered_after_a_crash(open_window, sample_copy: Path, wait_drawn,
                                                 monkeypatch) -> None:
    win = open_window(sample_copy)
    ctl = install_editing(win)
    ctl.start_editing(PARCELS)
    ctl.session.set_attributes([5, 6], {"BZ": "未保存"})
    ctl.session.journal.close(delete=False)  # the process "dies": its journal stays
    ctl.session = None

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    win2 = open_window(None)
    ctl2 = install_editing(win2)
    assert win2.open_project(sample_copy)
    wait_drawn(win2)
    assert ctl2.session is not None and ctl2.session.layer == PARCELS
    assert ctl2.session.feature(5).attrs["BZ"] == "未保存"
    assert win2.undo_action.text() == "撤销 批量修改属性"
    ctl2.session.close(discard=True)
    ctl2.session = None


def test_closing_with_unsaved_edits_asks(open_window, sample_copy: Path, dialogs) -> None:
    win = open_window(sample_copy)
    ctl = install_editing(win)
    ctl.start_editing(PARCELS)
    ctl.run(lambda s: s.delete([7]))
    win.close()  # the "save edits?" question is answered Discard by the test fixture
    assert any(kind == "question" and PARCELS in text for kind, _, text in dialogs)
    assert ctl.session is None
    df = pyogrio.read_dataframe(sample_copy / "plan.gpkg", layer=PARCELS, columns=[],
                                fid_as_index=True, read_geometry=False)
    assert 7 in df.index
