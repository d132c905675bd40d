"""The minimal main window (issue 2): the project's layers in a tree, drawn on a canvas.

Layers are listed by plan level (国家级/省级/市级/县级) with a check box for visibility, the
role label and the feature count. Vector layers are drawn by :class:`SimpleCanvas`; fill
colours come from the 用地用海 2023 colour table (``mp_code``) where a layer is classified,
else from a per-role default. The status bar shows the project CRS and the cursor position in
it. Errors become a message box with the bilingual text of the core error, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMessageBox,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from multiplan.core.classification import load_scheme
from multiplan.core.errors import MultiplanError
from multiplan.core.layers import LEVELS, LayerRecord
from multiplan.core.project import Project

from .simple_canvas import LayerStyle, SimpleCanvas

#: The scheme of the unified ``mp_code`` column written on import.
UNIFIED_SCHEME = "ydyh2023"
FALLBACK_FILL = (200, 200, 200)

#: Default look per layer role. 三区三线 symbology is not standardised in our sources
#: (domain.md §3.3); these follow common practice: red line for 生态保护红线, yellow hatch
#: for 永久基本农田, purple dashed line for 城镇开发边界.
ROLE_STYLES: dict[str, LayerStyle] = {
    "eco_redline": LayerStyle(fill=None, pen=(220, 20, 20), pen_width=2.0, z=70),
    "basic_farmland": LayerStyle(fill=(230, 180, 0), pen=(215, 170, 0), hatch=True, z=60),
    "urban_boundary": LayerStyle(fill=None, pen=(150, 40, 200), pen_width=2.0, dash=True, z=75),
    "admin_boundary": LayerStyle(fill=None, pen=(40, 40, 40), pen_width=2.0, z=90),
    "township": LayerStyle(fill=None, pen=(110, 110, 110), pen_width=1.0, dash=True, z=80),
    "water": LayerStyle(fill=(51, 142, 192, 200), pen=(30, 100, 170), pen_width=1.0, z=50),
}
DEFAULT_STYLE = LayerStyle()
CLASSIFIED_STYLE = LayerStyle(fill=FALLBACK_FILL, pen=(120, 120, 120), z=10)

# Interface words, Chinese first. (Qt .ts/.qm translations replace this with the real app.)
_UI = {
    "project": ("项目", "Project"),
    "open": ("打开项目…", "Open project…"),
    "quit": ("退出", "Quit"),
    "layers": ("图层", "Layers"),
    "show_all": ("全部显示", "Show all"),
    "hide_all": ("全部隐藏", "Hide all"),
    "zoom_full": ("缩放至全图", "Zoom to full extent"),
    "help": ("帮助", "Help"),
    "about": ("关于 multiplan", "About multiplan"),
    "about_text": ("multiplan：县级国土空间规划“多规合一”桌面 GIS。",
                   "multiplan: a desktop GIS for county-level 多规合一 planning."),
    "hint_open": ("打开项目 (Ctrl+O)", "Open a project (Ctrl+O)"),
    "hint_empty": ("项目中还没有图层", "The project has no layers yet"),
    "col_layer": ("图层", "Layer"),
    "col_role": ("用途", "Role"),
    "col_count": ("要素数", "Features"),
    "raster": ("栅格（简易画布不显示栅格）", "raster (not drawn by the simple canvas)"),
    "open_failed": ("无法打开项目", "Cannot open the project"),
    "layer_failed": ("部分图层无法显示", "Some layers cannot be shown"),
    "unexpected": ("发生意外错误", "Unexpected error"),
    "no_crs": ("未打开项目", "no project"),
}
_LEVEL_EN = {"national": "National", "provincial": "Provincial", "city": "City",
             "county": "County"}

NAME_ROLE = Qt.ItemDataRole.UserRole  # layer name stored on each layer item


class MainWindow(QMainWindow):
    def __init__(self, project: str | Path | None = None, lang: str = "zh",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lang = "en" if lang.lower().startswith("en") else "zh"
        self.project: Project | None = None
        self.records: dict[str, LayerRecord] = {}
        self.resize(1280, 800)

        self.canvas = SimpleCanvas(self)
        self.setCentralWidget(self.canvas)

        self.layer_tree = QTreeWidget()
        self.layer_tree.setHeaderLabels([self.t("col_layer"), self.t("col_role"),
                                         self.t("col_count")])
        header = self.layer_tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        self.layer_tree.itemChanged.connect(self._on_item_changed)
        dock = QDockWidget(self.t("layers"), self)
        dock.setObjectName("layers_dock")
        dock.setWidget(self.layer_tree)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.resizeDocks([dock], [360], Qt.Orientation.Horizontal)

        self.crs_label = QLabel(self.t("no_crs"))
        self.coord_label = QLabel("")
        self.coord_label.setMinimumWidth(260)
        self.statusBar().addWidget(self.crs_label, 1)
        self.statusBar().addPermanentWidget(self.coord_label)
        self.canvas.cursorMoved.connect(self._on_cursor)
        self.canvas.cursorLeft.connect(lambda: self.coord_label.setText(""))

        self._build_menus()
        self._show_empty()
        if project is not None:
            self.open_project(project)

    # ------------------------------------------------------------------ text
    def t(self, key: str) -> str:
        zh, en = _UI[key]
        return en if self.lang == "en" else zh

    def level_label(self, level: str) -> str:
        return _LEVEL_EN.get(level, level) if self.lang == "en" else LEVELS.get(level, level)

    def role_label(self, rec: LayerRecord) -> str:
        return rec.role if self.lang == "en" else rec.role_label

    # ------------------------------------------------------------------ menus
    def _build_menus(self) -> None:
        bar = self.menuBar()
        m_project = bar.addMenu(self.t("project"))
        self.open_action = QAction(self.t("open"), self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.triggered.connect(self.choose_project)
        m_project.addAction(self.open_action)
        m_project.addSeparator()
        self.quit_action = QAction(self.t("quit"), self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.quit_action.triggered.connect(self.close)
        m_project.addAction(self.quit_action)

        m_layers = bar.addMenu(self.t("layers"))
        show_all = m_layers.addAction(self.t("show_all"))
        show_all.triggered.connect(lambda: self.set_all_visible(True))
        hide_all = m_layers.addAction(self.t("hide_all"))
        hide_all.triggered.connect(lambda: self.set_all_visible(False))
        m_layers.addSeparator()
        zoom = m_layers.addAction(self.t("zoom_full"))
        zoom.setShortcut(QKeySequence(Qt.Key.Key_Home))
        zoom.triggered.connect(lambda: self.canvas.zoom_to_extent())

        m_help = bar.addMenu(self.t("help"))
        about = m_help.addAction(self.t("about"))
        about.triggered.connect(lambda: QMessageBox.about(self, self.t("about"),
                                                          self.t("about_text")))

    # ------------------------------------------------------------------ project
    def choose_project(self) -> None:
        settings = _settings()
        start = str(settings.value("last_project_dir", str(Path.home())))
        folder = QFileDialog.getExistingDirectory(self, self.t("open"), start)
        if folder:
            self.open_project(folder)

    def open_project(self, folder: str | Path) -> bool:
        """Open ``folder``; on failure show the error and keep the current state."""
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            project = Project.open(folder)
            records = project.layers()
            county, crs = project.county, project.crs
        except MultiplanError as exc:
            QApplication.restoreOverrideCursor()
            self.show_error(self.t("open_failed"), exc.text(self.lang))
            return False
        except Exception as exc:  # noqa: BLE001 — no traceback reaches a user
            QApplication.restoreOverrideCursor()
            self.show_error(self.t("open_failed"), f"{self.t('unexpected')}: {exc}")
            return False
        try:
            self.project = project
            self.records = {r.name: r for r in records}
            failures = self._load_layers(project, records)
        finally:
            QApplication.restoreOverrideCursor()
        _settings().setValue("last_project_dir", str(Path(project.folder).resolve().parent))
        self.setWindowTitle(f"multiplan — {county} ({Path(project.folder).name})")
        self.crs_label.setText(f"EPSG:{crs.to_epsg()} · {crs.name}")
        if failures:
            self.show_error(self.t("layer_failed"), "\n".join(failures))
        return True

    def _show_empty(self) -> None:
        self.setWindowTitle("multiplan")
        self.canvas.clear()
        self.canvas.set_hint(self.t("hint_open"))
        self.layer_tree.clear()

    def _load_layers(self, project: Project, records: list[LayerRecord]) -> list[str]:
        """Fill the tree and the canvas. Returns error texts for layers that failed."""
        self.layer_tree.blockSignals(True)
        self.layer_tree.clear()
        self.canvas.clear()
        self.canvas.set_hint(self.t("hint_empty"))
        failures: list[str] = []
        for level in LEVELS:  # national → county
            recs = [r for r in records if r.level == level]
            if not recs:
                continue
            group = QTreeWidgetItem(self.layer_tree, [self.level_label(level)])
            group.setFlags(group.flags() | Qt.ItemFlag.ItemIsUserCheckable
                           | Qt.ItemFlag.ItemIsAutoTristate)
            group.setExpanded(True)
            for rec in recs:
                self._add_layer_item(group, rec)
        others = [r for r in records if r.level not in LEVELS]
        for rec in others:
            self._add_layer_item(self.layer_tree.invisibleRootItem(), rec)
        shown_fill = self._initially_filled(records)
        for rec in records:
            if rec.kind != "vector":
                continue
            try:
                self._add_to_canvas(project, rec)
                if not self._visible_at_start(rec, shown_fill):
                    self.canvas.set_layer_visible(rec.name, False)
                    self.layer_item(rec.name).setCheckState(0, Qt.CheckState.Unchecked)
            except Exception as exc:  # noqa: BLE001 — reported in one message below
                text = exc.text(self.lang) if isinstance(exc, MultiplanError) else str(exc)
                failures.append(f"{rec.name}: {text}")
                item = self.layer_item(rec.name)
                item.setCheckState(0, Qt.CheckState.Unchecked)
                item.setDisabled(True)
                item.setToolTip(0, text)
        self.layer_tree.blockSignals(False)
        self.canvas.set_full_extent(project.extent())
        # a county plan is about the county: start on the 行政区 boundary when there is one
        county = [n for n, r in self.records.items()
                  if r.role == "admin_boundary" and n in self.canvas.layer_names()]
        if county:
            self.canvas.zoom_to_extent(self.canvas.layer_bounds(county[0]))
        return failures

    @staticmethod
    def _fills_area(rec: LayerRecord) -> bool:
        """Layers drawn as filled areas that would hide each other when stacked."""
        return rec.kind == "vector" and rec.role not in ROLE_STYLES

    def _initially_filled(self, records: list[LayerRecord]) -> str | None:
        """The one area-filling layer shown at start: the first 现状 layer, else the first
        filled layer. Other plan layers start unchecked so they do not cover it."""
        fills = [r for r in records if self._fills_area(r)]
        for rec in fills:
            if rec.role == "current_use":
                return rec.name
        return fills[0].name if fills else None

    def _visible_at_start(self, rec: LayerRecord, shown_fill: str | None) -> bool:
        return not self._fills_area(rec) or rec.name == shown_fill

    def _add_layer_item(self, parent: QTreeWidgetItem, rec: LayerRecord) -> QTreeWidgetItem:
        count = "" if rec.feature_count is None else f"{rec.feature_count:,}"
        item = QTreeWidgetItem(parent, [rec.title or rec.name, self.role_label(rec), count])
        item.setData(0, NAME_ROLE, rec.name)
        item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        tip = f"{rec.name} · {rec.geometry_type or rec.kind}"
        if rec.scheme:
            tip += f" · {rec.scheme}"
        if rec.kind == "vector":
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(0, Qt.CheckState.Checked)
        else:
            tip += f" · {self.t('raster')}"
            item.setDisabled(True)
        item.setToolTip(0, tip)
        return item

    def _add_to_canvas(self, project: Project, rec: LayerRecord) -> None:
        """Read the layer and hand it to the canvas. Roles with their own look (control
        lines, boundaries, water) keep it; other classified layers are filled by class."""
        by_class = rec.role not in ROLE_STYLES and bool(rec.code_field or rec.scheme)
        gdf = project.read_layer(rec.name, columns=["mp_code"] if by_class else [])
        geoms = np.asarray(gdf.geometry.array, dtype=object)
        if by_class and "mp_code" in gdf.columns:
            self.canvas.add_layer(rec.name, geoms, CLASSIFIED_STYLE,
                                  colours=class_colours(gdf["mp_code"]))
        else:
            self.canvas.add_layer(rec.name, geoms, ROLE_STYLES.get(rec.role, DEFAULT_STYLE))

    # ------------------------------------------------------------------ visibility
    def layer_item(self, name: str) -> QTreeWidgetItem | None:
        it = self._iter_items()
        for item in it:
            if item.data(0, NAME_ROLE) == name:
                return item
        return None

    def _iter_items(self):
        stack = [self.layer_tree.topLevelItem(i)
                 for i in range(self.layer_tree.topLevelItemCount())]
        while stack:
            item = stack.pop(0)
            yield item
            stack.extend(item.child(i) for i in range(item.childCount()))

    def set_all_visible(self, visible: bool) -> None:
        state = Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked
        for item in self._iter_items():
            if item.data(0, NAME_ROLE) and item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
                item.setCheckState(0, state)

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        name = item.data(0, NAME_ROLE)
        if column == 0 and name and name in self.canvas.layer_names():
            self.canvas.set_layer_visible(name, item.checkState(0) == Qt.CheckState.Checked)

    # ------------------------------------------------------------------ status, errors
    def _on_cursor(self, x: float, y: float) -> None:
        self.coord_label.setText(f"X {x:,.2f}  Y {y:,.2f}")

    def show_error(self, title: str, text: str) -> None:
        """Show a user-facing error (a message box; tests replace it)."""
        self.last_error = text
        QMessageBox.critical(self, title, text)


def _settings() -> QSettings:
    """Per-user settings (~/.config/multiplan/multiplan.conf on Linux)."""
    return QSettings("multiplan", "multiplan")


def class_colours(codes: pd.Series) -> np.ndarray:
    """(n, 3) uint8 fill colours for 2023 用地用海 codes (the scheme's own fallback grey for
    unknown codes; ours for missing ones)."""
    scheme = load_scheme(UNIFIED_SCHEME)
    values = codes.astype("string").fillna("").to_numpy(dtype=str)
    uniq, inverse = np.unique(values, return_inverse=True)
    table = np.array([scheme.colour(c)[:3] if c else FALLBACK_FILL for c in uniq],
                     dtype=np.uint8).reshape(-1, 3)
    return table[inverse]
