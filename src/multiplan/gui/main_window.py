"""The main window: menus 项目/图层/分析/审查/发布/帮助 and a toolbar; docks for the layer tree,
the attribute table, identify results and the task panel; a status bar with the cursor
position in the project CRS, the scale 1:N and the CRS name.

The window is a set of views over a :class:`~multiplan.core.project.Project` (the folder is
the truth): layers are read for display in a worker thread, long core operations run in worker
processes (:mod:`multiplan.gui.workers`), and errors become a readable message, never a
traceback. Layer visibility, order and opacity are undoable edits of the map document, saved
into the project's settings by 保存项目.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QStyle,
    QToolBar,
    QWidget,
)

from multiplan.core import crs as crsmod
from multiplan.core.errors import MultiplanError
from multiplan.core.layers import CONTROL_LINE_ROLES, LayerRecord
from multiplan.core.project import Project

from . import jobs
from .attribute_table import AttributeTable
from .dialogs import ImportLayerDialog, LayerPairDialog, LayerPropertiesDialog, NewProjectDialog
from .identify import Areas, Feature, IdentifyPanel, conflicts_of, control_lines_touching, describe
from .layer_tree import LayerTree
from .loading import (
    LoadedLayer,
    conflicts_record,
    load_layer,
    raster_classes,
    raster_kind,
)
from .map_canvas.canvas import MapCanvas
from .map_canvas.raster import RasterData
from .map_canvas.render import View, render_layers
from .map_canvas.vector import LINE, VectorData
from .styles import CONFLICTS_LAYER, ROLE_STYLES, swatch_colours
from .view_commands import Reorder, SetOpacity, SetVisibility
from .workers import TaskHandle, TaskManager, TaskPanel, warm_up

log = logging.getLogger(__name__)

#: Project setting holding the saved map document (layer order, visibility, opacity, view).
VIEW_SETTING = "gui_view"
RECENT_MAX = 8
#: While more visible layers are being read, wait this long before drawing what is there
#: (fewer half-finished renders competing with the reading for the GIL).
LOADING_SETTLE_MS = 400
SCALES = [500, 1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000, 500000]


def settings() -> QSettings:
    """Per-user settings (~/.config/multiplan/multiplan.conf on Linux; tests point
    XDG_CONFIG_HOME elsewhere)."""
    return QSettings("multiplan", "multiplan")


def _preload_background_modules() -> None:
    """Import here, in the UI thread before any project opens, the core modules that the
    loader and review threads would otherwise import on first use: executing a module holds
    the GIL, and those first imports froze the window for ≈120 ms while a county opened
    (≈70 ms once they are loaded; benchmarks in the issue-6 closing note)."""
    import pyogrio  # noqa: F401

    import multiplan.core.comments
    import multiplan.core.conflicts
    import multiplan.core.qa
    import multiplan.core.review
    import multiplan.core.workflow  # noqa: F401


class MainWindow(QMainWindow):
    projectLoaded = Signal()  # every layer of the opened project has been read
    projectOpened = Signal()  # a project was opened or closed (its layers are still loading)

    def __init__(self, project: str | Path | None = None, lang: str = "zh",
                 parent: QWidget | None = None, *, mode: str | None = None,
                 user: str | None = None) -> None:
        super().__init__(parent)
        _preload_background_modules()
        self.lang = "en" if lang.lower().startswith("en") else "zh"
        self.project: Project | None = None
        self.records: dict[str, LayerRecord] = {}
        self.loaded: dict[str, LoadedLayer] = {}
        self.loading = False
        self.load_failures: list[str] = []
        self.last_error: str | None = None
        self.last_identify: list[Feature] = []
        self._load_handle: TaskHandle | None = None
        self._areas: Areas | None = None
        self._opacity: dict[str, float] = {}
        self._queue: collections.deque[LayerRecord] = collections.deque()
        self._queued: set[str] = set()
        self._failed: set[str] = set()
        self._after_load: dict[str, list[Any]] = {}
        self._table_refresh = QTimer(self)
        self._table_refresh.setSingleShot(True)
        self._table_refresh.setInterval(0)
        self._table_refresh.timeout.connect(self._refresh_table_layers)
        self.setObjectName("multiplan_main_window")
        self.resize(1400, 900)

        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self.undo_stack.indexChanged.connect(self._on_clean_changed)  # view vs edit commands
        self.tasks = TaskManager(self)
        self.tasks.error_handler = self._task_failed
        self.tasks.taskStarted.connect(self._on_task_started)
        self._warmed = False

        self.canvas = MapCanvas(self)
        self.setCentralWidget(self.canvas)
        self.layer_tree = LayerTree()
        self.attribute_table = AttributeTable()
        self.identify_panel = IdentifyPanel()
        self.task_panel = TaskPanel(self.tasks, self.lang)
        self.layers_dock = self._dock("layers_dock", self.tr("图层"), self.layer_tree,
                                      Qt.DockWidgetArea.LeftDockWidgetArea)
        self.identify_dock = self._dock("identify_dock", self.tr("识别结果"),
                                        self.identify_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tasks_dock = self._dock("tasks_dock", self.tr("任务"), self.task_panel,
                                     Qt.DockWidgetArea.RightDockWidgetArea)
        self.attributes_dock = self._dock("attributes_dock", self.tr("属性表"),
                                          self.attribute_table,
                                          Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.identify_dock, self.tasks_dock)
        self.identify_dock.raise_()
        self.resizeDocks([self.layers_dock], [330], Qt.Orientation.Horizontal)
        self.resizeDocks([self.identify_dock], [330], Qt.Orientation.Horizontal)
        self.resizeDocks([self.attributes_dock], [220], Qt.Orientation.Vertical)

        self._build_status_bar()
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._connect()
        self._restore_window_state()
        self._show_empty()
        from .review import install_review  # 审查 panel, comparison, review mode (issue 8)

        self.review = install_review(self)
        self.projectOpened.connect(self.review.project_changed)
        if project is not None:
            self.open_project(project, mode=mode, user=user)

    # ================================================================== building
    def _dock(self, name: str, title: str, widget: QWidget,
              area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.coord_label = QLabel("")
        self.coord_label.setMinimumWidth(250)
        self.coord_label.setToolTip(self.tr("光标位置（项目坐标系，米）"))
        self.scale_combo = QComboBox()
        self.scale_combo.setEditable(True)
        self.scale_combo.setMinimumWidth(120)
        self.scale_combo.setToolTip(self.tr("比例尺（可输入 1:N）"))
        for s in SCALES:
            self.scale_combo.addItem(f"1:{s:,}", s)
        self.scale_combo.lineEdit().returnPressed.connect(self._on_scale_entered)
        self.scale_combo.activated.connect(self._on_scale_entered)
        self.crs_label = QLabel(self.tr("未打开项目"))
        self.render_label = QLabel("")
        self.render_label.setMinimumWidth(90)
        bar.addPermanentWidget(self.coord_label)
        bar.addPermanentWidget(QLabel(self.tr("比例尺")))
        bar.addPermanentWidget(self.scale_combo)
        bar.addPermanentWidget(self.crs_label)
        bar.addPermanentWidget(self.render_label)

    def _action(self, text: str, slot: Any = None, shortcut: Any = None,
                tip: str | None = None, icon: QStyle.StandardPixmap | None = None,
                checkable: bool = False) -> QAction:
        act = QAction(text, self)
        if icon is not None:
            act.setIcon(self.style().standardIcon(icon))
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        if tip:
            act.setStatusTip(tip)
            act.setToolTip(tip)
        act.setCheckable(checkable)
        if slot is not None:
            act.triggered.connect(slot)
        return act

    def _build_actions(self) -> None:
        sp = QStyle.StandardPixmap
        a = self._action
        self.new_action = a(self.tr("新建项目…"), self.new_project,
                            QKeySequence.StandardKey.New, icon=sp.SP_FileIcon)
        self.open_action = a(self.tr("打开项目…"), self.choose_project,
                             QKeySequence.StandardKey.Open, self.tr("打开项目 (Ctrl+O)"),
                             icon=sp.SP_DialogOpenButton)
        self.save_action = a(self.tr("保存项目"), self.save_project,
                             QKeySequence.StandardKey.Save,
                             self.tr("保存图层顺序、显示与视图 (Ctrl+S)"),
                             icon=sp.SP_DialogSaveButton)
        self.close_action = a(self.tr("关闭项目"), self.close_project)
        self.quit_action = a(self.tr("退出"), self.close, QKeySequence.StandardKey.Quit)
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.undo_action = self.undo_stack.createUndoAction(self, self.tr("撤销"))
        self.undo_action.setShortcut(QKeySequence("Ctrl+Z"))
        self.undo_action.setIcon(self.style().standardIcon(sp.SP_ArrowBack))
        self.redo_action = self.undo_stack.createRedoAction(self, self.tr("重做"))
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.redo_action.setIcon(self.style().standardIcon(sp.SP_ArrowForward))

        self.import_action = a(self.tr("导入图层…"), self.import_layer_dialog,
                               "Ctrl+Shift+I")
        self.properties_action = a(self.tr("图层属性…"), lambda: self.show_properties())
        self.table_action = a(self.tr("打开属性表"), lambda: self.show_attributes(), "F6")
        self.zoom_layer_action = a(self.tr("缩放至图层"), lambda: self.zoom_to_layer())
        self.zoom_full_action = a(self.tr("缩放至全图"), lambda: self.canvas.zoom_to_extent(),
                                  Qt.Key.Key_Home)
        self.zoom_in_action = a(self.tr("放大"), lambda: self.canvas.zoom_by(0.5, delay=0),
                                QKeySequence.StandardKey.ZoomIn)
        self.zoom_out_action = a(self.tr("缩小"), lambda: self.canvas.zoom_by(2.0, delay=0),
                                 QKeySequence.StandardKey.ZoomOut)
        self.zoom_selection_action = a(self.tr("缩放至所选"), self.zoom_to_selection,
                                       "Ctrl+J")
        self.clear_selection_action = a(self.tr("清除选择"),
                                        lambda: self.canvas.clear_selection(),
                                        "Ctrl+Shift+A")
        self.show_all_action = a(self.tr("全部显示"), lambda: self.set_all_visible(True))
        self.hide_all_action = a(self.tr("全部隐藏"), lambda: self.set_all_visible(False))
        self.tool_group = QActionGroup(self)
        self.pan_action = a(self.tr("平移"), lambda: self.canvas.set_tool("pan"),
                            tip=self.tr("平移地图（也可用鼠标中键或按住空格拖动）"), checkable=True)
        self.identify_action = a(self.tr("识别"), lambda: self.canvas.set_tool("identify"),
                                 tip=self.tr("点击地图识别要素"), checkable=True)
        self.select_action = a(self.tr("选择"), lambda: self.canvas.set_tool("select"),
                               tip=self.tr("点击或拖框选择要素（Ctrl 增选）"), checkable=True)
        for act in (self.pan_action, self.identify_action, self.select_action):
            self.tool_group.addAction(act)
        self.pan_action.setChecked(True)

        self.conflicts_action = a(self.tr("冲突检测（差异图斑）…"), self.run_conflicts)
        self.merged_action = a(self.tr("生成合并一张图"), self.run_merged_map)
        self.assessment_action = a(self.tr("双评价…"), self.run_assessment)
        self.register_action = a(self.tr("差异图斑登记表"), self.show_register)
        self.gate_action = a(self.tr("双评价闸门检查"), self.run_gate)
        self.redlines_action = a(self.tr("三区三线检查"),
                                 lambda: self.run_checks(["redlines"], self.tr("三区三线检查")))
        self.qa_action = a(self.tr("质检"), lambda: self.run_checks(["qa"], self.tr("质检")))
        self.all_checks_action = a(self.tr("全部检查（质检、三区三线、指标、三生）"),
                                   lambda: self.run_checks(None, self.tr("全部检查")))
        self.export_register_action = a(self.tr("导出差异图斑登记表（CSV/XLSX）…"),
                                        self.export_register)
        self.export_map_action = a(self.tr("导出当前地图（PNG）…"), self.export_map_image)
        self.shortcuts_action = a(self.tr("快捷键"), self.show_shortcuts)
        self.about_action = a(self.tr("关于 multiplan"), self.show_about)
        self.lang_zh_action = a("中文", lambda: self.set_language("zh"), checkable=True)
        self.lang_en_action = a("English", lambda: self.set_language("en"), checkable=True)
        lang_group = QActionGroup(self)
        for act in (self.lang_zh_action, self.lang_en_action):
            lang_group.addAction(act)
        (self.lang_en_action if self.lang == "en" else self.lang_zh_action).setChecked(True)
        self.project_actions = [self.save_action, self.close_action, self.import_action,
                                self.conflicts_action, self.merged_action,
                                self.assessment_action, self.register_action, self.gate_action,
                                self.redlines_action, self.qa_action, self.all_checks_action,
                                self.export_register_action, self.export_map_action]

    def _build_menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu(self.tr("项目"))
        self.project_menu = m
        m.addActions([self.new_action, self.open_action])
        self.recent_menu = m.addMenu(self.tr("最近的项目"))
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        m.addActions([self.save_action, self.close_action])
        m.addSeparator()
        m.addActions([self.undo_action, self.redo_action])
        m.addSeparator()
        m.addAction(self.quit_action)

        m = bar.addMenu(self.tr("图层"))
        self.layer_menu = m
        m.addAction(self.import_action)
        m.addSeparator()
        m.addActions([self.properties_action, self.table_action, self.zoom_layer_action])
        m.addSeparator()
        m.addActions([self.show_all_action, self.hide_all_action])
        m.addSeparator()
        m.addActions([self.pan_action, self.identify_action, self.select_action])
        m.addSeparator()
        m.addActions([self.zoom_in_action, self.zoom_out_action, self.zoom_full_action,
                      self.zoom_selection_action, self.clear_selection_action])

        m = bar.addMenu(self.tr("分析"))
        self.analysis_menu = m
        m.addActions([self.conflicts_action, self.merged_action, self.assessment_action])

        m = bar.addMenu(self.tr("审查"))
        self.review_menu = m
        m.addActions([self.register_action])
        m.addSeparator()
        m.addActions([self.qa_action, self.redlines_action, self.all_checks_action])
        m.addSeparator()
        m.addAction(self.gate_action)

        m = bar.addMenu(self.tr("发布"))
        self.publish_menu = m
        m.addActions([self.export_register_action, self.export_map_action])
        from .export_dialog import install_export_action
        install_export_action(self, m)  # 公开发布导出… (sheets, statistics, data package)

        m = bar.addMenu(self.tr("帮助"))
        self.help_menu = m
        m.addAction(self.shortcuts_action)
        lang = m.addMenu(self.tr("界面语言"))
        lang.addActions([self.lang_zh_action, self.lang_en_action])
        m.addSeparator()
        m.addAction(self.about_action)
        view = m.addMenu(self.tr("面板"))
        for dock in (self.layers_dock, self.attributes_dock, self.identify_dock,
                     self.tasks_dock):
            view.addAction(dock.toggleViewAction())

    def _build_toolbar(self) -> None:
        tb = QToolBar(self.tr("工具栏"), self)
        tb.setObjectName("main_toolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(tb)
        self.toolbar = tb
        tb.addActions([self.new_action, self.open_action, self.save_action])
        tb.addSeparator()
        tb.addActions([self.undo_action, self.redo_action])
        tb.addSeparator()
        tb.addActions([self.pan_action, self.identify_action, self.select_action])
        tb.addSeparator()
        tb.addActions([self.zoom_in_action, self.zoom_out_action, self.zoom_full_action,
                       self.zoom_selection_action, self.clear_selection_action])
        tb.addSeparator()
        tb.addActions([self.table_action, self.conflicts_action])

    def _connect(self) -> None:
        c = self.canvas
        c.cursorMoved.connect(self._on_cursor)
        c.cursorLeft.connect(lambda: self.coord_label.setText(""))
        c.viewChanged.connect(self._on_view_changed)
        c.renderFinished.connect(lambda s: self.render_label.setText(
            self.tr("绘制 {0} s").format(f"{s:.2f}")))
        c.identifyRequested.connect(self.identify_at)
        c.selectionChanged.connect(self._on_canvas_selection)
        c.toolChanged.connect(self._on_tool_changed)
        t = self.layer_tree
        t.visibilityToggled.connect(self._on_visibility_toggled)
        t.orderChanged.connect(self._on_order_changed)
        t.zoomToLayer.connect(self.zoom_to_layer)
        t.propertiesRequested.connect(self.show_properties)
        t.attributesRequested.connect(self.show_attributes)
        t.currentLayerChanged.connect(self._on_current_layer)
        a = self.attribute_table
        a.selectionChanged.connect(self._on_table_selection)
        a.zoomToSelected.connect(lambda name: self.canvas.zoom_to_selection(name))
        a.layerChosen.connect(lambda name: self._sync_table_selection(name))

    # ================================================================== window state
    def _restore_window_state(self) -> None:
        s = settings()
        geometry = s.value("window/geometry")
        state = s.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    def save_window_state(self) -> None:
        s = settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.sync()

    def view_modified(self) -> bool:
        """True when layer order, visibility or opacity changed since the last save: only
        those are what 保存项目 writes. Feature edits and review edits share the undo stack
        (one Ctrl+Z for everything) but are saved by their own sessions."""
        st = self.undo_stack
        if st.isClean():
            return False
        clean = st.cleanIndex()
        lo, hi = (0, st.count()) if clean < 0 else sorted((clean, st.index()))
        return any(isinstance(st.command(i), (SetVisibility, Reorder, SetOpacity))
                   for i in range(lo, hi))

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.project is not None and self.view_modified():
            answer = QMessageBox.question(
                self, self.tr("保存项目"), self.tr("图层顺序与显示已修改，是否保存？"),
                QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
            if answer == QMessageBox.StandardButton.Cancel:
                event.ignore()
                return
            if answer == QMessageBox.StandardButton.Save:
                self.save_project()
        running = [t for t in self.tasks.running() if t is not self._load_handle]
        if running:
            answer = QMessageBox.question(
                self, self.tr("任务正在运行"),
                self.tr("还有 {0} 个任务正在运行，退出将取消它们。是否退出？").format(len(running)),
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.save_window_state()
        self.tasks.cancel_all(wait=3.0)
        self.canvas.shutdown()
        self.review.shutdown()
        super().closeEvent(event)

    # ================================================================== text helpers
    def _on_clean_changed(self, _clean: bool) -> None:
        with contextlib.suppress(RuntimeError):  # emitted while the window is destroyed
            self._update_title()

    def _update_title(self) -> None:
        if self.project is None:
            self.setWindowTitle("multiplan")
            return
        mark = " *" if self.view_modified() else ""
        self.setWindowTitle(f"multiplan — {self.project.county} "
                            f"({Path(self.project.folder).name}){mark}")

    def layer_title(self, name: str) -> str:
        rec = self.records.get(name)
        if name == CONFLICTS_LAYER:
            return self.tr("差异图斑")
        return (rec.title or rec.name) if rec else name

    def show_error(self, title: str, text: str) -> None:
        """A user-facing error: a message box with readable text (tests replace it)."""
        self.last_error = text
        QMessageBox.critical(self, title, text)

    def _error_text(self, exc: BaseException) -> str:
        if isinstance(exc, MultiplanError):
            return exc.text(self.lang)
        return self.tr("发生意外错误：{0}").format(f"{type(exc).__name__}: {exc}")

    def _on_task_started(self, handle: TaskHandle) -> None:
        if not handle.transient:  # show the progress of the user's own tasks
            self.tasks_dock.show()
            self.tasks_dock.raise_()

    def _task_failed(self, handle: TaskHandle) -> None:
        self.show_error(self.tr("任务失败：{0}").format(handle.title), handle.error_text(self.lang))

    # ================================================================== project
    def _show_empty(self) -> None:
        self._update_title()
        self.canvas.clear()
        self.canvas.set_hint(self.tr("打开项目 (Ctrl+O)"))
        self.layer_tree.clear_layers()
        self.attribute_table.set_layers({})
        self.identify_panel.clear()
        self.crs_label.setText(self.tr("未打开项目"))
        for act in self.project_actions:
            act.setEnabled(False)

    def choose_project(self) -> None:
        start = str(settings().value("last_project_dir", str(Path.home())))
        folder = QFileDialog.getExistingDirectory(self, self.tr("打开项目"), start)
        if folder:
            self.open_project(folder)

    def new_project(self) -> None:
        dlg = NewProjectDialog(self, str(settings().value("last_project_dir", "")))
        if dlg.exec() != QDialog.DialogCode.Accepted:
            return
        v = dlg.values()
        if not v["folder"] or not v["county"]:
            self.show_error(self.tr("无法新建项目"), self.tr("请填写项目文件夹和县（区）名称"))
            return
        try:
            Project.create(v["folder"], county=v["county"], crs=v["epsg"])
        except Exception as exc:  # noqa: BLE001 — no traceback reaches a user
            self.show_error(self.tr("无法新建项目"), self._error_text(exc))
            return
        self.open_project(v["folder"])

    def close_project(self) -> None:
        if not self._confirm_discard():
            return
        self._stop_loading()
        self.project = None
        self.records = {}
        self.loaded = {}
        self.undo_stack.clear()
        self._show_empty()
        self.projectOpened.emit()

    def _confirm_discard(self) -> bool:
        if self.project is None or not self.view_modified():
            return True
        answer = QMessageBox.question(
            self, self.tr("保存项目"), self.tr("图层顺序与显示已修改，是否保存？"),
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            self.save_project()
        return answer != QMessageBox.StandardButton.Cancel

    def _stop_loading(self) -> None:
        if self._load_handle is not None and self._load_handle.is_running():
            self._load_handle.cancel()
        self._load_handle = None
        self.loading = False
        self._queue.clear()
        self._queued.clear()
        self._failed.clear()
        self._after_load.clear()

    def open_project(self, folder: str | Path, mode: str | None = None,
                     user: str | None = None) -> bool:
        """Open ``folder``: the tree at once, the layers as they are read (in a thread).
        ``mode="review"`` opens it for the review committee as ``user`` (plan data
        read-only). On failure show the error and keep the current state."""
        if not self._confirm_discard():
            return False
        try:
            project = Project.open(folder, mode=mode or "edit", user=user)
            records = project.layers()
            settings_ = project.settings
            crs = project.crs
            view_state = settings_.get(VIEW_SETTING) or {}
            bounds = self._contents_bounds(project)
        except Exception as exc:  # noqa: BLE001 — no traceback reaches a user
            self.show_error(self.tr("无法打开项目"), self._error_text(exc))
            return False
        self._stop_loading()
        self.project = project
        self._areas = Areas(crs)
        self.records = {r.name: r for r in records}
        if CONFLICTS_LAYER in bounds:
            self.records[CONFLICTS_LAYER] = conflicts_record()
        vectors = [bounds[r.name] for r in records if r.kind == "vector" and r.name in bounds]
        extent = (min(b[0] for b in vectors), min(b[1] for b in vectors),
                  max(b[2] for b in vectors), max(b[3] for b in vectors)) if vectors else None
        self.loaded = {}
        self.load_failures = []
        self.undo_stack.clear()
        self.canvas.clear()
        self.canvas.set_hint(self.tr("正在读取图层…"))
        self.identify_panel.clear()
        self.attribute_table.set_layers({})
        self.crs_label.setText(f"EPSG:{crs.to_epsg()} · {crs.name}")
        for act in self.project_actions:
            act.setEnabled(True)
        self._build_tree(view_state)
        # extent: the saved view, else the county boundary, else everything
        self.canvas.set_full_extent(extent, zoom=False)
        saved = view_state.get("view")
        county = [r.name for r in records if r.role == "admin_boundary" and r.name in bounds]
        if saved:
            self.canvas.set_center(saved[0], saved[1], saved[2])
        elif county:
            self.canvas.zoom_to_extent(bounds[county[0]])
        else:
            self.canvas.zoom_to_extent(extent)
        self._update_title()
        self._remember_recent(project.folder)
        self.projectOpened.emit()
        self.request_load()
        return True

    @staticmethod
    def _contents_bounds(project: Project) -> dict[str, tuple[float, float, float, float]]:
        """Bounds of every feature table, from gpkg_contents (one quick query)."""
        with contextlib.closing(sqlite3.connect(f"file:{project.gpkg}?mode=ro",
                                                uri=True)) as conn:
            rows = conn.execute("SELECT table_name, min_x, min_y, max_x, max_y FROM "
                                "gpkg_contents WHERE data_type = 'features'").fetchall()
        return {r[0]: tuple(float(v) for v in r[1:]) for r in rows  # type: ignore[misc]
                if r[1] is not None}

    def _table_bounds(self, table: str) -> tuple[float, float, float, float] | None:
        assert self.project is not None
        with contextlib.closing(sqlite3.connect(f"file:{self.project.gpkg}?mode=ro",
                                                uri=True)) as conn:
            row = conn.execute("SELECT min_x, min_y, max_x, max_y FROM gpkg_contents "
                               "WHERE table_name = ?", (table,)).fetchone()
        if row is None or row[0] is None:
            return None
        return tuple(float(v) for v in row)  # type: ignore[return-value]

    def _remember_recent(self, folder: Path) -> None:
        s = settings()
        path = str(Path(folder).resolve())
        recent = [p for p in (s.value("recent_projects") or []) if p != path]
        s.setValue("recent_projects", [path, *recent][:RECENT_MAX])
        s.setValue("last_project_dir", str(Path(path).parent))

    def recent_projects(self) -> list[str]:
        value = settings().value("recent_projects") or []
        return [value] if isinstance(value, str) else list(value)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_projects()
        if not recent:
            act = self.recent_menu.addAction(self.tr("（无）"))
            act.setEnabled(False)
            return
        for i, path in enumerate(recent):
            act = self.recent_menu.addAction(f"&{i + 1} {path}")
            act.triggered.connect(lambda _=False, p=path: self.open_project(p))
        self.recent_menu.addSeparator()
        self.recent_menu.addAction(self.tr("清除列表"),
                                   lambda: settings().setValue("recent_projects", []))

    def save_project(self) -> bool:
        """Save the map document (layer order, visibility, opacity, view) into the project."""
        if self.project is None:
            return False
        state = {
            "order": self.layer_tree.order(),
            "visible": {n: self.layer_tree.is_checked(n) for n in self.layer_tree.layer_names()},
            "opacity": {n: self.canvas.layer(n).style.opacity
                        for n in self.canvas.layer_names()
                        if self.canvas.layer(n).style.opacity != 1.0},
            "view": [*self.canvas.center(), self.canvas.units_per_pixel()],
        }
        try:
            self.project.set_settings(**{VIEW_SETTING: state})
        except Exception as exc:  # noqa: BLE001
            self.show_error(self.tr("无法保存项目"), self._error_text(exc))
            return False
        self.undo_stack.setClean()
        self.statusBar().showMessage(self.tr("项目已保存"), 3000)
        return True

    # ================================================================== layers
    def _visible_at_start(self, rec: LayerRecord, shown_fill: str | None) -> bool:
        if rec.kind == "raster" or rec.name == CONFLICTS_LAYER:
            return False
        fills = rec.role not in ROLE_STYLES and rec.role not in CONTROL_LINE_ROLES
        return not fills or rec.name == shown_fill

    def _initial_fill(self) -> str | None:
        fills = [r for r in self.records.values() if r.kind == "vector"
                 and r.role not in ROLE_STYLES and r.name != CONFLICTS_LAYER]
        for rec in fills:
            if rec.role == "current_use":
                return rec.name
        return fills[0].name if fills else None

    def _build_tree(self, view_state: dict[str, Any]) -> None:
        tree = self.layer_tree
        tree.clear_layers()
        shown_fill = self._initial_fill()
        saved_visible = view_state.get("visible", {})
        for rec in self.records.values():
            visible = saved_visible.get(rec.name, self._visible_at_start(rec, shown_fill))
            tree.add_layer(rec, visible)
        if view_state.get("order"):
            tree.apply_order(view_state["order"])
        self._opacity = dict(view_state.get("opacity", {}))

    def request_load(self, names: list[str] | None = None,
                     then: Any = None) -> None:
        """Read layers for display in the loader thread (one thread, a queue; the tree's
        top layers first). ``names`` None: every visible layer not read yet. ``then(name)``
        runs in the UI thread once each named layer is ready (at once if it already is).

        Hidden layers are read when first shown or asked for (attribute table), so a
        project opens as fast as its visible layers read."""
        if self.project is None:
            return
        if names is None:
            names = [n for n in self.layer_tree.layer_names() if self.layer_tree.is_checked(n)]
        order = self.layer_tree.layer_names()
        names = sorted(set(names), key=lambda n: order.index(n) if n in order else len(order))
        for name in names:
            if name in self.loaded:
                if then is not None:
                    then(name)
                continue
            if name not in self.records or name in self._failed:
                continue
            if then is not None:
                self._after_load.setdefault(name, []).append(then)
            if name not in self._queued:
                self._queued.add(name)
                self._queue.append(self.records[name])
                self.layer_tree.set_loading(name, True)
        if self._queue and (self._load_handle is None or not self._load_handle.is_running()):
            self._start_loader()
        elif not self._queue and not self.loading:
            self._finish_loading()

    def _start_loader(self) -> None:
        folder = self.project.folder  # type: ignore[union-attr]
        queue = self._queue
        self.loading = True
        self.canvas.set_hint("" if self.loaded else self.tr("正在读取图层…"))

        def work(task: Any) -> int:
            n = 0
            while queue:
                rec = queue.popleft()
                task.progress(0.0, rec.title or rec.name)
                try:
                    task.post(load_layer(folder, rec, task))
                except Exception as exc:
                    if task.token.cancelled:
                        raise
                    task.post(LoadedLayer(rec, None, None,  # type: ignore[arg-type]
                                          error=self._error_text(exc)))
                n += 1
            task.progress(1.0, "")
            return n

        self._load_handle = self.tasks.run_in_thread(
            self.tr("读取图层"), work, transient=True, on_partial=self._on_layer_loaded,
            on_done=lambda _n: self._loader_finished(),
            on_error=lambda err: (self._loader_finished(),
                                  self.show_error(self.tr("读取图层失败"),
                                                  err.get(self.lang) or err.get("en", ""))),
            on_cancel=lambda: None)

    def _loader_finished(self) -> None:
        if self._queue:  # requested after the worker saw an empty queue
            self._start_loader()
            return
        self._finish_loading()

    def _on_layer_loaded(self, layer: LoadedLayer) -> None:
        name = layer.name
        self._queued.discard(name)
        if self.project is None or name not in self.records:
            return
        tree = self.layer_tree
        tree.set_loading(name, False)
        if layer.error is not None:
            self._failed.add(name)
            self._after_load.pop(name, None)
            self.load_failures.append(f"{self.layer_title(name)}: {layer.error}")
            tree.set_layer_error(name, layer.error)
            return
        self.loaded[name] = layer
        style = layer.style
        if name in getattr(self, "_opacity", {}):
            style = style.copy(opacity=float(self._opacity[name]))
        palette = layer.classes.palette if layer.classes is not None else []
        more = any(self.layer_tree.is_checked(r.name) for r in list(self._queue))
        settle = LOADING_SETTLE_MS if more else 0
        self.canvas.add_layer(name, layer.data, style, palette, visible=tree.is_checked(name),
                              settle=settle)
        self._sync_canvas_order(settle)
        self._set_legend(layer)
        if self.canvas.hint:
            self.canvas.set_hint("")
        self._table_refresh.start()
        if self.attribute_table.layer is None and layer.attributes is not None and (
                name == self._initial_fill()):
            self._refresh_table_layers()
            self.attribute_table.show_layer(name)
        for callback in self._after_load.pop(name, []):
            callback(name)

    def _set_legend(self, layer: LoadedLayer) -> None:
        tree = self.layer_tree
        if isinstance(layer.data, RasterData):
            tree.set_legend(layer.name, [(lbl, col) for lbl, col in layer.data.legend])
            return
        data: VectorData = layer.data
        st = layer.style
        classes = layer.classes
        colours = swatch_colours(st, classes)
        if classes is not None and classes.palette:
            entries = list(zip(classes.labels, colours, strict=True))
            counts = classes.counts
        else:
            entries = [(self.layer_title(layer.name),
                        st.fill if data.kind not in (LINE,) else None)]
            counts = None
        tree.set_legend(layer.name, entries, counts, hatch=st.hatch,
                        line=data.kind == LINE, outline=st.pen, dash=st.dash)

    def _finish_loading(self) -> None:
        self.loading = False
        if not self._warmed:  # start the worker-process server once the map is up
            self._warmed = True
            QTimer.singleShot(500, warm_up)
        self.canvas.set_hint("" if self.loaded else self.tr("项目中还没有图层"))
        if self.load_failures:
            failures, self.load_failures = self.load_failures, []
            self.show_error(self.tr("部分图层无法显示"), "\n".join(failures))
        self.statusBar().showMessage(self.tr("已读取 {0} 个图层").format(len(self.loaded)), 5000)
        self.projectLoaded.emit()

    def refresh_layers(self, reload: set[str] | None = None) -> None:
        """Re-read the registry after a task changed the project: add new layers, drop
        removed ones, re-read changed ones (and those named in ``reload``)."""
        if self.project is None:
            return
        reload = set(reload or ())
        records = {r.name: r for r in self.project.layers()}
        if CONFLICTS_LAYER in self._contents_bounds(self.project):
            records[CONFLICTS_LAYER] = conflicts_record()
        to_load = []
        for name in list(self.records):
            if name not in records:
                self.layer_tree.remove_layer(name)
                self.canvas.remove_layer(name)
                self.loaded.pop(name, None)
                del self.records[name]
        for name, rec in records.items():
            old = self.records.get(name)
            if old is None:
                self.records[name] = rec
                # a new plan layer shows (the user just imported it); rasters and results
                # that would cover the map wait until they are switched on
                self.layer_tree.add_layer(rec, rec.kind == "vector"
                                          and rec.name != CONFLICTS_LAYER
                                          and rec.role not in ("assessment_result",
                                                               "assessment_factor"))
                to_load.append(rec)
            elif (name in reload or old.imported_at != rec.imported_at
                  or old.source_sha256 != rec.source_sha256):
                self.records[name] = rec
                to_load.append(rec)
        self._refresh_table_layers()
        for rec in to_load:
            self.loaded.pop(rec.name, None)
            self._failed.discard(rec.name)
            if self.canvas.has_layer(rec.name):
                self.canvas.remove_layer(rec.name)
        self.request_load([r.name for r in to_load if self.layer_tree.is_checked(r.name)])

    def _refresh_table_layers(self) -> None:
        layers = {n: (self.layer_title(n), ly.attributes) for n, ly in self.loaded.items()
                  if ly.attributes is not None}
        ordered = {n: layers[n] for n in self.layer_tree.layer_names() if n in layers}
        self.attribute_table.set_layers(ordered)

    def _sync_canvas_order(self, settle: int = 0) -> None:
        self.canvas.set_order(list(reversed(self.layer_tree.layer_names())), settle)

    # -------------------------------------------------------------- undoable map edits
    def apply_visibility(self, name: str, visible: bool) -> None:
        self.layer_tree.apply_visibility(name, visible)
        if self.canvas.has_layer(name):
            self.canvas.set_layer_visible(name, visible)
        elif visible:
            self.request_load([name])

    def apply_order(self, order: Any) -> None:
        self.layer_tree.apply_order(order)
        self._sync_canvas_order()
        self._refresh_table_layers()

    def apply_opacity(self, name: str, opacity: float) -> None:
        if self.canvas.has_layer(name):
            layer = self.canvas.layer(name)
            self.canvas.set_layer_style(name, layer.style.copy(opacity=opacity))
        self._opacity[name] = opacity

    def _on_visibility_toggled(self, changes: list[tuple[str, bool]]) -> None:
        before = {n: not v for n, v in changes}
        self.undo_stack.push(SetVisibility(self, changes, before))

    def _on_order_changed(self, old: Any, new: Any) -> None:
        self._sync_canvas_order()
        self.undo_stack.push(Reorder(self, old, new))

    def set_layer_visible(self, name: str, visible: bool) -> None:
        """Show or hide a layer as the user would (undoable)."""
        if self.layer_tree.is_checked(name) != visible:
            self.undo_stack.push(SetVisibility(self, [(name, visible)], {name: not visible}))

    def set_all_visible(self, visible: bool) -> None:
        changes = [(n, visible) for n in self.layer_tree.layer_names()
                   if self.layer_tree.is_checked(n) != visible
                   and not self.layer_tree.layer_item(n).isDisabled()]
        if changes:
            self.undo_stack.push(SetVisibility(self, changes, {n: not v for n, v in changes}))

    def layer_item(self, name: str) -> Any:
        return self.layer_tree.layer_item(name)

    # -------------------------------------------------------------- layer commands
    def _target_layer(self, name: str | None) -> str | None:
        return name or self.layer_tree.current_layer() or self.attribute_table.layer

    def zoom_to_layer(self, name: str | None = None) -> None:
        name = self._target_layer(name)
        if not name:
            return
        bounds = self.canvas.layer_bounds(name) if self.canvas.has_layer(name) else \
            self._table_bounds(name)
        if bounds is not None:
            self.canvas.zoom_to_extent(bounds)

    def zoom_to_selection(self) -> None:
        for name in [self.attribute_table.layer, self.layer_tree.current_layer(),
                     *self.canvas.layer_names()]:
            if name and self.canvas.has_layer(name) and self.canvas.zoom_to_selection(name):
                return

    def show_attributes(self, name: str | None = None) -> None:
        name = self._target_layer(name)
        self.attributes_dock.show()
        self.attributes_dock.raise_()
        if not name:
            return

        def show(n: str) -> None:
            if self.loaded[n].attributes is not None:
                self._refresh_table_layers()
                self.attribute_table.show_layer(n)
                self._sync_table_selection(n)

        self.request_load([name], then=show)

    def show_properties(self, name: str | None = None) -> bool:
        name = self._target_layer(name)
        if not name or name not in self.records or self.project is None:
            return False
        rec = self.records[name]
        info = {"project_crs": crsmod.crs_label(self.project.epsg)}
        if rec.scheme:
            with contextlib.suppress(Exception):
                from multiplan.core.classification import load_scheme

                sch = load_scheme(rec.scheme)
                info["scheme"] = f"{sch.title}（{sch.version_id}）"
        layer = self.loaded.get(name)
        if layer is not None and layer.classes is not None and layer.classes.column:
            info["extra:" + self.tr("分类字段")] = layer.classes.column
            info["extra:" + self.tr("类别数")] = str(len(layer.classes.labels))
        if layer is not None and isinstance(layer.data, RasterData):
            r = layer.data
            info["extra:" + self.tr("栅格大小")] = f"{r.source_shape[1]} × {r.source_shape[0]}"
            info["extra:" + self.tr("显示方式")] = {"dem": self.tr("山体阴影（高程晕渲）"),
                                                  "classes": self.tr("分类着色"),
                                                  "continuous": self.tr("连续色带")}[r.kind]
        opacity = self.canvas.layer(name).style.opacity if self.canvas.has_layer(name) else 1.0
        dlg = LayerPropertiesDialog(rec, info, opacity, self)
        self.last_properties = dlg
        if dlg.exec() == QDialog.DialogCode.Accepted and self.canvas.has_layer(name):
            new = dlg.chosen_opacity()
            if abs(new - opacity) > 1e-9:
                self.undo_stack.push(SetOpacity(self, name, opacity, new))
        return True

    def _on_current_layer(self, name: str) -> None:
        if self.canvas.has_layer(name) and self.canvas.layer(name).is_vector:
            self.canvas.active_layer = name

    # ================================================================== map feedback
    def _on_cursor(self, x: float, y: float) -> None:
        self.coord_label.setText(f"X {x:,.2f}  Y {y:,.2f}")

    def _on_view_changed(self) -> None:
        n = self.canvas.scale_denominator()
        text = f"1:{n:,.0f}"
        if not self.scale_combo.lineEdit().hasFocus():
            self.scale_combo.blockSignals(True)
            self.scale_combo.setEditText(text)
            self.scale_combo.blockSignals(False)

    def scale_text(self) -> str:
        return self.scale_combo.currentText()

    def _on_scale_entered(self, *_: Any) -> None:
        text = self.scale_combo.currentText().replace(",", "").replace("，", "").strip()
        if ":" in text or "：" in text:
            text = text.replace("：", ":").split(":", 1)[1]
        try:
            n = float(text)
        except ValueError:
            self._on_view_changed()
            return
        if n > 0:
            self.canvas.set_scale(n)

    def _on_tool_changed(self, tool: str) -> None:
        {"pan": self.pan_action, "identify": self.identify_action,
         "select": self.select_action}[tool].setChecked(True)

    # ================================================================== selection
    def _on_canvas_selection(self, name: str) -> None:
        n = len(self.canvas.selected_fids(name))
        self.statusBar().showMessage(self.tr("{0}：已选 {1} 个要素").format(
            self.layer_title(name), f"{n:,}"), 5000)
        if self.attribute_table.layer == name:
            self.attribute_table.selection_from_map(self.canvas.layer(name).selection)

    def _on_table_selection(self, name: str, fids: np.ndarray) -> None:
        self.canvas.set_selection(name, fids, emit=False)

    def _sync_table_selection(self, name: str) -> None:
        if self.canvas.has_layer(name):
            self.attribute_table.selection_from_map(self.canvas.layer(name).selection)

    # ================================================================== identify
    def identify_at(self, x: float, y: float, per_layer: int = 5) -> list[Feature]:
        """Identify features under the map point (x, y) on every visible layer, top first;
        shows them in the identify panel and highlights the first."""
        if self.project is None or self._areas is None:
            return []
        features: list[Feature] = []
        control = [(n, self.layer_title(n), self.records[n], ly.data, ly.attributes)
                   for n, ly in self.loaded.items()
                   if self.records[n].role in CONTROL_LINE_ROLES
                   and isinstance(ly.data, VectorData)]
        for name in reversed(self.canvas.visible_layers()):
            layer = self.loaded.get(name)
            if layer is None:
                continue
            if isinstance(layer.data, RasterData):
                f = self._identify_raster(name, layer, x, y)
                if f is not None:
                    features.append(f)
                continue
            data: VectorData = layer.data
            hits = self.canvas.features_at(x, y, name)[::-1][:per_layer]
            for pos in hits.tolist():
                attrs = layer.attributes.iloc[pos] if layer.attributes is not None else None
                f = describe(name, self.layer_title(name), self.records.get(name),
                             int(data.fids[pos]), data.geoms[pos], attrs, self._areas)
                rec = self.records.get(name)
                if rec is not None and rec.role not in ("admin_boundary", "township"):
                    # (a county or township boundary meets every control line: no news)
                    others = [c for c in control if c[0] != name]
                    f.control_lines = control_lines_touching(data.geoms[pos], others)
                if name != CONFLICTS_LAYER:
                    f.conflicts = conflicts_of(self.project.gpkg, name, f.fid)
                features.append(f)
        crs = f"EPSG:{self.project.epsg}"
        self.identify_panel.show_features(features, crs)
        self.identify_dock.show()
        self.identify_dock.raise_()
        self.last_identify = features
        first = next((f for f in features if f.fid >= 0), None)
        if first is not None:
            self.canvas.set_highlight(first.layer, [first.fid])
        else:
            self.canvas.clear_highlight()
        return features

    def _identify_raster(self, name: str, layer: LoadedLayer, x: float,
                         y: float) -> Feature | None:
        r: RasterData = layer.data  # type: ignore[assignment]
        minx, miny, maxx, maxy = r.bounds
        if not (minx <= x <= maxx and miny <= y <= maxy) or self.project is None:
            return None
        rec = self.records[name]
        try:
            import rasterio

            with rasterio.open(self.project.folder / (rec.raster_path or "")) as ds:
                value = next(ds.sample([(x, y)], masked=True))[0]
        except Exception:  # noqa: BLE001
            return None
        if np.ma.is_masked(value):
            return None
        f = Feature(name, self.layer_title(name), -1, None, rec)
        f.attributes = {self.tr("栅格值"): float(value)}
        if raster_kind(rec) == "classes":
            label = raster_classes(rec).get(int(value), (str(value),))[0]
            f.attributes[self.tr("类别")] = label
        return f

    # ================================================================== tasks
    def _folder(self) -> str:
        assert self.project is not None
        return str(self.project.folder)

    def import_layer_dialog(self, path: str = "") -> None:
        if self.project is None:
            return
        dlg = ImportLayerDialog(self, path)
        if dlg.exec() != QDialog.DialogCode.Accepted or not dlg.path.text().strip():
            return
        self.import_layer(dlg.path.text().strip(), dlg.options())

    def import_layer(self, path: str, options: dict[str, Any]) -> TaskHandle | None:
        if self.project is None:
            return None

        def done(result: dict[str, Any]) -> None:
            lines = result["summary_en" if self.lang == "en" else "summary_zh"]
            self.statusBar().showMessage(lines[0] if lines else "", 8000)
            self.refresh_layers({result["name"]})

        return self.tasks.run_in_process(self.tr("导入 {0}").format(Path(path).name),
                                         jobs.import_layer, self._folder(), path, options,
                                         on_done=done)

    def _polygon_layers(self) -> list[tuple[str, str]]:
        return [(n, self.layer_title(n)) for n, r in self.records.items()
                if r.kind == "vector" and n != CONFLICTS_LAYER
                and "Polygon" in (r.geometry_type or "")]

    def run_conflicts(self, pair: tuple[str, str] | None | bool = False) -> TaskHandle | None:
        """Conflict detection; asks for the layer pair unless ``pair`` is given (None: all)."""
        if self.project is None:
            return None
        if pair is False:
            dlg = LayerPairDialog(self._polygon_layers(), self)
            if dlg.exec() != QDialog.DialogCode.Accepted:
                return None
            pair = dlg.pair()
        args = pair if pair else ()
        title = (self.tr("冲突检测：{0} × {1}").format(*(self.layer_title(n) for n in pair))
                 if pair else self.tr("冲突检测：全部图层对"))

        def done(result: dict[str, Any]) -> None:
            n = sum(p.get("conflicts") or 0 for p in result["pairs"])
            self.statusBar().showMessage(self.tr("冲突检测完成：{0} 个冲突图斑").format(n), 8000)
            self.refresh_layers({CONFLICTS_LAYER})

        return self.tasks.run_in_process(title, jobs.detect_conflicts, self._folder(), *args,
                                         on_done=done)

    def run_merged_map(self) -> TaskHandle | None:
        if self.project is None:
            return None
        return self.tasks.run_in_process(
            self.tr("生成合并一张图"), jobs.merged_map, self._folder(),
            on_done=lambda r: self.statusBar().showMessage(
                self.tr("合并一张图：{0} 个图斑，待定 {1}").format(r.get("pieces"),
                                                          r.get("pending")), 8000))

    def run_assessment(self) -> TaskHandle | None:
        if self.project is None:
            return None

        def done(result: dict[str, Any]) -> None:
            self.statusBar().showMessage(result["gate_en" if self.lang == "en" else "gate_zh"],
                                         8000)
            self.refresh_layers()

        return self.tasks.run_in_process(self.tr("双评价"), jobs.assessment, self._folder(),
                                         on_done=done)

    def run_gate(self) -> TaskHandle | None:
        if self.project is None:
            return None
        return self.tasks.run_in_process(
            self.tr("双评价闸门检查"), jobs.assessment_gate, self._folder(),
            on_done=lambda r: QMessageBox.information(
                self, self.tr("双评价闸门"), r["en" if self.lang == "en" else "zh"]))

    def run_checks(self, groups: list[str] | None, title: str) -> TaskHandle | None:
        """质检 / 三区三线 checks in a worker process; a pass/fail list when done."""
        if self.project is None:
            return None

        def done(result: dict[str, Any]) -> None:
            en = self.lang == "en"
            lines = []
            for c in result["checks"]:
                mark = "✗" if c["status"] in ("fail", "error") else (
                    "!" if c["status"] == "warn" else "✓")
                lines.append(self.tr("{0} {1} — {2}（错误 {3}，警告 {4}）").format(
                    mark, c["en"] if en else c["zh"], c["status"] if en else c["status_zh"],
                    c["errors"], c["warnings"]))
            head = (self.tr("通过") if result["passed"] else
                    self.tr("未通过：{0} 项阻断性检查失败").format(len(result["blocking_failures"])))
            self.last_check_result = result
            QMessageBox.information(self, title, head + "\n\n" + "\n".join(lines))
            self.refresh_layers()

        return self.tasks.run_in_process(title, jobs.run_checks, self._folder(), groups,
                                         on_done=done)

    def show_register(self) -> None:
        if CONFLICTS_LAYER not in self.records:
            QMessageBox.information(self, self.tr("差异图斑登记表"),
                                    self.tr("尚未进行冲突检测（分析 → 冲突检测）"))
            return
        self.set_layer_visible(CONFLICTS_LAYER, True)
        self.show_attributes(CONFLICTS_LAYER)

    def export_register(self) -> TaskHandle | None:
        if self.project is None:
            return None
        out = QFileDialog.getExistingDirectory(self, self.tr("导出到文件夹"),
                                               str(self.project.folder / "exports"))
        if not out:
            return None
        return self.tasks.run_in_process(
            self.tr("导出差异图斑登记表"), jobs.export_conflicts, self._folder(), out,
            on_done=lambda r: self.statusBar().showMessage(
                self.tr("已导出：{0}").format("、".join(r.values())), 8000))

    def export_map_image(self, path: str | None = None, scale: float = 2.0) -> TaskHandle | None:
        """Render the current view at ``scale``× the canvas size into a PNG (in a thread)."""
        if self.project is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, self.tr("导出当前地图"), str(self.project.folder / "exports" / "map.png"),
                "PNG (*.png)")
            if not path:
                return None
        v = self.canvas.view()
        view = View(v.cx, v.cy, v.upp / scale, round(v.width * scale), round(v.height * scale))
        specs = [self.canvas.layer(n).spec() for n in self.canvas.visible_layers()]

        def work(task: Any) -> str:
            task.progress(0.1, "")
            img = render_layers(specs, view, lambda: task.token.cancelled)
            if not img.save(path):
                raise OSError(f"could not write {path}")
            return path

        return self.tasks.run_in_thread(
            self.tr("导出地图图片"), work,
            on_done=lambda p: self.statusBar().showMessage(self.tr("已导出：{0}").format(p), 8000))

    # ================================================================== help
    def show_about(self) -> None:
        from multiplan import __version__

        QMessageBox.about(self, self.tr("关于 multiplan"), self.tr(
            "multiplan {0}：县级国土空间规划“多规合一”桌面 GIS。").format(__version__))

    def show_shortcuts(self) -> None:
        rows = [
            ("Ctrl+O", self.tr("打开项目")), ("Ctrl+S", self.tr("保存项目")),
            ("Ctrl+Z", self.tr("撤销")), ("Ctrl+Shift+Z", self.tr("重做")),
            (self.tr("滚轮"), self.tr("以光标为中心缩放")),
            (self.tr("中键拖动 / 空格+左键拖动"), self.tr("平移")),
            ("+ / −", self.tr("放大 / 缩小")), (self.tr("方向键"), self.tr("平移")),
            ("Home", self.tr("缩放至全图")), ("F6", self.tr("打开属性表")),
            ("Ctrl+J", self.tr("缩放至所选")),
            ("F7", self.tr("冲突审查面板")), ("F8", self.tr("两规对比")),
            ("N / Ctrl+]", self.tr("下一个未决图斑")), ("P / Ctrl+[", self.tr("上一个未决图斑")),
        ]
        QMessageBox.information(self, self.tr("快捷键"),
                                "\n".join(f"{k}\t{v}" for k, v in rows))

    def set_language(self, lang: str) -> None:
        settings().setValue("language", lang)
        if lang != self.lang:
            QMessageBox.information(self, self.tr("界面语言"),
                                    self.tr("界面语言将在重新启动后切换。"))
