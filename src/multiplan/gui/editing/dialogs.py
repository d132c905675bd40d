"""Dialogs of the editing tools: attribute form (single and batch) with a 用地用海 code
picker, the merge attribute chooser, and the unlock-reason prompt."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from multiplan.core.commands import EditRefused, Feature
from multiplan.core.editing import DERIVED_COLUMNS, code_domain, search_codes

#: English for the Chinese source strings, used when the app runs in English and the Qt
#: translation has no entry yet.
EN = {
    "编辑属性": "Edit attributes",
    "批量编辑 {0} 个要素的属性": "Batch edit the attributes of {0} features",
    "（多个值，留空不改）": "(several values; leave empty to keep)",
    "选择…": "Choose…",
    "选择地类代码": "Choose a land-use code",
    "按代码或名称搜索": "Search by code or name",
    "合并要素": "Merge features",
    "合并后保留哪个要素的属性？": "Keep the attributes of which feature?",
    "解锁管控线图层": "Unlock a control-line layer",
    "原因（将记入审计日志）：": "Reason (goes into the audit log):",
}


def tr(text: str, lang: str = "zh") -> str:
    """Qt translation of a Chinese source string, with the English fallback above."""
    out = QCoreApplication.translate("editing", text)
    if lang.startswith("en") and out == text:
        return EN.get(text, text)
    return out


class CodePicker(QDialog):
    """Search the classification tree by code or name and pick a code."""

    def __init__(self, scheme: str, current: str | None = None, lang: str = "zh",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(tr("选择地类代码", lang))
        self.scheme = scheme
        self.search = QLineEdit()
        self.search.setPlaceholderText(tr("按代码或名称搜索", lang))
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["代码", "名称"] if lang == "zh" else ["Code", "Name"])
        items: dict[str, QTreeWidgetItem] = {}
        for e in code_domain(scheme):
            parent_item = items.get(e.parent) if e.parent else None
            item = QTreeWidgetItem([e.code, e.name])
            item.setData(0, Qt.ItemDataRole.UserRole, e.code)
            (parent_item.addChild(item) if parent_item is not None
             else self.tree.addTopLevelItem(item))
            items[e.code] = item
        self._items = items
        self.tree.resizeColumnToContents(0)
        self.search.textChanged.connect(self.filter)
        self.tree.itemDoubleClicked.connect(lambda *_: self.accept())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.search)
        lay.addWidget(self.tree)
        lay.addWidget(buttons)
        self.resize(420, 520)
        if current and current in items:
            self.tree.setCurrentItem(items[current])

    def filter(self, text: str) -> list[str]:
        """Show only the classes matching ``text`` (and their parents); select the first."""
        hits = [e.code for e in search_codes(text, self.scheme, limit=10_000)] if text else None
        keep: set[str] = set()
        for code in hits or []:
            item = self._items[code]
            while item is not None:
                keep.add(item.data(0, Qt.ItemDataRole.UserRole))
                item = item.parent()
        for code, item in self._items.items():
            item.setHidden(hits is not None and code not in keep)
            if hits is not None:
                item.setExpanded(True)
        if hits:
            self.tree.setCurrentItem(self._items[hits[0]])
        return hits or []

    def chosen(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None


class AttributeDialog(QDialog):
    """The attributes of one feature, or of a batch (only the fields given change).

    ``apply(values)`` is called on OK; an :class:`EditRefused` it raises is shown in the
    dialog, which stays open so the value can be corrected.
    """

    def __init__(self, columns: Sequence[str], features: Sequence[Feature], *,
                 code_field: str | None, scheme: str | None,
                 apply: Callable[[dict[str, Any]], None], lang: str = "zh",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lang = lang
        self.features = list(features)
        self.batch = len(self.features) > 1
        self.code_field = code_field
        self.scheme = scheme
        self._apply = apply
        self.setWindowTitle(tr("批量编辑 {0} 个要素的属性", lang).format(len(self.features))
                            if self.batch else f"{tr('编辑属性', lang)} — {self.features[0].fid}")
        form = QFormLayout()
        self.edits: dict[str, QLineEdit] = {}
        self.original: dict[str, str] = {}
        for col in columns:
            if col in DERIVED_COLUMNS[1:]:
                continue  # follows the code field
            edit = QLineEdit()
            values = {self._text(f.attrs.get(col)) for f in self.features}
            text = values.pop() if len(values) == 1 else ""
            if len(values) > 0:
                edit.setPlaceholderText(tr("（多个值，留空不改）", lang))
            edit.setText(text)
            self.original[col] = text
            self.edits[col] = edit
            if col == code_field and scheme:
                row = QWidget()
                h = QHBoxLayout(row)
                h.setContentsMargins(0, 0, 0, 0)
                h.addWidget(edit)
                pick = QPushButton(tr("选择…", lang))
                pick.clicked.connect(self.pick_code)
                h.addWidget(pick)
                form.addRow(col, row)
            else:
                form.addRow(col, edit)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #b00020")
        self.error.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.error)
        lay.addWidget(buttons)

    @staticmethod
    def _text(v: Any) -> str:
        return "" if v is None else str(v)

    def set_value(self, column: str, text: str) -> None:
        self.edits[column].setText(text)

    def pick_code(self) -> None:
        col = self.code_field
        if not col or not self.scheme:
            return
        dlg = CodePicker(self.scheme, self.edits[col].text() or None, self.lang, self)
        if dlg.exec() == QDialog.DialogCode.Accepted and dlg.chosen():
            self.edits[col].setText(dlg.chosen() or "")

    def values(self) -> dict[str, Any]:
        """The changed fields (an emptied field of a single feature becomes NULL)."""
        out: dict[str, Any] = {}
        for col, edit in self.edits.items():
            text = edit.text()
            if text == self.original[col]:
                continue
            if self.batch and text == "":
                continue
            out[col] = text if text != "" else None
        return out

    def accept(self) -> None:
        values = self.values()
        if values:
            try:
                self._apply(values)
            except EditRefused as exc:
                self.error.setText(exc.text(self.lang))
                return
        super().accept()


class MergeDialog(QDialog):
    """Choose the feature whose attributes the merged feature keeps."""

    def __init__(self, features: Sequence[Feature], code_field: str | None,
                 name_field: str | None, lang: str = "zh",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(tr("合并要素", lang))
        self.list = QListWidget()
        for f in features:
            parts = [str(f.fid)]
            for col in (code_field, name_field):
                if col and f.attrs.get(col) is not None:
                    parts.append(str(f.attrs[col]))
            item = QListWidgetItem("  ".join(parts))
            item.setData(Qt.ItemDataRole.UserRole, f.fid)
            self.list.addItem(item)
        self.list.setCurrentRow(0)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(tr("合并后保留哪个要素的属性？", lang)))
        lay.addWidget(self.list)
        lay.addWidget(buttons)

    def choose(self, fid: int) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == fid:
                self.list.setCurrentRow(i)

    def keep(self) -> int:
        return int(self.list.currentItem().data(Qt.ItemDataRole.UserRole))
