"""The main window on the 长兴县 sample project (pytest-qt, offscreen).

Expected values come from an independent route: geometries and attributes are read with
pyogrio straight from the GeoPackage, areas are computed with shapely and with pyproj's Geod
on coordinates transformed here, control lines with a geopandas spatial join.
"""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
from pyproj import Geod, Transformer
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QColor, QKeySequence
from PySide6.QtWidgets import QApplication, QDialog

from multiplan.core.classification import load_scheme
from multiplan.core.project import Project
from multiplan.gui.identify import VALUE_ROLE
from multiplan.gui.main_window import MainWindow

PARCELS = "现状用地"
KNOWN_FID = 18  # a 水田 (0101) parcel under 永久基本农田


def read(sample: Path, layer: str) -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(sample / "plan.gpkg", layer=layer, fid_as_index=True)


def grab_colour(win: MainWindow, x: float, y: float) -> tuple[int, int, int]:
    p = win.canvas.world_to_pixel(x, y).toPoint()
    c = win.canvas.grab().toImage().pixelColor(p)
    return c.red(), c.green(), c.blue()


@pytest.fixture(scope="module")
def shared(qapp, sample: Path):
    """One window on the sample for the tests that only look (and put back what they
    move): opening the county once saves seconds per test."""
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QMessageBox

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(QMessageBox, "critical", lambda *a, **k: None)
        mp.setattr(QMessageBox, "question",
                   lambda *a, **k: QMessageBox.StandardButton.Discard)
        w = MainWindow(None)
        w.resize(1400, 900)
        w.show()
        assert w.open_project(sample)
        deadline = 30_000
        while (w.loading or not w.canvas.is_current()) and deadline > 0:
            QTest.qWait(10)
            deadline -= 10
        assert not w.loading and w.canvas.is_current()
        yield w
        w.undo_stack.setClean()
        w.close()
        w.deleteLater()


@pytest.fixture
def win(shared: MainWindow, wait_drawn) -> MainWindow:
    shared.canvas.set_tool("pan")
    shared.pan_action.setChecked(True)
    shared.canvas.clear_selection()
    shared.canvas.zoom_to_extent(shared.canvas.layer_bounds("行政区"))
    wait_drawn(shared)
    return shared


@pytest.fixture
def own(open_window, sample: Path) -> MainWindow:
    """A window of the test's own, for tests that change the map document."""
    return open_window(sample)


def test_menus_toolbar_docks_and_status_bar(win: MainWindow) -> None:
    titles = [a.text() for a in win.menuBar().actions()]
    assert titles == ["项目", "图层", "分析", "审查", "发布", "帮助"]
    shortcuts = {a.shortcut().toString(QKeySequence.SequenceFormat.PortableText)
                 for a in win.findChildren(type(win.open_action))}
    assert {"Ctrl+O", "Ctrl+S", "Ctrl+Z", "Ctrl+Shift+Z"} <= shortcuts
    assert win.open_action.shortcut().toString() == "Ctrl+O"
    assert win.redo_action.shortcut().toString() == "Ctrl+Shift+Z"
    assert win.toolbar.actions()
    for dock in (win.layers_dock, win.attributes_dock, win.tasks_dock, win.identify_dock):
        assert dock.toggleViewAction().isChecked()  # open (tasks and identify share tabs)
    assert win.crs_label.text().startswith("EPSG:4549")
    assert "Gauss-Kruger" in win.crs_label.text()
    n = win.canvas.scale_denominator()
    assert win.scale_text() == f"1:{n:,.0f}"
    assert win.windowTitle() == "multiplan — 长兴县 (changxing)"


def test_layers_grouped_by_level_with_legend_and_lazy_hidden_layers(win: MainWindow) -> None:
    tree = win.layer_tree
    groups = [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]
    assert groups[:3] == ["三区三线", "省级", "县级"]
    control = [tree.topLevelItem(0).child(i).text(0)
               for i in range(tree.topLevelItem(0).childCount())]
    assert set(control) == {"生态保护红线", "永久基本农田", "城镇开发边界"}
    # only 现状 among the area-filling plan layers starts visible; hidden layers are not read
    assert tree.is_checked(PARCELS) and not tree.is_checked("土地利用规划")
    assert PARCELS in win.loaded and "土地利用规划" not in win.loaded
    # a legend entry per 用地用海 class, with the official colour
    item = win.layer_item(PARCELS)
    codes = sorted(pyogrio.read_dataframe(win.project.gpkg, layer=PARCELS,
                                          columns=["mp_code"], read_geometry=False)
                   ["mp_code"].unique())
    assert item.childCount() == len(codes)
    first = item.child(0)
    assert first.text(0).startswith(codes[0])
    scheme = load_scheme("ydyh2023")
    icon = first.icon(0).pixmap(14, 14).toImage()
    assert icon.pixelColor(7, 7) == QColor(*scheme.colour(codes[0]))


def test_toggle_layers_with_undo_and_redo(own: MainWindow, sample: Path,
                                          wait_drawn) -> None:
    parcels = read(sample, PARCELS)
    inside = parcels.geometry.loc[KNOWN_FID].representative_point()
    own.canvas.zoom_to_extent(parcels.geometry.loc[KNOWN_FID].bounds)
    wait_drawn(own)
    expected = load_scheme("ydyh2023").colour(parcels.loc[KNOWN_FID, "mp_code"])
    assert grab_colour(own, inside.x, inside.y) == expected

    own.layer_item(PARCELS).setCheckState(0, Qt.CheckState.Unchecked)  # as a click does
    wait_drawn(own)
    assert PARCELS not in own.canvas.drawn_layers
    assert grab_colour(own, inside.x, inside.y) != expected
    assert own.windowTitle().endswith("*")

    own.undo_action.trigger()
    wait_drawn(own)
    assert own.layer_tree.is_checked(PARCELS) and PARCELS in own.canvas.drawn_layers
    assert grab_colour(own, inside.x, inside.y) == expected
    assert not own.windowTitle().endswith("*")
    own.redo_action.trigger()
    assert not own.layer_tree.is_checked(PARCELS)
    own.undo_action.trigger()

    # a hidden layer is read when first shown; its group box shows its children's state
    own.layer_item("土地利用规划").setCheckState(0, Qt.CheckState.Checked)
    wait_drawn(own)
    assert "土地利用规划" in own.loaded and "土地利用规划" in own.canvas.drawn_layers
    county = own.layer_tree.group_item("county", create=False)
    assert county.checkState(0) == Qt.CheckState.PartiallyChecked


def test_only_view_changes_ask_to_save_the_project(own: MainWindow, wait_drawn) -> None:
    """Feature and review edits share the window's undo stack (one Ctrl+Z) but are saved by
    their own sessions: they neither mark the title nor trigger the 保存项目 prompt."""
    from PySide6.QtGui import QUndoCommand

    class FeatureEdit(QUndoCommand):  # stands in for an editing / precedence command
        def redo(self) -> None: ...
        def undo(self) -> None: ...

    assert not own.view_modified()
    own.undo_stack.push(FeatureEdit("移动顶点"))
    assert not own.undo_stack.isClean() and not own.view_modified()
    assert not own.windowTitle().endswith("*")
    own.layer_item(PARCELS).setCheckState(0, Qt.CheckState.Unchecked)  # a view change
    wait_drawn(own)
    assert own.view_modified() and own.windowTitle().endswith("*")
    own.undo_action.trigger()  # the visibility change is undone; the edit stays on the stack
    assert not own.view_modified() and not own.windowTitle().endswith("*")


def test_dem_raster_is_drawn_as_hillshade(own: MainWindow, wait_drawn) -> None:
    own.set_layer_visible("高程_30m", True)
    own.set_layer_visible(PARCELS, False)
    wait_drawn(own)
    assert "高程_30m" in own.canvas.drawn_layers
    layer = own.loaded["高程_30m"].data
    assert layer.kind == "dem"
    minx, miny, maxx, maxy = layer.bounds
    colours = {grab_colour(own, minx + (maxx - minx) * fx, miny + (maxy - miny) * fy)
               for fx in (0.2, 0.35, 0.5) for fy in (0.3, 0.5, 0.7)}
    assert (255, 255, 255) not in colours and len(colours) > 3  # shaded, not flat


def _drag(tree, item, target, above: bool) -> None:
    """Drop ``item`` on the upper or lower edge of ``target``'s row: the drop event a drag
    ends with, handed to the tree's handler (Qt delivers drop events only to the target of
    a drag its drag manager runs, which needs a real mouse)."""
    from PySide6.QtGui import QDropEvent

    tree.setCurrentItem(item)
    mime = tree.model().mimeData([tree.indexFromItem(item)])
    rect = tree.visualItemRect(target)
    pos = QPointF(rect.center().x(), rect.top() + 2 if above else rect.bottom() - 2)
    drop = QDropEvent(pos, Qt.DropAction.MoveAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    tree.dropEvent(drop)


def test_drag_and_drop_moves_layers_within_their_group_only(own: MainWindow) -> None:
    tree = own.layer_tree
    names = tree.layer_names()
    _drag(tree, own.layer_item(PARCELS), own.layer_item("行政区"), above=True)
    moved = tree.layer_names()
    assert moved.index(PARCELS) == moved.index("行政区") - 1
    assert own.canvas.layer_names().index(PARCELS) > own.canvas.layer_names().index("行政区")
    assert own.undo_action.text() == "撤销 调整图层顺序"
    # a 县级 layer dropped among the control lines stays in its level's group
    _drag(tree, own.layer_item(PARCELS), own.layer_item("生态保护红线"), above=True)
    assert tree.layer_names() == moved
    assert own.layer_item(PARCELS).parent().text(0) == "县级"
    own.undo_action.trigger()
    assert tree.layer_names() == names


def test_drag_reorder_changes_the_draw_order_and_undoes(own: MainWindow, qtbot) -> None:
    order = own.canvas.layer_names()
    assert order.index("生态保护红线") > order.index(PARCELS)  # lines above fills
    county = own.layer_tree.group_item("county", create=False)
    names = [county.child(i).text(0) for i in range(county.childCount())]
    assert own.layer_tree.move_layer(PARCELS, 0)  # what a drop onto the group's top does
    assert own.layer_tree.layer_names().index(PARCELS) < own.layer_tree.layer_names().index(
        "行政区")
    assert own.canvas.layer_names().index(PARCELS) > own.canvas.layer_names().index("行政区")
    own.undo_action.trigger()
    assert [county.child(i).text(0) for i in range(county.childCount())] == names
    assert own.canvas.layer_names() == order


def test_pan_and_zoom_keep_the_map_under_the_cursor(win: MainWindow, qtbot,
                                                   wait_drawn) -> None:
    c = win.canvas
    upp = c.units_per_pixel()
    pos = QPointF(c.width() * 0.3, c.height() * 0.6)
    before = c.pixel_to_world(pos)
    from PySide6.QtGui import QWheelEvent

    ev = QWheelEvent(pos, c.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 240),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                     Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(c, ev)
    assert c.units_per_pixel() == pytest.approx(upp * 0.64)
    assert c.pixel_to_world(pos) == pytest.approx(before)
    wait_drawn(win)
    assert win.scale_text() == f"1:{c.scale_denominator():,.0f}"
    # middle-button drag
    cx, cy = c.center()
    upp = c.units_per_pixel()
    qtbot.mousePress(c, Qt.MouseButton.MiddleButton, pos=QPoint(300, 300))
    qtbot.mouseMove(c, QPoint(380, 260))
    qtbot.mouseRelease(c, Qt.MouseButton.MiddleButton, pos=QPoint(380, 260))
    assert c.center() == pytest.approx((cx - 80 * upp, cy - 40 * upp))
    wait_drawn(win)
    # typing a scale
    win.scale_combo.setEditText("1:10000")
    win._on_scale_entered()
    assert c.scale_denominator() == pytest.approx(10000)
    # cursor position in the project CRS
    qtbot.mouseMove(c, QPoint(200, 150))
    x, y = c.pixel_to_world(QPointF(200, 150))
    assert win.coord_label.text() == f"X {x:,.2f}  Y {y:,.2f}"


def test_identify_a_known_parcel(win: MainWindow, sample: Path, qtbot,
                                 wait_drawn) -> None:
    parcels = read(sample, PARCELS)
    geom = parcels.geometry.loc[KNOWN_FID]
    row = parcels.loc[KNOWN_FID]
    win.canvas.zoom_to_extent(geom.bounds)
    wait_drawn(win)
    pt = geom.representative_point()
    win.identify_action.trigger()
    assert win.canvas.tool == "identify"
    qtbot.mouseClick(win.canvas, Qt.MouseButton.LeftButton,
                     pos=win.canvas.world_to_pixel(pt.x, pt.y).toPoint())
    panel = win.identify_panel
    k = next(i for i, f in enumerate(panel.features) if f.layer == PARCELS)
    assert panel.topLevelItem(k).text(1) == f"FID {KNOWN_FID}"
    assert panel.item(k, "unified_code").text(1) == row["mp_code"] == "0101"
    assert panel.item(k, "unified_name").text(1) == "水田"
    assert panel.item(k, "source_code").text(1) == row["YDYHFLDM"]
    assert "YDYHFLDM" in panel.item(k, "source_code").text(0)
    assert panel.item(k, "source_name").text(1) == row["YDYHFLMC"]

    # planar area in the project CRS: shapely on the geometry read by pyogrio
    planar = panel.item(k, "planar_area")
    assert "平面" in planar.text(0) and "EPSG:4549" in planar.text(0)
    assert planar.data(1, VALUE_ROLE) == pytest.approx(geom.area, rel=1e-12)
    assert planar.text(1).startswith(f"{geom.area:,.2f} ㎡")
    assert geom.area == pytest.approx(row["TBMJ"], abs=0.01)  # the stored 图斑面积 agrees
    # ellipsoidal area: rings to CGCS2000 lon/lat, Geod on the CGCS2000 ellipsoid
    to_ll = Transformer.from_crs(4549, 4490, always_xy=True)
    geod = Geod(a=6378137.0, rf=298.257222101)
    expected = 0.0
    for poly in getattr(geom, "geoms", [geom]):
        for k_ring, ring in enumerate([poly.exterior, *poly.interiors]):
            lon, lat = to_ll.transform(*np.asarray(ring.coords).T)
            a, _ = geod.polygon_area_perimeter(lon, lat)
            expected += abs(a) * (1 if k_ring == 0 else -1)
    ell = panel.item(k, "ellipsoidal_area")
    assert "椭球" in ell.text(0)
    assert ell.data(1, VALUE_ROLE) == pytest.approx(expected, rel=1e-9)
    assert ell.data(1, VALUE_ROLE) != pytest.approx(geom.area, rel=1e-6)  # not the planar one

    # control lines touching it: a geopandas spatial join
    want = 0
    for layer in ("生态保护红线", "永久基本农田", "城镇开发边界"):
        lines = read(sample, layer)
        want += int(lines.intersects(geom).sum())
    assert want > 0
    assert panel.item(k, "control_lines").data(1, VALUE_ROLE) == want
    assert panel.item(k, "conflicts").data(1, VALUE_ROLE) == 0  # no register in the sample
    assert win.canvas._highlight_src[0] == panel.features[0].layer  # the topmost hit


def test_attribute_table_is_lazy_filters_sorts_and_syncs_selection(win: MainWindow,
                                                                   sample: Path,
                                                                   qtbot, wait_drawn) -> None:
    parcels = read(sample, PARCELS)
    win.show_attributes(PARCELS)
    table = win.attribute_table
    model = table.model
    assert table.layer == PARCELS
    assert model.total() == len(parcels)
    assert model.rowCount() == model.BATCH < len(parcels)  # rows are fetched on demand
    # default order: by fid
    assert [int(model.headerData(i, Qt.Orientation.Vertical)) for i in range(3)] == \
        sorted(parcels.index)[:3]

    table.set_filter("YDYHFLDM", "eq", "0101")
    assert model.shown() == int((parcels["YDYHFLDM"] == "0101").sum())
    table.set_filter("TBMJ", "ge", "50000")
    assert model.shown() == int((parcels["TBMJ"] >= 50000).sum())
    table.set_filter("YDYHFLMC", "contains", "林")
    assert model.shown() == int(parcels["YDYHFLMC"].str.contains("林").sum())
    table.clear_filter()
    assert model.shown() == len(parcels)

    col = model.columns.index("TBMJ")
    table.view.sortByColumn(col, Qt.SortOrder.DescendingOrder)
    assert model.value(0, "TBMJ") == parcels["TBMJ"].max()

    # table → map
    table.view.selectRow(0)
    biggest = int(parcels["TBMJ"].idxmax())
    assert win.canvas.selected_fids(PARCELS).tolist() == [biggest]
    # map → table (select tool, click inside the known parcel)
    geom = parcels.geometry.loc[KNOWN_FID]
    win.canvas.zoom_to_extent(geom.bounds)
    wait_drawn(win)
    win.select_action.trigger()
    win.layer_tree.setCurrentItem(win.layer_item(PARCELS))
    pt = geom.representative_point()
    qtbot.mouseClick(win.canvas, Qt.MouseButton.LeftButton,
                     pos=win.canvas.world_to_pixel(pt.x, pt.y).toPoint())
    assert win.canvas.selected_fids(PARCELS).tolist() == [KNOWN_FID]
    rows = {i.row() for i in table.view.selectionModel().selectedRows()}
    assert len(rows) == 1
    assert int(model.headerData(rows.pop(), Qt.Orientation.Vertical)) == KNOWN_FID
    # zoom to selected
    win.canvas.zoom_to_extent()
    table.zoom_button.click()
    x0, y0, x1, y1 = win.canvas.view_bounds()
    b = geom.bounds
    assert x0 <= b[0] and y0 <= b[1] and x1 >= b[2] and y1 >= b[3]
    assert (x1 - x0) < 10 * max(b[2] - b[0], b[3] - b[1])


def test_open_error_is_a_readable_message(open_window, tmp_path: Path, dialogs) -> None:
    win = open_window(None)
    assert win.open_project(tmp_path) is False
    kind, _title, text = dialogs[-1]
    assert kind == "critical" and "找不到项目文件" in text and str(tmp_path) in text
    assert "Traceback" not in text
    assert win.project is None and win.windowTitle() == "multiplan"


def test_save_new_and_recent_projects(open_window, sample_copy: Path, tmp_path: Path,
                                      qtbot, monkeypatch, wait_drawn) -> None:
    win = open_window(sample_copy)
    win.set_layer_visible("土地利用规划", True)
    win.set_layer_visible(PARCELS, False)
    assert win.save_project()
    assert not win.windowTitle().endswith("*")
    saved = Project.open(sample_copy).setting("gui_view")
    assert saved["visible"][PARCELS] is False and saved["visible"]["土地利用规划"] is True
    assert str(sample_copy.resolve()) == win.recent_projects()[0]
    # new project through the dialog
    from multiplan.gui import dialogs as dialogs_mod

    monkeypatch.setattr(dialogs_mod.NewProjectDialog, "exec",
                        lambda self: QDialog.DialogCode.Accepted)
    monkeypatch.setattr(dialogs_mod.NewProjectDialog, "values", lambda self: {
        "folder": str(tmp_path / "new"), "county": "测试县", "epsg": 4549})
    win.new_project()
    assert win.project is not None and win.project.county == "测试县"
    assert win.canvas.hint  # an empty project says so
    assert win.recent_projects()[:2] == [str((tmp_path / "new").resolve()),
                                         str(sample_copy.resolve())]
    # reopening restores the saved map document
    win.open_project(sample_copy)
    wait_drawn(win)
    assert not win.layer_tree.is_checked(PARCELS) and win.layer_tree.is_checked("土地利用规划")


def test_window_state_is_remembered_outside_the_user_profile(open_window, qtbot) -> None:
    path = QSettings("multiplan", "multiplan").fileName()
    assert path.startswith(os.environ["XDG_CONFIG_HOME"])
    # (the offscreen screen is 800×600: restoreGeometry fits a window to the screen)
    win = open_window(None, size=(711, 533))
    win.tasks_dock.hide()
    win.close()
    s = QSettings("multiplan", "multiplan")
    assert s.value("window/geometry") is not None and s.value("window/state") is not None
    fresh = MainWindow(None)
    qtbot.addWidget(fresh)
    assert (fresh.size().width(), fresh.size().height()) == (711, 533)
    assert fresh.tasks_dock.isHidden()


def test_a_layer_that_cannot_be_read_is_reported_once(open_window, sample: Path,
                                                       monkeypatch, dialogs) -> None:
    from multiplan.core.errors import ProjectError
    from multiplan.gui import main_window

    real = main_window.load_layer

    def broken(folder, rec, task=None):
        if rec.name == "河流":
            raise ProjectError("layer.broken", "图层已损坏", "the layer is broken")
        return real(folder, rec, task)

    monkeypatch.setattr(main_window, "load_layer", broken)
    win = open_window(sample)
    assert [d[2] for d in dialogs if d[0] == "critical"] == ["河流: 图层已损坏"]
    item = win.layer_item("河流")
    assert item.isDisabled() and not win.layer_tree.is_checked("河流")
    assert PARCELS in win.canvas.drawn_layers and "河流" not in win.canvas.layer_names()
