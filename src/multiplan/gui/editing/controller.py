"""The editing controller: one :class:`~multiplan.core.editing.EditSession` at a time, its
actions and tools, its commands mirrored into the window's Undo/Redo, and the display of
unsaved edits.

The window's QUndoStack gets one adapter per core command (its text is the command's label,
so the Undo action reads "撤销 移动顶点"); undoing it undoes the core command. Saving or
discarding the edits clears the core stack (as QGIS and ArcGIS Pro do), so the adapters of
that session become obsolete and Qt drops them.

Unsaved edits are drawn at once as outlines, and the layer is redrawn with them in a worker
thread shortly after (the canvas's drawing data is rebuilt from the loaded layer patched
with the session's changes). Saving re-reads the layer through the window.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QUndoCommand
from PySide6.QtWidgets import QDialog, QInputDialog, QMenu, QMessageBox, QToolBar

from multiplan.core.commands import Command, EditRefused, Feature, VertexRef
from multiplan.core.editing import (
    SNAP_PIXELS,
    EditSession,
    discard_journal,
    is_locked,
    lock_reason,
    pending_journals,
)
from multiplan.core.errors import MultiplanError

from .dialogs import AttributeDialog, MergeDialog, tr
from .tools import EditTools

EN = {
    "编辑": "Edit",
    "编辑图层": "Edit layer",
    "保存编辑": "Save edits",
    "放弃编辑": "Discard edits",
    "绘制面": "Draw polygon",
    "顶点工具": "Vertex tool",
    "重塑边界": "Reshape boundary",
    "分割要素": "Split features",
    "合并所选…": "Merge selected…",
    "删除所选": "Delete selected",
    "编辑属性…": "Edit attributes…",
    "复制要素": "Copy features",
    "粘贴要素": "Paste features",
    "捕捉": "Snapping",
    "拓扑编辑": "Topological editing",
    "避免重叠": "Avoid overlap",
    "无法编辑": "Cannot edit",
    "无法保存编辑": "Cannot save the edits",
    "未保存的编辑": "Unsaved edits",
    "恢复未保存的编辑？": "Restore the unsaved edits?",
    "图层 {0} 有未保存的编辑，是否保存？": "Layer {0} has unsaved edits. Save them?",
    "更新编辑显示": "Updating the edited layer",
}


def T(zh: str, lang: str) -> str:
    out = tr(zh, lang)
    return EN.get(zh, out) if lang.startswith("en") and out == zh else out


class _EditUndo(QUndoCommand):
    """A core command in the window's undo stack (done already when pushed)."""

    def __init__(self, ctl: EditingController, cmd: Command) -> None:
        super().__init__(cmd.text(ctl.lang))
        self.ctl = ctl
        self.cmd = cmd
        self.generation = ctl.generation
        self._pushed = False

    def _live(self) -> bool:
        return (self.ctl.session is not None and self.generation == self.ctl.generation
                and not self.isObsolete())

    def redo(self) -> None:
        if not self._pushed:  # QUndoStack.push calls redo: the core already did it
            self._pushed = True
            return
        if self._live():
            self.ctl._core_step("redo", self.cmd)

    def undo(self) -> None:
        if self._live():
            self.ctl._core_step("undo", self.cmd)


class EditingController(QObject):
    sessionChanged = Signal()
    edited = Signal()

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.canvas = window.canvas
        self.lang: str = getattr(window, "lang", "zh")
        self.session: EditSession | None = None
        self.generation = 0
        self.snapping = True
        self.snap_pixels = SNAP_PIXELS
        self.form_after_add = True
        self.clipboard: list[Feature] = []
        self.last_message = ""
        self._adapters: list[_EditUndo] = []
        self._fresh: dict[int, Any] = {}
        self._rebuild_seq = 0
        self._shown_seq = 0
        self._rebuild_timer = QTimer(self)
        self._rebuild_timer.setSingleShot(True)
        self._rebuild_timer.setInterval(200)
        self._rebuild_timer.timeout.connect(self._rebuild_display)
        self.tools = EditTools(self)
        self._build_actions()
        self._build_ui()
        self._update_actions()
        with contextlib.suppress(AttributeError, RuntimeError):
            window.projectLoaded.connect(self._on_project_loaded)
        window.installEventFilter(self)

    # ------------------------------------------------------------------ ui
    def _t(self, zh: str) -> str:
        return T(zh, self.lang)

    def _action(self, zh: str, slot: Callable[[], Any] | None = None, *,
                checkable: bool = False, shortcut: Any = None) -> QAction:
        act = QAction(self._t(zh), self.window)
        act.setCheckable(checkable)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        if slot is not None:
            (act.toggled if checkable else act.triggered).connect(lambda *_: slot())
        return act

    def _build_actions(self) -> None:
        a = self._action
        self.edit_action = a("编辑图层", checkable=True)
        self.edit_action.toggled.connect(self._on_edit_toggled)
        self.save_action = a("保存编辑", self.save_edits)
        self.discard_action = a("放弃编辑", self.discard_edits)
        self.add_action = a("绘制面", lambda: self.set_tool("add"), checkable=True)
        self.vertex_action = a("顶点工具", lambda: self.set_tool("vertex"), checkable=True)
        self.reshape_action = a("重塑边界", lambda: self.set_tool("reshape"), checkable=True)
        self.split_action = a("分割要素", lambda: self.set_tool("split"), checkable=True)
        self.tool_actions = {"add": self.add_action, "vertex": self.vertex_action,
                             "reshape": self.reshape_action, "split": self.split_action}
        group = getattr(self.window, "tool_group", None)
        if not isinstance(group, QActionGroup):
            group = QActionGroup(self.window)
        for act in self.tool_actions.values():
            group.addAction(act)
        for other in group.actions():  # pan / identify / select end the editing tool
            if other not in self.tool_actions.values():
                other.toggled.connect(lambda on, _o=other: on and self.tools.set_tool(None))
        self.merge_action = a("合并所选…", lambda: self.merge_selected())
        self.delete_action = a("删除所选", lambda: self.delete_selected())
        self.attributes_action = a("编辑属性…", lambda: self.edit_attributes())
        self.copy_action = a("复制要素", lambda: self.copy_selected())
        self.paste_action = a("粘贴要素", lambda: self.paste())
        self.snap_action = a("捕捉", checkable=True)
        self.snap_action.setChecked(True)
        self.snap_action.toggled.connect(lambda on: setattr(self, "snapping", on))
        self.topo_action = a("拓扑编辑", checkable=True)
        self.topo_action.toggled.connect(self._set_topological)
        self.avoid_action = a("避免重叠", checkable=True)
        self.avoid_action.toggled.connect(self._set_avoid_overlap)
        self.session_actions = [self.save_action, self.discard_action, *self.tool_actions.values(),
                                self.merge_action, self.delete_action, self.attributes_action,
                                self.paste_action, self.topo_action, self.avoid_action]

    def _build_ui(self) -> None:
        tb = QToolBar(self._t("编辑"), self.window)
        tb.setObjectName("editing_toolbar")
        tb.addActions([self.edit_action, self.save_action, self.discard_action])
        tb.addSeparator()
        tb.addActions(list(self.tool_actions.values()))
        tb.addSeparator()
        tb.addActions([self.merge_action, self.delete_action, self.attributes_action,
                       self.copy_action, self.paste_action])
        tb.addSeparator()
        tb.addActions([self.snap_action, self.topo_action, self.avoid_action])
        self.window.addToolBar(tb)
        self.toolbar = tb
        # where desktop GIS users look for it: right after 项目 (QGIS: Project, Edit, …)
        bar = self.window.menuBar()
        before = getattr(self.window, "layer_menu", None)
        menu = QMenu(self._t("编辑"), bar)
        if before is not None:
            bar.insertMenu(before.menuAction(), menu)
        else:
            bar.addMenu(menu)
        menu.addActions([self.edit_action, self.save_action, self.discard_action])
        menu.addSeparator()
        menu.addActions(list(self.tool_actions.values()))
        menu.addSeparator()
        menu.addActions([self.merge_action, self.delete_action, self.attributes_action,
                         self.copy_action, self.paste_action])
        menu.addSeparator()
        menu.addActions([self.snap_action, self.topo_action, self.avoid_action])
        self.menu = menu

    def _update_actions(self) -> None:
        on = self.session is not None
        for act in self.session_actions:
            act.setEnabled(on)
        self.edit_action.blockSignals(True)
        self.edit_action.setChecked(on)
        self.edit_action.blockSignals(False)

    def message(self, zh: str, en: str) -> None:
        """A short status message (refused edits and hints)."""
        text = zh if self.lang == "zh" else en
        self.last_message = text
        with contextlib.suppress(AttributeError, RuntimeError):
            self.window.statusBar().showMessage(text, 8000)

    def _error(self, title_zh: str, exc: BaseException) -> None:
        text = exc.text(self.lang) if isinstance(exc, MultiplanError) else f"{exc}"
        self.last_message = text
        self.window.show_error(self._t(title_zh), text)

    # ------------------------------------------------------------------ session
    def current_layer(self) -> str | None:
        tree = getattr(self.window, "layer_tree", None)
        name = tree.current_layer() if tree is not None else None
        return name or self.canvas.active_layer

    def _on_edit_toggled(self, on: bool) -> None:
        if on and self.session is None:
            if not self.start_editing():
                self._update_actions()
        elif not on and self.session is not None and not self.stop_editing():
            self._update_actions()

    def start_editing(self, layer: str | None = None, *, unlock_reason: str | None = None,
                      offer_restore: bool = True) -> bool:
        """Open an editing session on ``layer`` (default: the current layer). A locked layer
        asks for an unlock reason; unsaved edits of the layer left by a crash are offered."""
        project = self.window.project
        name = layer or self.current_layer()
        if project is None or not name:
            self.message("请先在图层列表中选择要编辑的矢量图层",
                         "choose the vector layer to edit in the layer list first")
            return False
        if self.session is not None:
            if self.session.layer == name:
                return True
            if not self.stop_editing():
                return False
        try:
            if is_locked(project, name) and unlock_reason is None:
                why = lock_reason(project, name)
                text = (why.zh if self.lang == "zh" else why.en) if why else ""
                reason, ok = QInputDialog.getText(
                    self.window, tr("解锁管控线图层", self.lang),
                    f"{text}\n\n{tr('原因（将记入审计日志）：', self.lang)}")
                if not ok:
                    return False
                unlock_reason = reason
            journal = None
            if offer_restore:
                journal = next((j for j in pending_journals(project) if j.layer == name), None)
            kw = {"unlock_reason": unlock_reason,
                  "topological": self.topo_action.isChecked()}
            if journal is not None and self._ask_restore(journal):
                session = EditSession.restore(project, journal, **kw)
            else:
                if journal is not None:
                    discard_journal(project, journal)
                session = EditSession.open(project, name, **kw)
        except (MultiplanError, ValueError) as exc:
            self._error("无法编辑", exc)
            return False
        self.session = session
        self.generation += 1
        if self.avoid_action.isChecked():
            self._set_avoid_overlap(True)
        self.canvas.active_layer = name
        self._update_actions()
        self.sessionChanged.emit()
        if session.stack.index:
            for cmd in session.stack.done():
                self._push_adapter(cmd)
            self._schedule_rebuild(session.stack.done())
        return True

    def _ask_restore(self, journal: Any) -> bool:
        """Offer to restore a crashed session's edits: Yes restores, No discards them."""
        answer = QMessageBox.question(
            self.window, self._t("未保存的编辑"),
            f"{journal.describe(self.lang)}\n{self._t('恢复未保存的编辑？')}",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.Yes)
        return answer == QMessageBox.StandardButton.Yes

    def _on_project_loaded(self) -> None:
        project = self.window.project
        if self.session is not None and self.session.project.gpkg != getattr(project, "gpkg",
                                                                               None):
            self._end_session()
        if project is None or self.session is not None:
            return
        journals = pending_journals(project)
        if journals:
            self.start_editing(journals[0].layer)

    def stop_editing(self) -> bool:
        """End the session; unsaved edits ask Save / Discard / Cancel."""
        s = self.session
        if s is None:
            return True
        if s.dirty:
            answer = QMessageBox.question(
                self.window, self._t("未保存的编辑"),
                self._t("图层 {0} 有未保存的编辑，是否保存？").format(s.layer),
                QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
            if answer == QMessageBox.StandardButton.Cancel:
                return False
            if answer == QMessageBox.StandardButton.Save:
                if not self.save_edits():
                    return False
            else:
                self.discard_edits()
        self._end_session()
        return True

    def _end_session(self) -> None:
        s = self.session
        if s is None:
            return
        self._retire_adapters()
        self.tools.set_tool(None)
        for act in self.tool_actions.values():
            act.setChecked(False)
        s.close()  # unsaved edits stay in the journal (offered on the next open)
        self.session = None
        self._fresh.clear()
        self._update_actions()
        self.sessionChanged.emit()
        self.tools.overlay.update()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        """Before the window closes: unsaved edits ask Save / Discard / Cancel."""
        if (obj is self.window and event.type() == QEvent.Type.Close
                and self.session is not None and not self.stop_editing()):
            event.ignore()
            return True
        return False

    # ------------------------------------------------------------------ options
    def set_tool(self, tool: str | None) -> None:
        if tool is not None and self.session is None and not self.start_editing():
            for act in self.tool_actions.values():
                act.setChecked(False)
            return
        self.tools.set_tool(tool)
        if tool is not None and not self.tool_actions[tool].isChecked():
            self.tool_actions[tool].setChecked(True)

    def _set_topological(self, on: bool) -> None:
        if self.session is not None:
            self.session.options.topological = on

    def _set_avoid_overlap(self, on: bool) -> None:
        if self.session is None:
            return
        try:
            self.session.set_avoid_overlap("locked" if on else None, neighbours=on)
        except MultiplanError as exc:
            self._error("无法编辑", exc)

    def reference_layers(self) -> list[str]:
        """Visible vector layers other than the edited one: snapping targets."""
        out = []
        for name in self.canvas.layer_names():
            if self.session is not None and name == self.session.layer:
                continue
            with contextlib.suppress(KeyError):
                lyr = self.canvas.layer(name)
                if lyr.visible and lyr.is_vector:
                    out.append(name)
        return out

    # ------------------------------------------------------------------ edits
    def run(self, make: Callable[[EditSession], Command | None]) -> Command | None:
        """Do an edit through the session; a refusal becomes a status message."""
        s = self.session
        if s is None:
            self.message("请先开始编辑图层", "start editing a layer first")
            return None
        try:
            cmd = make(s)
        except EditRefused as exc:
            self.message(exc.zh, exc.en)
            return None
        except MultiplanError as exc:
            self._error("无法编辑", exc)
            return None
        if cmd is None:
            return None
        self._push_adapter(cmd)
        if cmd.warnings:
            w = cmd.warnings[0]
            self.message(w.zh, w.en)
        self._schedule_rebuild([cmd])
        self.edited.emit()
        return cmd

    def _push_adapter(self, cmd: Command) -> None:
        adapter = _EditUndo(self, cmd)
        self._adapters.append(adapter)
        self.window.undo_stack.push(adapter)

    def _core_step(self, step: str, cmd: Command) -> None:
        s = self.session
        assert s is not None
        stack = s.stack
        expected = stack.commands[stack.index - 1] if step == "undo" else (
            stack.commands[stack.index] if stack.can_redo else None)
        if expected is not cmd:  # out of step (should not happen): leave the core alone
            return
        try:
            stack.undo() if step == "undo" else stack.redo()
        except MultiplanError as exc:
            self._error("无法编辑", exc)
            return
        self._schedule_rebuild([cmd])
        self.edited.emit()

    def _retire_adapters(self) -> None:
        """The core stack was cleared: make this session's adapters obsolete and drop
        those on top of the window's stack."""
        for adapter in self._adapters:
            adapter.setObsolete(True)
        self._adapters.clear()
        self.generation += 1
        stack = self.window.undo_stack
        while stack.canUndo() and isinstance(stack.command(stack.index() - 1), _EditUndo):
            stack.undo()  # Qt removes an obsolete command without calling its undo()

    def add_polygon(self, polygon: Any) -> Command | None:
        cmd = self.run(lambda s: s.add_polygon(polygon))
        if cmd is not None and self.form_after_add:
            self.edit_attributes([cmd.fid])  # type: ignore[attr-defined]
        return cmd

    def move_vertex(self, fid: int, ref: VertexRef, to: tuple[float, float]) -> Command | None:
        return self.run(lambda s: s.move_vertex(fid, ref, to))

    def add_vertex(self, fid: int, seg: VertexRef, at: tuple[float, float]) -> Command | None:
        return self.run(lambda s: s.add_vertex(fid, seg, at))

    def delete_vertex(self, fid: int, ref: VertexRef) -> Command | None:
        return self.run(lambda s: s.delete_vertex(fid, ref))

    def selected(self) -> list[int]:
        if self.session is None or not self.canvas.has_layer(self.session.layer):
            return []
        return [int(f) for f in self.canvas.selected_fids(self.session.layer)
                if self.session.feature(int(f)) is not None]

    def reshape_line(self, line: Any) -> Command | None:
        """Reshape the selected features, or every feature whose boundary the line
        crosses, as one undo step."""
        s = self.session
        if s is None:
            return None
        targets = self.selected() or [f for f in s.buffer.candidates(line.bounds)
                                      if s.feature(f).geometry.boundary.intersects(line)]
        done: list[Command] = []

        def make(sess: EditSession) -> Command | None:
            last: EditRefused | None = None
            with sess.stack.macro("重塑边界", "Reshape boundary"):
                for fid in targets:
                    try:
                        done.append(sess.reshape(fid, line))
                    except EditRefused as exc:
                        last = exc
                if not done:
                    raise last or EditRefused("reshape.no_effect", "重塑线没有改变任何要素",
                                              "the reshape line changed no feature")
            return sess.stack.commands[sess.stack.index - 1]

        return self.run(make)

    def split_line(self, line: Any) -> Command | None:
        sel = self.selected()
        return self.run(lambda s: s.split(line, sel or None))

    def delete_selected(self) -> Command | None:
        sel = self.selected()
        if not sel:
            self.message("没有选中的要素", "no feature is selected")
            return None
        return self.run(lambda s: s.delete(sel))

    def merge_selected(self, keep: int | None = None) -> Command | None:
        s = self.session
        sel = self.selected()
        if s is None or len(sel) < 2:
            self.message("合并至少需要选择两个要素", "select at least two features to merge")
            return None
        if keep is None:
            dlg = MergeDialog([s.feature(f) for f in sel], s.record.code_field,
                              s.record.name_field, self.lang, self.window)
            self.last_dialog = dlg
            if dlg.exec() != QDialog.DialogCode.Accepted:
                return None
            keep = dlg.keep()
        cmd = self.run(lambda sess: sess.merge(sel, keep))
        if cmd is not None:
            self.canvas.set_selection(s.layer, [keep], emit=False)
        return cmd

    def edit_attributes(self, fids: Sequence[int] | None = None) -> bool:
        """The attribute form for one feature, or the batch form for several."""
        s = self.session
        fids = list(fids) if fids is not None else self.selected()
        if s is None or not fids:
            self.message("没有选中的要素", "no feature is selected")
            return False
        feats = [s.feature(f) for f in fids]
        dlg = AttributeDialog(s.schema.names, feats, code_field=s.record.code_field,
                              scheme=s.record.scheme, lang=self.lang, parent=self.window,
                              apply=lambda values: self._apply_attributes(fids, values))
        self.last_dialog = dlg
        return dlg.exec() == QDialog.DialogCode.Accepted

    def _apply_attributes(self, fids: list[int], values: dict[str, Any]) -> None:
        s = self.session
        assert s is not None
        cmd = s.set_attributes(fids, values)  # EditRefused propagates to the form
        self._push_adapter(cmd)
        self._schedule_rebuild([cmd])
        self.edited.emit()

    def copy_selected(self) -> int:
        """Copy the selected features of the edited layer (or of the active layer)."""
        s = self.session
        if s is not None and self.selected():
            self.clipboard = s.copy(self.selected())
        else:
            name = self.canvas.active_layer
            if not name or not self.canvas.has_layer(name):
                return 0
            fids = self.canvas.selected_fids(name)
            data = self.canvas.layer(name).data
            pos = data.positions_of(fids)
            loaded = self.window.loaded.get(name)
            attrs = loaded.attributes if loaded is not None else None
            self.clipboard = [
                Feature(int(f), data.geoms[p],
                        {} if attrs is None else {k: (None if pd.isna(v) else v)
                                                  for k, v in attrs.loc[int(f)].items()})
                for f, p in zip(fids, pos, strict=True)]
        self.message(f"已复制 {len(self.clipboard)} 个要素",
                     f"{len(self.clipboard)} features copied")
        return len(self.clipboard)

    def paste(self) -> Command | None:
        if not self.clipboard:
            self.message("剪贴板中没有要素", "the clipboard holds no features")
            return None
        feats = list(self.clipboard)
        return self.run(lambda s: s.paste(feats))

    # ------------------------------------------------------------------ save / discard
    def save_edits(self) -> bool:
        s = self.session
        if s is None:
            return True
        try:
            result = s.save()
        except MultiplanError as exc:
            self._error("无法保存编辑", exc)
            return False
        self._retire_adapters()
        self._fresh.clear()
        self.message(f"已保存：新增 {len(result.added)}，修改 {len(result.changed)}，删除 "
                     f"{len(result.deleted)} 个要素",
                     f"saved: {len(result.added)} added, {len(result.changed)} changed, "
                     f"{len(result.deleted)} deleted")
        with contextlib.suppress(AttributeError, RuntimeError):
            self.window.refresh_layers(reload={s.layer})
        self.last_save = result
        return True

    def discard_edits(self) -> None:
        s = self.session
        if s is None:
            return
        s.discard()
        self._retire_adapters()
        self._fresh.clear()
        self._schedule_rebuild([])

    # ------------------------------------------------------------------ display
    def fresh_geometries(self) -> list[Any]:
        return [g for g in self._fresh.values() if g is not None]

    def _schedule_rebuild(self, cmds: Sequence[Command]) -> None:
        s = self.session
        if s is None:
            return
        for cmd in cmds:
            for c in cmd.changes or []:
                if c.geometry_changed:
                    f = s.feature(c.fid)
                    self._fresh[c.fid] = f.geometry if f is not None else None
        self._rebuild_seq += 1  # a redraw started before this edit is out of date
        self.tools.overlay.update()
        self._rebuild_timer.start()

    def display_current(self) -> bool:
        """True when the canvas shows the edited layer with every edit so far."""
        return not self._rebuild_timer.isActive() and self._shown_seq == self._rebuild_seq

    def _rebuild_display(self) -> None:
        """Redraw the edited layer with the unsaved edits (drawing data built in a thread)."""
        s = self.session
        name = s.layer if s is not None else None
        loaded = self.window.loaded.get(name) if name else None
        if s is None or loaded is None or loaded.attributes is None:
            self._shown_seq = self._rebuild_seq  # nothing drawn to update
            return
        pending = s.buffer.pending()
        touched = pending["changed"] + pending["deleted"]
        base = loaded.data
        keep = ~np.isin(base.fids, np.asarray(touched, dtype=np.int64))
        new_fids = pending["changed"] + pending["added"]
        feats = [s.feature(f) for f in new_fids]
        geoms = np.concatenate([base.geoms[keep],
                                np.array([f.geometry for f in feats], dtype=object)])
        fids = np.concatenate([base.fids[keep], np.asarray(new_fids, dtype=np.int64)])
        extra = pd.DataFrame([dict(f.attrs) for f in feats],
                             index=pd.Index(new_fids, name=loaded.attributes.index.name))
        attrs = pd.concat([loaded.attributes[keep], extra.reindex(
            columns=loaded.attributes.columns)]) if len(extra) else loaded.attributes[keep]
        rec = loaded.record
        seq = self._rebuild_seq

        def work(task: Any) -> Any:
            from ..map_canvas.vector import VectorData
            from ..styles import classify

            classes = classify(rec, attrs)
            return VectorData.build(geoms, fids, classes.index, check=task.check), classes

        self.window.tasks.run_in_thread(self._t("更新编辑显示"), work, transient=True,
                                        on_done=lambda res: self._show_rebuilt(seq, name, res))

    def _show_rebuilt(self, seq: int, name: str, result: Any) -> None:
        if seq != self._rebuild_seq or self.session is None or self.session.layer != name \
                or not self.canvas.has_layer(name):
            return
        from ..styles import style_for

        data, classes = result
        old = self.canvas.layer(name)
        order = self.canvas.layer_names()
        selected = self.canvas.selected_fids(name)
        style = style_for(self.session.record, classes).copy(opacity=old.style.opacity)
        self.canvas.add_layer(name, data, style, classes.palette, visible=old.visible,
                              settle=0)
        self.canvas.set_order(order)
        keep = [f for f in selected if self.session.feature(int(f)) is not None]
        if keep:
            self.canvas.set_selection(name, keep, emit=False)
        self._fresh.clear()
        self._shown_seq = seq
        self.tools.overlay.update()
