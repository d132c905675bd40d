"""Undoable changes to the map document (layer visibility, order, opacity).

These are the edits the desktop app makes today; they mark the project modified, are saved
with 保存项目 (the view state in the project settings), and Ctrl+Z / Ctrl+Shift+Z undo and
redo them. Feature edits will come as core commands (design principle 6) and share the same
Undo/Redo actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QUndoCommand


class MapDocument(Protocol):
    def apply_visibility(self, name: str, visible: bool) -> None: ...
    def apply_order(self, order: Sequence[tuple[str, Sequence[str]]]) -> None: ...
    def apply_opacity(self, name: str, opacity: float) -> None: ...
    def layer_title(self, name: str) -> str: ...


class SetVisibility(QUndoCommand):
    def __init__(self, doc: MapDocument, changes: Sequence[tuple[str, bool]],
                 before: dict[str, bool]) -> None:
        self.doc = doc
        self.changes = list(changes)
        self.before = dict(before)
        if len(self.changes) == 1:
            name, vis = self.changes[0]
            text = (QCoreApplication.translate("view_commands", "显示 {0}") if vis else
                    QCoreApplication.translate("view_commands", "隐藏 {0}")).format(
                doc.layer_title(name))
        else:
            text = QCoreApplication.translate("view_commands", "切换 {0} 个图层的显示").format(
                len(self.changes))
        super().__init__(text)

    def redo(self) -> None:
        for name, vis in self.changes:
            self.doc.apply_visibility(name, vis)

    def undo(self) -> None:
        for name, _ in self.changes:
            self.doc.apply_visibility(name, self.before.get(name, True))


class Reorder(QUndoCommand):
    def __init__(self, doc: MapDocument, old: Any, new: Any) -> None:
        super().__init__(QCoreApplication.translate("view_commands", "调整图层顺序"))
        self.doc, self.old, self.new = doc, old, new

    def redo(self) -> None:
        self.doc.apply_order(self.new)

    def undo(self) -> None:
        self.doc.apply_order(self.old)


class SetOpacity(QUndoCommand):
    def __init__(self, doc: MapDocument, name: str, old: float, new: float) -> None:
        super().__init__(QCoreApplication.translate("view_commands", "{0} 不透明度").format(
            doc.layer_title(name)))
        self.doc, self.name, self.old, self.new = doc, name, old, new

    def redo(self) -> None:
        self.doc.apply_opacity(self.name, self.new)

    def undo(self) -> None:
        self.doc.apply_opacity(self.name, self.old)
