"""The minimal main window on a tiny real project (pytest-qt, offscreen).

The project is made with the core API (Project.create + io.import_layer) from a GeoJSON the
test writes. Expected pixel positions are computed here with pyproj from the source lon/lat,
not by the window, and expected colours come from the 2023 colour table.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pyproj import Transformer
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt, QTimer
from PySide6.QtGui import QColor, QImage, QWheelEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from multiplan.core.classification import load_scheme
from multiplan.core.io import import_layer
from multiplan.core.project import Project
from multiplan.gui import app as gui_app
from multiplan.gui.main_window import NAME_ROLE, MainWindow

# Two parcels near 长兴县 (lon/lat): a 乔木林地 (0301) square and a 城镇住宅用地 (0701) one,
# each about 900 m across, with a gap between them.
PARCELS = {
    "0301": (119.90, 31.00),
    "0701": (119.93, 31.00),
}
HALF = 0.0045  # degrees


def _square(cx: float, cy: float) -> list[list[list[float]]]:
    return [[[cx - HALF, cy - HALF], [cx + HALF, cy - HALF], [cx + HALF, cy + HALF],
             [cx - HALF, cy + HALF], [cx - HALF, cy - HALF]]]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.create(tmp_path / "p", county="测试县", crs=4549)
    src = tmp_path / "parcels.geojson"
    src.write_text(json.dumps({
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"DLBM": code, "DLMC": "x"},
             "geometry": {"type": "Polygon", "coordinates": _square(*centre)}}
            for code, centre in PARCELS.items()
        ],
    }), encoding="utf-8")
    import_layer(p, src, level="county", role="current_use", scheme="ydyh2023",
                 code_field="DLBM")
    return p


@pytest.fixture
def window(qtbot, project: Project) -> MainWindow:
    win = MainWindow(str(project.folder))
    qtbot.addWidget(win)
    win.resize(900, 600)
    win.show()
    qtbot.waitExposed(win)
    return win


def _pixel(win: MainWindow, lon: float, lat: float) -> QPoint:
    x, y = Transformer.from_crs(4326, 4549, always_xy=True).transform(lon, lat)
    return win.canvas.world_to_pixel(x, y).toPoint()


def _grab(win: MainWindow) -> QImage:
    return win.canvas.grab().toImage()


def test_title_tree_and_status(window: MainWindow) -> None:
    assert "测试县" in window.windowTitle()
    assert window.windowTitle() == "multiplan — 测试县 (p)"
    tree = window.layer_tree
    groups = {tree.topLevelItem(i).text(0): tree.topLevelItem(i)
              for i in range(tree.topLevelItemCount())}
    assert list(groups) == ["县级"]
    item = groups["县级"].child(0)
    assert item.data(0, NAME_ROLE) == "parcels"
    assert item.text(1) == "现状"
    assert item.text(2) == "2"
    assert item.checkState(0) == Qt.CheckState.Checked
    assert "EPSG:4549" in window.crs_label.text()
    assert window.open_action.shortcut().toString() == "Ctrl+O"


def test_parcels_drawn_in_their_class_colours(window: MainWindow) -> None:
    img = _grab(window)
    scheme = load_scheme("ydyh2023")
    for code, (lon, lat) in PARCELS.items():
        pt = _pixel(window, lon, lat)
        assert img.rect().contains(pt)
        assert img.pixelColor(pt) == QColor(*scheme.colour(code)), code
    # between the two parcels: background
    gap = _pixel(window, (PARCELS["0301"][0] + PARCELS["0701"][0]) / 2, 31.00)
    assert img.pixelColor(gap) == QColor(255, 255, 255)
    assert window.canvas.drawn_layers == ["parcels"]


def test_unchecking_hides_the_layer(window: MainWindow) -> None:
    canvas = window.canvas
    _grab(window)
    before = canvas.render_count
    item = window.layer_item("parcels")
    item.setCheckState(0, Qt.CheckState.Unchecked)
    assert not canvas.is_layer_visible("parcels")
    img = _grab(window)
    assert canvas.render_count > before
    assert canvas.drawn_layers == []
    pt = _pixel(window, *PARCELS["0301"])
    assert img.pixelColor(pt) == QColor(255, 255, 255)
    # the group's box drives its children
    group = item.parent()
    assert group.checkState(0) == Qt.CheckState.Unchecked
    group.setCheckState(0, Qt.CheckState.Checked)
    assert canvas.is_layer_visible("parcels")
    assert _grab(window).pixelColor(pt) == QColor(*load_scheme("ydyh2023").colour("0301"))


def test_cursor_position_in_project_crs(window: MainWindow, qtbot) -> None:
    pt = _pixel(window, *PARCELS["0701"])
    x, y = Transformer.from_crs(4326, 4549, always_xy=True).transform(*PARCELS["0701"])
    qtbot.mouseMove(window.canvas, pt)
    qtbot.waitUntil(lambda: window.coord_label.text() != "")
    text = window.coord_label.text().replace(",", "")
    shown_x, shown_y = (float(v) for v in text.replace("X", "").split("Y"))
    upp = window.canvas.units_per_pixel()
    assert abs(shown_x - x) <= upp and abs(shown_y - y) <= upp


def test_empty_state_shows_hint(qtbot) -> None:
    win = MainWindow(None)
    qtbot.addWidget(win)
    win.resize(800, 500)
    win.show()
    qtbot.waitExposed(win)
    assert win.windowTitle() == "multiplan"
    assert win.canvas.hint == "打开项目 (Ctrl+O)"
    assert win.layer_tree.topLevelItemCount() == 0
    img = _grab(win)
    centre = img.rect().center()
    inked = [img.pixelColor(centre.x() + dx, centre.y() + dy) != QColor(255, 255, 255)
             for dx in range(-150, 151, 2) for dy in range(-15, 16, 2)]
    assert any(inked), "the hint text is not drawn at the centre"
    corner = img.pixelColor(5, 5)
    assert corner == QColor(255, 255, 255)


@pytest.mark.parametrize(("lang", "expected"), [("zh", "找不到项目文件"),
                                                ("en", "not a multiplan project")])
def test_open_error_is_a_message_not_a_traceback(qtbot, tmp_path: Path, monkeypatch,
                                                 lang: str, expected: str) -> None:
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(QMessageBox, "critical",
                        lambda parent, title, text, *a, **k: shown.append((title, text)))
    win = MainWindow(None, lang=lang)
    qtbot.addWidget(win)
    assert win.open_project(tmp_path) is False
    assert len(shown) == 1
    assert expected in shown[0][1]
    assert str(tmp_path) in shown[0][1]
    assert "Traceback" not in shown[0][1]
    assert win.project is None


def test_settings_are_isolated_from_the_user_profile(window: MainWindow) -> None:
    # conftest points XDG_CONFIG_HOME at a temporary folder for the session
    path = QSettings("multiplan", "multiplan").fileName()
    assert path.startswith(os.environ["XDG_CONFIG_HOME"])
    assert not path.startswith(str(Path.home() / ".config"))


def test_run_opens_the_window_and_returns_the_exit_code(qtbot, project: Project) -> None:
    seen: list[str] = []

    def close_soon() -> None:
        for w in QApplication.topLevelWidgets():
            if isinstance(w, MainWindow) and w.isVisible():
                seen.append(w.windowTitle())
                w.close()
        QApplication.instance().exit(0)

    QTimer.singleShot(300, close_soon)
    assert gui_app.run(str(project.folder)) == 0
    assert any("测试县" in title for title in seen)


def test_wheel_zoom_keeps_the_point_under_the_cursor_and_home_restores(
        window: MainWindow) -> None:
    canvas = window.canvas
    full = canvas.units_per_pixel()
    pt = _pixel(window, *PARCELS["0701"])
    wheel = QWheelEvent(QPointF(pt), canvas.mapToGlobal(QPointF(pt)), QPoint(0, 0),
                        QPoint(0, 3 * 120), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas, wheel)
    assert canvas.units_per_pixel() == pytest.approx(full * 0.8 ** 3)
    assert (_pixel(window, *PARCELS["0701"]) - pt).manhattanLength() <= 1
    assert _grab(window).pixelColor(pt) == QColor(*load_scheme("ydyh2023").colour("0701"))
    zoom_full = next(a for a in window.menuBar().actions()[1].menu().actions()
                     if a.shortcut().toString() == "Home")
    zoom_full.trigger()
    assert canvas.units_per_pixel() == pytest.approx(full)


def test_plan_layers_start_hidden_under_the_current_use(qtbot, project: Project,
                                                         tmp_path: Path) -> None:
    """Several filled plan layers would cover each other: only 现状 starts checked; control
    lines keep their own look and start checked; groups follow the level order."""
    src = tmp_path / "parcels.geojson"
    import_layer(project, src, name="tugui", level="county", role="land_use_plan",
                 scheme="ydyh2023", code_field="DLBM")
    import_layer(project, src, name="redline", level="provincial", role="eco_redline")
    win = MainWindow(str(project.folder))
    qtbot.addWidget(win)
    win.resize(900, 600)
    win.show()
    qtbot.waitExposed(win)
    tree = win.layer_tree
    assert [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())] == \
        ["省级", "县级"]
    assert win.canvas.is_layer_visible("parcels")
    assert win.canvas.is_layer_visible("redline")
    assert not win.canvas.is_layer_visible("tugui")
    assert win.layer_item("tugui").checkState(0) == Qt.CheckState.Unchecked
    _grab(win)
    assert win.canvas.drawn_layers == ["parcels", "redline"]  # fills first, lines on top
    # the red line is an outline: inside the parcel the class colour still shows
    pt = _pixel(win, *PARCELS["0301"])
    assert _grab(win).pixelColor(pt) == QColor(*load_scheme("ydyh2023").colour("0301"))


def test_a_layer_that_cannot_be_read_is_reported_once(qtbot, project: Project,
                                                      monkeypatch) -> None:
    from multiplan.core.errors import ProjectError

    def broken(self, name, columns=None, bbox=None):
        raise ProjectError("layer.broken", "图层已损坏", "the layer is broken")

    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical",
                        lambda parent, title, text, *a, **k: shown.append(text))
    monkeypatch.setattr(Project, "read_layer", broken)
    win = MainWindow(str(project.folder))
    qtbot.addWidget(win)
    assert win.project is not None and "测试县" in win.windowTitle()
    assert shown == ["parcels: 图层已损坏"]
    item = win.layer_item("parcels")
    assert item.isDisabled() and item.checkState(0) == Qt.CheckState.Unchecked
    assert win.canvas.layer_names() == []
