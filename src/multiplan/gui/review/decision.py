"""The decision form: status, comment, reviewer, Save, and "adjust by precedence and edit"."""

from __future__ import annotations

from typing import Any

import pandas as pd
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QWidget,
)

from .items import STATUS_EN, UNDECIDED, statuses


def _text(v: Any) -> str:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return ""
    return str(v)


class DecisionForm(QGroupBox):
    """Emits :attr:`saveRequested` (item id, status, comment) and :attr:`applyRequested`
    (item id, comment); the review controller does the core calls."""

    saveRequested = Signal(str, str, str)
    applyRequested = Signal(str, str)

    def __init__(self, lang: str = "zh", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lang = lang
        self.setTitle(self.tr("评议决定"))
        self.item_id: str | None = None
        self.summary = QLabel(self.tr("未选择图斑"))
        self.summary.setWordWrap(True)
        self.status = QComboBox()
        for s in statuses():
            self.status.addItem(s if lang != "en" else STATUS_EN.get(s, s), s)
        self.comment = QPlainTextEdit()
        self.comment.setPlaceholderText(self.tr("评议意见（将与决定一起记录）"))
        self.comment.setMaximumHeight(52)
        self.reviewer = QLabel("")
        self.when = QLabel("")
        self.public = QLabel("")
        self.public.setWordWrap(True)
        self.public.setStyleSheet("QLabel { color: #8a4b00; }")
        self.save_button = QPushButton(self.tr("保存决定"))
        self.save_button.setToolTip(self.tr("记录决定、评议人与时间（Ctrl+Enter）"))
        self.apply_button = QPushButton(self.tr("按上位规划调整并修改"))
        self.apply_button.setToolTip(self.tr(
            "将合并一张图中按上位规划确定的地类写入图斑（可撤销，Ctrl+Z）并记录决定"))
        self.save_button.clicked.connect(self._save)
        self.apply_button.clicked.connect(self._apply)
        form = QFormLayout(self)
        form.setContentsMargins(6, 4, 6, 4)
        form.addRow(self.summary)
        form.addRow(self.tr("决定"), self.status)
        form.addRow(self.tr("意见"), self.comment)
        who = QHBoxLayout()
        who.addWidget(self.reviewer, 1)
        who.addWidget(self.when)
        form.addRow(self.tr("评议人"), who)
        form.addRow(self.public)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.apply_button)
        buttons.addStretch(1)
        form.addRow(buttons)
        self.can_decide = True
        self.can_edit = True
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            sc = QShortcut(QKeySequence(keys), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(lambda: self.save_button.isEnabled() and self._save())
        self.set_item(None)

    def set_reviewer(self, name: str | None, can_decide: bool = True,
                     can_edit: bool = True) -> None:
        if not name:
            self.reviewer.setText(self.tr("（未指定，请以 --user 姓名 打开评审模式）"))
        elif not can_decide:
            self.reviewer.setText(self.tr("{0}（不在评议人名单中，不能记录决定）").format(name))
        else:
            self.reviewer.setText(name)
        self.can_decide = bool(name) and can_decide
        self.can_edit = can_edit
        self._update_buttons()

    def set_item(self, item: pd.Series | None) -> None:
        self.item = item
        if item is None:
            self.item_id = None
            self.summary.setText(self.tr("未选择图斑"))
            self.comment.setPlainText("")
            self.when.setText("")
            self._update_buttons()
            return
        self.item_id = str(item["item_id"])
        t = " ".join(v for v in (_text(item.get("type")), _text(item.get("type_name"))) if v)
        area = item.get("area_ha")
        area_s = "" if area is None or pd.isna(area) else self.tr("{0} 公顷").format(
            f"{float(area):,.4f}")
        lines = [f"<b>{self.item_id}</b> {t} · {_text(item.get('severity'))} {area_s}"]
        a, b = _text(item.get("layer_a")), _text(item.get("layer_b"))
        if a or b:
            lines.append(f"{a or '—'} × {b or '—'} · {_text(item.get('township'))}")
        proposed = _text(item.get("proposed_code"))
        if proposed:
            lines.append(self.tr("上位规划地类：{0} {1}（{2}）").format(
                proposed, _text(item.get("proposed_name")), _text(item.get("winner_layer"))))
        msg = _text(item.get("message"))
        if msg:
            lines.append(msg)
        self.summary.setText("<br>".join(lines))
        status = _text(item.get("status")) or UNDECIDED
        i = self.status.findData(status)
        self.status.setCurrentIndex(max(i, 0))
        self.comment.setPlainText(_text(item.get("comment")))
        who, when = _text(item.get("reviewer")), _text(item.get("decided_at"))
        self.when.setText(self.tr("上次：{0} {1}").format(who, when) if when else "")
        self._update_buttons()

    def set_public_comments(self, rows: list[tuple[str, str, str]]) -> None:
        """The public comments (id, author, text) linked to the shown item."""
        if not rows:
            self.public.setText("")
            self.public.hide()
            return
        lines = [self.tr("公众意见 {0} 条：").format(len(rows))]
        for cid, author, text in rows[:3]:
            who = f"（{author}）" if author else ""
            lines.append(f"{cid}{who}：{text}")
        if len(rows) > 3:
            lines.append("…")
        self.public.setText("\n".join(lines))
        self.public.show()

    def _update_buttons(self) -> None:
        has = self.item_id is not None
        self.save_button.setEnabled(has and self.can_decide)
        proposed = has and bool(_text(self.item.get("proposed_code"))) \
            and _text(self.item.get("kind")) in ("conflict", "")
        self.apply_button.setEnabled(proposed and self.can_decide and self.can_edit)

    def chosen_status(self) -> str:
        return str(self.status.currentData())

    def _save(self) -> None:
        if self.item_id is not None:
            self.saveRequested.emit(self.item_id, self.chosen_status(),
                                    self.comment.toPlainText().strip())

    def _apply(self) -> None:
        if self.item_id is not None:
            self.applyRequested.emit(self.item_id, self.comment.toPlainText().strip())
