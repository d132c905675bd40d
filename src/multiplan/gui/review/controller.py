"""The review controller: the 审查 panel and comparison docks, review mode, the decision and
precedence calls into :mod:`multiplan.core.review`, and the workflow status dialog.

Review mode reopens the project with ``Project.open(folder, mode="review", user=NAME)``: the
core refuses every plan-changing write; the window disables the editing tools and the
layer-changing actions and shows a banner "评审模式（只读）". Decisions and comments are
still allowed.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from typing import Any

import pandas as pd
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QUndoCommand
from PySide6.QtWidgets import QDockWidget, QInputDialog, QLabel, QToolBar

from multiplan.core.errors import MultiplanError

from ..styles import CONFLICTS_LAYER
from .comments import CommentPins, comments_of
from .compare import ComparisonView
from .items import ReviewData, load_items
from .panel import ReviewPanel

# Window actions that change the plan layers or the project's data; off in review mode.
WRITING_ACTIONS = ("import_action", "conflicts_action", "merged_action", "assessment_action",
                   "redlines_action", "qa_action", "all_checks_action")
# Editing controller actions (gui/editing) switched off in review mode.
EDITING_ACTIONS = ("edit_action", "save_action", "discard_action", "add_action",
                   "vertex_action", "reshape_action", "split_action", "merge_action",
                   "delete_action", "attributes_action", "paste_action")


def parcel_state(project: Any, edit: Any) -> str | None:
    """A fingerprint of the features a precedence edit touched, as stored in the file."""
    layer = getattr(edit, "layer", None)
    if project is None or not layer:
        return None
    fids = sorted({int(edit.fid), *map(int, getattr(edit, "changed_fids", []) or []),
                   *map(int, getattr(edit, "new_fids", []) or [])})
    h = hashlib.sha256()
    with contextlib.closing(sqlite3.connect(f"file:{project.gpkg}?mode=ro", uri=True)) as c:
        rows = c.execute(f'SELECT * FROM "{layer}" WHERE "fid" IN '
                         f'({", ".join("?" for _ in fids)}) ORDER BY "fid"', fids).fetchall()
    for row in rows:
        h.update(repr(row).encode("utf-8"))
    return h.hexdigest()


class _PrecedenceUndo(QUndoCommand):
    """An applied "adjust by precedence" edit in the window's undo stack. It is done when
    pushed; undo calls the core edit's ``undo()`` (the reverse edit, saved, and the item's
    previous decision restored); redo applies the precedence again."""

    def __init__(self, ctl: ReviewController, edit: Any, item_id: str, comment: str,
                 text: str) -> None:
        super().__init__(text)
        self.ctl = ctl
        self.edit = edit
        self.item_id = item_id
        self.comment = comment
        self._pushed = False
        self.state = parcel_state(ctl.project, edit)

    def redo(self) -> None:
        if not self._pushed:
            self._pushed = True
            return
        edit = self.ctl._apply(self.item_id, self.comment)
        if edit is not None:
            self.edit = edit
            self.state = parcel_state(self.ctl.project, edit)
            self.ctl._after_precedence(edit, self.item_id)

    def undo(self) -> None:
        if parcel_state(self.ctl.project, self.edit) != self.state:
            # the parcels were edited again since (editing tools, another session): taking
            # the adjustment back now would overwrite that work; Qt drops the entry
            self.setObsolete(True)
            self.ctl.undo_failed(None)
            return
        try:
            self.edit.undo()
        except MultiplanError as exc:
            self.ctl.undo_failed(exc)
            return
        self.ctl._after_precedence(self.edit, self.item_id)


class ReviewController(QObject):
    itemsLoaded = Signal()
    decided = Signal(str, str)  # item id, status

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.lang: str = getattr(window, "lang", "zh")
        self.panel = ReviewPanel(self.lang)
        self.compare = ComparisonView(window)
        self.loading = False
        self.load_handle: Any = None
        self.last_message = ""
        self.workflow_dialog: Any = None
        self._pending_focus: int | None = None
        self.pins = CommentPins(window.canvas)
        self._build_docks()
        self._build_actions()
        self._build_banner()
        p = self.panel
        p.itemSelected.connect(self.focus_item)
        p.runDetection.connect(lambda: window.run_conflicts())
        p.reloadRequested.connect(self.reload)
        p.compareToggled.connect(self.set_comparison)
        p.form.saveRequested.connect(self.save_decision)
        p.form.applyRequested.connect(self.apply_precedence)
        with contextlib.suppress(AttributeError, RuntimeError):
            window.tasks.taskFinished.connect(self._on_task_finished)

    # ------------------------------------------------------------------ ui
    def _build_docks(self) -> None:
        w = self.window
        self.dock = QDockWidget(self.tr("审查"), w)
        self.dock.setObjectName("review_dock")
        self.dock.setWidget(self.panel)
        w.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.compare_dock = QDockWidget(self.tr("两规对比"), w)
        self.compare_dock.setObjectName("review_compare_dock")
        self.compare_dock.setWidget(self.compare)
        w.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.compare_dock)
        self.dock.hide()
        self.compare_dock.hide()
        self._placed: set[str] = set()
        # open/closed (the toggle-view action), not "its tab is in front" (visibilityChanged)
        self.dock.toggleViewAction().toggled.connect(self._on_dock_visible)
        self.compare_dock.toggleViewAction().toggled.connect(
            lambda on: self.panel.compare_button.setChecked(on) if not self._closing() else None)

    def _closing(self) -> bool:
        try:
            return not self.window.isVisible()
        except RuntimeError:  # the window is being destroyed
            return True

    def _build_actions(self) -> None:
        w = self.window

        def act(text: str, slot: Any, shortcut: Any = None, checkable: bool = False) -> QAction:
            a = QAction(text, w)
            a.setCheckable(checkable)
            if shortcut is not None:
                a.setShortcut(QKeySequence(shortcut))
            a.triggered.connect(slot)
            return a

        self.panel_action = act(self.tr("冲突审查面板"), lambda on: self.show_panel(on),
                                "F7", checkable=True)
        self.next_action = act(self.tr("下一个未决图斑"), lambda: self.panel.go_undecided(1),
                               "Ctrl+]")
        self.prev_action = act(self.tr("上一个未决图斑"), lambda: self.panel.go_undecided(-1),
                               "Ctrl+[")
        self.compare_action = act(self.tr("两规对比"), lambda on: self.set_comparison(on),
                                  "F8", checkable=True)
        self.review_mode_action = act(self.tr("进入评审模式…"), lambda: self.enter_review_mode())
        self.leave_review_action = act(self.tr("退出评审模式"), lambda: self.leave_review_mode())
        self.workflow_action = act(self.tr("规划流程状态…"), lambda: self.show_workflow())
        self.export_action = act(self.tr("导出评议决定登记表（XLSX/CSV）…"),
                                 lambda: self.export_decisions())
        self.import_comments_action = act(self.tr("导入公众意见（CSV）…"),
                                          lambda: self.import_comments())
        self.pins_action = act(self.tr("在地图上显示公众意见"),
                               lambda on: self._show_pins(on), checkable=True)
        self.pins_action.setChecked(True)
        self.project_actions = [self.panel_action, self.next_action, self.prev_action,
                                self.compare_action, self.review_mode_action,
                                self.leave_review_action, self.workflow_action,
                                self.export_action, self.import_comments_action,
                                self.pins_action]
        menu = getattr(w, "review_menu", None)
        if menu is not None:
            first = menu.actions()[0] if menu.actions() else None
            for a in (self.panel_action, self.next_action, self.prev_action,
                      self.compare_action):
                menu.insertAction(first, a)
            menu.insertSeparator(first)
            menu.addSeparator()
            menu.addAction(self.export_action)
            menu.addSeparator()
            menu.addActions([self.import_comments_action, self.pins_action])
            menu.addSeparator()
            menu.addActions([self.review_mode_action, self.leave_review_action])
            menu.addSeparator()
            menu.addAction(self.workflow_action)
        for a in self.project_actions:
            a.setEnabled(False)

    def _build_banner(self) -> None:
        w = self.window
        self.banner = QToolBar(self.tr("评审模式"), w)
        self.banner.setObjectName("review_banner")
        self.banner.setMovable(False)
        self.banner_label = QLabel()
        self.banner_label.setStyleSheet(
            "QLabel { background: #b71c1c; color: white; font-weight: bold; padding: 3px 10px; }")
        self.banner.addWidget(self.banner_label)
        self.banner.addAction(self.leave_review_action)
        self.banner.hide()
        self._banner_placed = False  # placed on first use: the edit-mode layout stays as it was
        self.mode_label = QLabel("")
        self.mode_label.setStyleSheet("QLabel { color: #b71c1c; font-weight: bold; }")
        w.statusBar().addPermanentWidget(self.mode_label)
        self.mode_label.hide()

    # ------------------------------------------------------------------ project
    @property
    def project(self) -> Any:
        return self.window.project

    @property
    def review_mode(self) -> bool:
        return getattr(self.project, "mode", "edit") == "review"

    def user(self) -> str | None:
        p = self.project
        if p is None:
            return None
        return getattr(p, "user", None) or getattr(p, "actor", None)

    def project_changed(self) -> None:
        """The window opened (or closed) a project: apply its mode, reload the items."""
        has = self.project is not None
        for a in self.project_actions:
            a.setEnabled(has)
        self.compare.show_hint()
        self._pending_focus = None
        if not has:
            self.pins.set_comments(None)
            self._show_pins(self.pins_action.isChecked())
            self.panel.set_data(None)
            self.apply_mode()
            return
        self.apply_mode()
        # the editing tools are installed after the window opened its first project:
        # apply the mode once more when the event loop runs
        QTimer.singleShot(0, self.apply_mode)
        if self.review_mode:
            self.show_panel(True)
        warnings = getattr(self.project, "warnings", None) or []
        if warnings:  # e.g. a review-mode user on neither list: may look, not decide
            w = warnings[-1]
            self.window.statusBar().showMessage(w.text(self.lang) if hasattr(w, "text")
                                                else str(w), 15000)
        self.reload()

    def apply_mode(self) -> None:
        w = self.window
        review = self.project is not None and self.review_mode
        for name in WRITING_ACTIONS:
            a = getattr(w, name, None)
            if a is not None and self.project is not None:
                a.setEnabled(not review)
        editing = getattr(w, "editing", None)
        if editing is not None:
            if review and getattr(editing, "session", None) is not None:
                with contextlib.suppress(Exception):
                    editing.stop_editing()
            for name in EDITING_ACTIONS:
                a = getattr(editing, name, None)
                if a is None:
                    continue
                if review:
                    a.setEnabled(False)
                elif name == "edit_action":
                    a.setEnabled(True)
            if not review:
                with contextlib.suppress(Exception):
                    editing._update_actions()
            tb = getattr(editing, "toolbar", None)
            if tb is not None:
                tb.setEnabled(not review)
        self.review_mode_action.setEnabled(self.project is not None and not review)
        self.leave_review_action.setEnabled(review)
        user = self.user() or ""
        can = True
        if self.project is not None:
            fn = getattr(self.project, "can_decide", None)
            with contextlib.suppress(Exception):
                can = bool(fn()) if callable(fn) else True
        if review:
            text = self.tr("评审模式（只读）— 评议人：{0}").format(user)
            if not can:
                text += self.tr("（不在评议人名单中：只能查看，不能记录决定）")
            self.banner_label.setText(text)
            self.mode_label.setText(self.tr("评审模式（只读）"))
        if review and not self._banner_placed:
            self._banner_placed = True
            w.addToolBarBreak()
            w.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.banner)
        self.banner.setVisible(review)
        self.mode_label.setVisible(review)
        self.panel.form.set_reviewer(user or None, can_decide=can, can_edit=not review)

    def enter_review_mode(self, user: str | None = None) -> bool:
        """Reopen the project in review mode as ``user`` (asked for when None)."""
        p = self.project
        if p is None:
            return False
        if user is None:
            default = self.user() or ""
            user, ok = QInputDialog.getText(self.window, self.tr("进入评审模式"),
                                            self.tr("评议人姓名："), text=default)
            if not ok or not user.strip():
                return False
        return bool(self.window.open_project(p.folder, mode="review", user=user.strip()))

    def leave_review_mode(self) -> bool:
        p = self.project
        if p is None or not self.review_mode:
            return False
        return bool(self.window.open_project(p.folder, mode="edit", user=getattr(p, "user",
                                                                                  None)))

    # ------------------------------------------------------------------ items
    def reload(self) -> Any:
        """Read the review items in a worker thread."""
        p = self.project
        if p is None:
            return None
        if self.load_handle is not None and self.load_handle.is_running():
            self.load_handle.cancel()
        self.loading = True

        def done(data: ReviewData) -> None:
            if self.project is not p:
                return
            self.loading = False
            self.panel.set_data(data)
            self.pins.set_comments(data.comments)
            self._show_pins(self.pins_action.isChecked())
            self._select_comments(self._current_row())
            self.itemsLoaded.emit()

        def failed(err: dict[str, Any]) -> None:
            self.loading = False
            self.window.show_error(self.tr("无法读取审查清单"),
                                   err.get(self.lang) or err.get("en", ""))

        self.load_handle = self.window.tasks.run_in_thread(
            self.tr("读取审查清单"), lambda task: load_items(p, task), transient=True,
            on_done=done, on_error=failed, on_cancel=lambda: None)
        return self.load_handle

    def _on_task_finished(self, handle: Any) -> None:
        # a conflict run, check or assessment may have rewritten the register
        if handle is self.load_handle or getattr(handle, "transient", False):
            return
        if getattr(handle, "backend", "") == "process" and self.project is not None:
            self.reload()

    # ------------------------------------------------------------------ panel
    def _place(self, dock: QDockWidget, beside: str, orientation: Qt.Orientation,
               size: int) -> None:
        """First showing: a tab beside the window's dock ``beside`` (Qt places a dock
        tabified while hidden off screen, so this waits until it is shown)."""
        w = self.window
        if dock.objectName() in self._placed or dock.isFloating():
            return
        self._placed.add(dock.objectName())
        other = getattr(w, beside, None)
        if other is not None and other.isVisible() and not other.isFloating():
            w.tabifyDockWidget(other, dock)
        dock.show()
        dock.raise_()
        w.resizeDocks([dock], [size], orientation)

    def show_panel(self, on: bool = True) -> None:
        w = self.window
        if on:
            # the right docks take the full height: the item list needs it
            w.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
            self.dock.setVisible(True)
            self._place(self.dock, "tasks_dock", Qt.Orientation.Horizontal, 470)
            self.dock.raise_()
        else:
            self.dock.setVisible(False)
        self.panel_action.setChecked(on)

    def _on_dock_visible(self, on: bool) -> None:
        if not self._closing():
            self.panel_action.setChecked(on)

    def set_comparison(self, on: bool) -> None:
        self.compare_action.setChecked(on)
        if self.panel.compare_button.isChecked() != on:
            self.panel.compare_button.blockSignals(True)
            self.panel.compare_button.setChecked(on)
            self.panel.compare_button.blockSignals(False)
        self.compare_dock.setVisible(on)
        if on:
            self._place(self.compare_dock, "attributes_dock", Qt.Orientation.Vertical, 360)
            self.compare_dock.raise_()
            row = self._current_row()
            if row is not None:
                self._compare(row)

    def _current_row(self) -> int | None:
        r = self.panel.current_view_row()
        return self.panel.model.item_row(r) if 0 <= r < self.panel.model.rowCount() else None

    def focus_item(self, row: int) -> None:
        """Zoom the map to item ``row`` and outline it (the canvas highlight overlay)."""
        data = self.panel.data
        item = data.items.iloc[row]
        canvas = self.window.canvas
        bounds = data.bounds(row)
        if bounds is not None:
            minx, miny, maxx, maxy = bounds
            pad = max(60.0 - (maxx - minx) / 2, 60.0 - (maxy - miny) / 2, 0.0)
            canvas.zoom_to_extent((minx - pad, miny - pad, maxx + pad, maxy + pad), margin=0.15)
        layer, fid = self._highlight_target(item)
        if layer is not None:
            self._pending_focus = row

            def mark(_name: str, r: int = row, ly: str = layer, f: int = fid) -> None:
                if self._pending_focus == r and canvas.has_layer(ly):
                    canvas.set_highlight(ly, [f])

            self.window.request_load([layer], then=mark)
        else:
            canvas.clear_highlight()
        if self.compare_dock.isVisible():
            self._compare(row)
        self._select_comments(row)

    def _select_comments(self, row: int | None) -> None:
        data = self.panel.data
        if row is None or row >= len(data.items):
            self.pins.set_selected([])
            self.panel.form.set_public_comments([])
            return
        hits = comments_of(data.comments, str(data.items.at[row, "item_id"]))
        self.pins.set_selected([str(v) for v in hits.get("comment_id", [])])
        self.panel.form.set_public_comments(
            [(str(r.get("comment_id") or ""), str(r.get("author") or ""),
              str(r.get("text") or "")) for r in hits.to_dict("records")])

    def _show_pins(self, on: bool) -> None:
        self.pins_action.setChecked(on)
        self.pins.setVisible(on and len(self.pins.ids) > 0)
        if self.pins.isVisible():
            self.pins.raise_()

    def import_comments(self, path: str | None = None) -> Any:
        """Import public comments from a CSV file (core ``comments.import_comments``, only
        during 公示中) in a worker thread; the pins and the list follow."""
        p = self.project
        if p is None:
            return None
        if path is None:
            from PySide6.QtWidgets import QFileDialog

            path, _ = QFileDialog.getOpenFileName(self.window, self.tr("导入公众意见"),
                                                  str(p.folder), "CSV (*.csv *.txt)")
            if not path:
                return None
        from multiplan.core import comments

        actor = self.user()

        def work(task: Any) -> int:
            task.progress(0.1, "")
            return len(comments.import_comments(p, path, actor=actor))

        def done(n: int) -> None:
            self.window.statusBar().showMessage(
                self.tr("已导入 {0} 条公众意见").format(n), 8000)
            self.reload()

        return self.window.tasks.run_in_thread(
            self.tr("导入公众意见"), work, on_done=done,
            on_error=lambda err: self.window.show_error(
                self.tr("无法导入公众意见"), err.get(self.lang) or err.get("en", "")))

    @staticmethod
    def _highlight_target(item: pd.Series) -> tuple[str | None, int]:
        reg = item.get("register_fid")
        if reg is not None and pd.notna(reg):
            return CONFLICTS_LAYER, int(reg)
        fid = item.get("fid_a")
        if item.get("layer_a") and fid is not None and pd.notna(fid):
            return str(item["layer_a"]), int(fid)
        return None, -1

    def _compare(self, row: int) -> None:
        data = self.panel.data
        self.compare.show_item(data.items.iloc[row], data.bounds(row))

    # ------------------------------------------------------------------ decisions
    def _error(self, title: str, exc: BaseException) -> None:
        text = exc.text(self.lang) if isinstance(exc, MultiplanError) else \
            f"{type(exc).__name__}: {exc}"
        self.last_message = text
        self.window.show_error(title, text)

    def undo_failed(self, exc: BaseException | None) -> None:
        if exc is None:
            text = self.tr("图斑在按上位规划调整之后又被修改过，不能自动撤销；请用编辑工具手工恢复")
            self.last_message = text
            self.window.show_error(self.tr("无法撤销"), text)
            return
        self._error(self.tr("无法撤销"), exc)

    def save_decision(self, item_id: str, status: str, comment: str) -> dict[str, Any] | None:
        """Record a decision (core ``review.decide``) and update its row in place."""
        p = self.project
        if p is None:
            return None
        from multiplan.core import review

        try:
            row = review.decide(p, item_id, status, reviewer=self.user() or "",
                                comment=comment)
        except MultiplanError as exc:
            self._error(self.tr("无法记录评议决定"), exc)
            return None
        self._row_decided(item_id, row)
        self.window.statusBar().showMessage(
            self.tr("已记录：{0} — {1}").format(item_id, row.get("status", status)), 6000)
        return row

    def _row_decided(self, item_id: str, row: dict[str, Any]) -> None:
        r = self.panel.data.row_of(item_id)
        if r is not None:
            self.panel.item_updated(r, status=row.get("status"), reviewer=row.get("reviewer"),
                                    comment=row.get("comment"),
                                    decided_at=row.get("time") or row.get("decided_at"))
        self.decided.emit(item_id, str(row.get("status")))

    def apply_precedence(self, item_id: str, comment: str = "") -> Any:
        """"按上位规划调整并修改": the merged map's class for the piece's parcel, as one
        saved edit (core ``review.apply_precedence``) that the window's Undo (Ctrl+Z) takes
        back; the decision is recorded by the core."""
        if self.project is None:
            return None
        editing = getattr(self.window, "editing", None)
        if editing is not None and getattr(editing, "session", None) is not None:
            self.last_message = self.tr("请先结束正在进行的编辑（编辑 → 编辑图层），再按上位规划调整")
            self.window.show_error(self.tr("无法按上位规划调整"), self.last_message)
            return None
        edit = self._apply(item_id, comment)
        if edit is None:
            return None
        text = self.tr("按上位规划调整 {0}").format(item_id)
        self.window.undo_stack.push(_PrecedenceUndo(self, edit, item_id, comment, text))
        self._after_precedence(edit, item_id)
        for w in getattr(edit, "warnings", []) or []:
            self.window.statusBar().showMessage(str(w), 8000)
        return edit

    def _apply(self, item_id: str, comment: str) -> Any:
        from multiplan.core import review

        try:
            return review.apply_precedence(self.project, item_id, reviewer=self.user() or "",
                                           comment=comment)
        except MultiplanError as exc:
            self._error(self.tr("无法按上位规划调整"), exc)
            return None

    def _after_precedence(self, edit: Any, item_id: str) -> None:
        """After the edit was done or undone: the changed layer is re-read, the row shows
        the item's current decision."""
        layer = getattr(edit, "layer", None)
        self.window.refresh_layers({layer} if layer else None)
        p = self.project
        if p is None:
            return
        with contextlib.suppress(Exception):
            from multiplan.core import review

            dec = review.decisions(p)
            hit = dec[dec["item_id"] == item_id]
            if len(hit):
                self._row_decided(item_id, hit.iloc[-1].to_dict())
            else:
                self._row_decided(item_id, {"status": "待定", "reviewer": None,
                                            "comment": None, "time": None})

    def export_decisions(self, path: str | None = None) -> Any:
        """Write the decision register (core ``review.export_decisions``) to an .xlsx or
        .csv file, in a worker thread."""
        p = self.project
        if p is None:
            return None
        if path is None:
            from PySide6.QtWidgets import QFileDialog

            path, _ = QFileDialog.getSaveFileName(
                self.window, self.tr("导出评议决定登记表"),
                str(p.folder / "exports" / "评议决定登记表.xlsx"),
                "Excel (*.xlsx);;CSV (*.csv)")
            if not path:
                return None
        from multiplan.core import review

        def work(task: Any) -> str:
            task.progress(0.1, "")
            return str(review.export_decisions(p, path))

        return self.window.tasks.run_in_thread(
            self.tr("导出评议决定登记表"), work,
            on_done=lambda out: self.window.statusBar().showMessage(
                self.tr("已导出：{0}").format(out), 8000))

    # ------------------------------------------------------------------ workflow
    def show_workflow(self) -> Any:
        from .workflow_dialog import WorkflowDialog

        if self.project is None:
            return None
        dlg = WorkflowDialog(self.window)
        self.workflow_dialog = dlg
        dlg.show()
        return dlg

    # ------------------------------------------------------------------ shutdown
    def shutdown(self) -> None:
        self.compare.shutdown()

