"""规划流程状态: the plan's workflow state, its version, every gate with ✔/✘ and its reason,
and the button that advances to the next state (refused with the failing gates listed).

Gate checks read the register, the 质检 results and the assessment runs, which can take
longer than a frame, so they run in the window's worker threads; the dialog shows
"正在检查…" meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from PySide6.QtCore import QDate, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from multiplan.core.errors import MultiplanError

HOLDS = QColor(30, 130, 50)
FAILS = QColor(200, 30, 30)


def _states() -> tuple[list[str], dict[str, str]]:
    from multiplan.core import workflow

    return list(workflow.STATES), dict(getattr(workflow, "STATE_EN", {}))


# gate key → (Chinese, English) name of the condition.
GATE_NAMES = {
    "assessment_current": ("双评价为最新", "assessment current"),
    "no_open_conflicts": ("无未决冲突图斑", "no open conflicts"),
    "qa_clean": ("质检阻断项通过", "QA blocking checks clean"),
    "notice_period": ("公示期满 30 日", "public notice period elapsed"),
    "committee_decision": ("评议委员会决定", "committee decision"),
    "congress_record": ("人大常委会审议记录", "people's congress record"),
    "filing_record": ("备案记录", "filing record"),
    "export_allowed": ("允许导出", "export allowed"),
}


def gate_text(gate: Any, lang: str) -> tuple[str, str]:
    """(name, reason) of a gate in ``lang``: the reason is the gate's own text."""
    key = str(getattr(gate, "key", ""))
    names = GATE_NAMES.get(key, (key, key))
    name = names[1] if lang == "en" else names[0]
    reason = getattr(gate, "en" if lang == "en" else "zh", None)
    if not reason:
        detail = getattr(gate, "detail", None)
        reason = json.dumps(detail, ensure_ascii=False, default=str) if detail else ""
    return name, str(reason)


def failing_text(st: Any, lang: str) -> str:
    lines = []
    for g in getattr(st, "gates", []) or []:
        if not getattr(g, "holds", True):
            name, why = gate_text(g, lang)
            lines.append(f"✘ {name}" + (f" — {why}" if why else ""))
    return "\n".join(lines)


class CommitteeDialog(QDialog):
    """The committee's sign-off: outcome, chair, members present, comment."""

    def __init__(self, chair: str, members: list[str], lang: str = "zh",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("记录评议委员会决定"))
        self.outcome = QComboBox()
        with contextlib.suppress(Exception):
            from multiplan.core import review

            for o in review.COMMITTEE_OUTCOMES:
                self.outcome.addItem(review.COMMITTEE_EN.get(o, o) if lang == "en" else o, o)
        self.chair = QLineEdit(chair)
        self.members = QLineEdit("、".join(members))
        self.members.setPlaceholderText(self.tr("参会委员，以顿号或逗号分隔"))
        self.comment = QPlainTextEdit()
        self.comment.setMaximumHeight(70)
        form = QFormLayout(self)
        form.addRow(self.tr("结论"), self.outcome)
        form.addRow(self.tr("主任委员"), self.chair)
        form.addRow(self.tr("参会委员"), self.members)
        form.addRow(self.tr("意见"), self.comment)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        form.addRow(box)

    def values(self) -> dict[str, Any]:
        names = [n.strip() for n in re.split(r"[、,，;；\s]+", self.members.text()) if n.strip()]
        return {"outcome": str(self.outcome.currentData()), "members": names,
                "chair": self.chair.text().strip(), "comment": self.comment.toPlainText().strip()}


class MilestoneDialog(QDialog):
    """A 人大常委会审议 or 备案 record: date and document number."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.date = QDateEdit(QDate.currentDate())
        self.date.setCalendarPopup(True)
        self.date.setDisplayFormat("yyyy-MM-dd")
        self.doc_no = QLineEdit()
        self.doc_no.setPlaceholderText(self.tr("例如 长人常〔2026〕12号"))
        form = QFormLayout(self)
        form.addRow(self.tr("日期"), self.date)
        form.addRow(self.tr("文号"), self.doc_no)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        form.addRow(box)

    def values(self) -> dict[str, str]:
        return {"date": self.date.date().toString("yyyy-MM-dd"),
                "doc_no": self.doc_no.text().strip()}


class WorkflowDialog(QDialog):
    def __init__(self, window: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.window = window
        self.lang = getattr(window, "lang", "zh")
        self.setObjectName("workflow_dialog")
        self.setWindowTitle(self.tr("规划流程状态"))
        self.resize(640, 460)
        self.status: Any = None
        self.last_refusal: str | None = None
        self.handle: Any = None
        self.state_label = QLabel("")
        self.state_label.setTextFormat(Qt.TextFormat.RichText)
        self.state_label.setWordWrap(True)
        self.version_label = QLabel("")
        self.track = QLabel("")
        self.track.setTextFormat(Qt.TextFormat.RichText)
        self.track.setWordWrap(True)
        self.anchor = QLabel("")
        self.anchor.setWordWrap(True)
        self.anchor.setStyleSheet("QLabel { color: #555; }")
        self.gates = QTableWidget(0, 3)
        self.gates.setHorizontalHeaderLabels([self.tr("闸门"), self.tr("状态"), self.tr("原因")])
        self.gates.verticalHeader().setVisible(False)
        self.gates.setWordWrap(True)
        self.gates.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.gates.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.gates.setColumnWidth(0, 170)
        self.gates.setColumnWidth(1, 48)
        self.gates.horizontalHeader().setStretchLastSection(True)
        self.gates.setToolTip(self.tr("双击“无未决冲突图斑”或“质检阻断项通过”，在审查列表中列出相关图斑"))
        self.gates.cellDoubleClicked.connect(lambda row, _col: self.show_items_of(row))
        self.busy = QLabel("")
        self.advance_button = QPushButton(self.tr("推进到下一阶段"))
        self.advance_button.clicked.connect(self.advance)
        self.refresh_button = QPushButton(self.tr("重新检查"))
        self.refresh_button.clicked.connect(self.refresh)
        self.committee_button = QPushButton(self.tr("记录评议委员会决定…"))
        self.committee_button.clicked.connect(lambda: self.ask_committee())
        self.milestone_button = QPushButton(self.tr("登记人大审议/备案…"))
        self.milestone_button.clicked.connect(lambda: self.ask_milestone())
        self.milestone_button.setEnabled(False)
        self.committee_label = QLabel("")
        self.committee_label.setWordWrap(True)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        box.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.state_label)
        lay.addWidget(self.version_label)
        lay.addWidget(self.track)
        lay.addWidget(self.anchor)
        lay.addWidget(self.gates, 1)
        lay.addWidget(self.committee_label)
        lay.addWidget(self.busy)
        row = QHBoxLayout()
        row.addWidget(self.advance_button)
        row.addWidget(self.refresh_button)
        row.addWidget(self.committee_button)
        row.addWidget(self.milestone_button)
        row.addStretch(1)
        row.addWidget(box)
        lay.addLayout(row)
        self.refresh()

    # ------------------------------------------------------------------ helpers
    def _project(self) -> Any:
        return self.window.project

    def next_state(self) -> str | None:
        nxt = getattr(self.status, "next_state", "?")
        if nxt != "?":
            return nxt
        states, _ = _states()
        state = getattr(self.status, "state", None)
        if state not in states:
            return None
        i = states.index(state)
        return states[i + 1] if i + 1 < len(states) else None

    def _state_name(self, s: str | None) -> str:
        if s is None:
            return "—"
        _, en = _states()
        return en.get(s, s) if self.lang == "en" else s

    def _set_busy(self, text: str) -> None:
        self.busy.setText(text)
        self.advance_button.setEnabled(not text and self.next_state() is not None)
        self.refresh_button.setEnabled(not text)

    # ------------------------------------------------------------------ checking
    def refresh(self) -> None:
        """Run the gate checks in a worker thread; the list fills when they finish."""
        project = self._project()
        if project is None:
            return
        from multiplan.core import workflow

        self._set_busy(self.tr("正在检查闸门…"))

        def work(task: Any) -> Any:
            task.progress(0.1, "")
            return workflow.status(project)

        self.handle = self.window.tasks.run_in_thread(
            self.tr("规划流程闸门检查"), work, transient=True, on_done=self.show_status,
            on_error=lambda err: (self._set_busy(""), self.window.show_error(
                self.tr("闸门检查失败"), err.get(self.lang) or err.get("en", ""))))

    def show_status(self, st: Any) -> None:
        self.status = st
        state = getattr(st, "state", None)
        states, _ = _states()
        self.state_label.setText(self.tr("当前阶段：<b>{0}</b>").format(self._state_name(state)))
        version = getattr(st, "version", None) or getattr(st, "plan_version", None)
        self.version_label.setText(self.tr("规划版本：{0}").format(version if version
                                                                 is not None else "—"))
        parts = []
        for s in states:
            name = self._state_name(s)
            parts.append(f"<b><u>{name}</u></b>" if s == state else name)
        self.track.setText(" → ".join(parts))
        gates = list(getattr(st, "gates", []) or [])
        self.gates.setRowCount(len(gates))
        for i, g in enumerate(gates):
            name, why = gate_text(g, self.lang)
            holds = bool(getattr(g, "holds", False))
            cells = [QTableWidgetItem(name), QTableWidgetItem("✔" if holds else "✘"),
                     QTableWidgetItem(why)]
            cells[0].setData(Qt.ItemDataRole.UserRole, getattr(g, "key", name))
            cells[1].setForeground(QBrush(HOLDS if holds else FAILS))
            cells[1].setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            cells[2].setToolTip(why)
            for j, c in enumerate(cells):
                self.gates.setItem(i, j, c)
        self.gates.resizeRowsToContents()
        nxt = self.next_state()
        self.anchor.setText(self._anchor(nxt))
        self._show_committee()
        kind = self.milestone_kind()
        self.milestone_button.setEnabled(kind is not None)
        if kind is not None:
            self.milestone_button.setText(self.tr("登记{0}…").format(self._milestone_name(kind)))
        self.advance_button.setText(
            self.tr("推进到下一阶段：{0}").format(self._state_name(nxt)) if nxt
            else self.tr("已是最后阶段"))
        self._set_busy("")

    def _anchor(self, state: str | None) -> str:
        """The legal anchor of the step into ``state`` (domain.md §8.1)."""
        from multiplan.core import workflow

        anchor = getattr(workflow, "ANCHORS", {}).get(state) if state else None
        if not anchor:
            return ""
        return self.tr("下一阶段的依据：{0}").format(anchor[1] if self.lang == "en" else anchor[0])

    def show_items_of(self, row: int) -> bool:
        """Show what keeps the gate in ``row`` from holding in the review list."""
        item = self.gates.item(row, 0)
        key = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        filters = {"no_open_conflicts": {"severity": "冲突", "status": "undecided",
                                         "slivers": False},
                   "qa_clean": {"severity": "错误"}}.get(key)
        ctl = getattr(self.window, "review", None)
        if filters is None or ctl is None:
            return False
        ctl.show_panel(True)
        panel = ctl.panel
        try:
            panel.set_filters(kind=None, type=None, pair=None, township=None, min_area_ha=0.0,
                              slivers=True, severity=None, status=None)
            panel.set_filters(**filters)
        except ValueError:  # nothing of that kind in the list (yet)
            return False
        panel.go_undecided(1)
        return True

    # ------------------------------------------------------------------ committee
    def _show_committee(self) -> None:
        text = self.tr("评议委员会：尚无决定")
        with contextlib.suppress(Exception):
            from multiplan.core import review

            dec = review.committee_decision(self._project())
            if dec:
                outcome = dec.get("outcome_en", dec["outcome"]) if self.lang == "en" \
                    else dec["outcome"]
                text = self.tr("评议委员会：{0}（主任委员 {1}，{2}）").format(
                    outcome, dec.get("chair", ""), dec.get("time", ""))
        self.committee_label.setText(text)

    def ask_committee(self) -> dict[str, Any] | None:
        project = self._project()
        if project is None:
            return None
        members: list[str] = []
        with contextlib.suppress(Exception):
            members = list(project.roles()["reviewers"])
        chair = getattr(project, "user", None) or ""
        dlg = CommitteeDialog(chair, members, self.lang, self)
        self.last_committee_dialog = dlg
        if dlg.exec() != QDialog.DialogCode.Accepted:
            return None
        return self.record_committee(**dlg.values())

    def record_committee(self, outcome: str, members: list[str], chair: str,
                         comment: str = "") -> dict[str, Any] | None:
        """Record the committee's decision (core ``review.record_committee_decision``)
        and check the gates again."""
        from multiplan.core import review

        try:
            row = review.record_committee_decision(self._project(), outcome, members=members,
                                                   chair=chair, comment=comment)
        except MultiplanError as exc:
            self.window.show_error(self.tr("无法记录评议委员会决定"), exc.text(self.lang))
            return None
        self.refresh()
        return row

    # ------------------------------------------------------------------ milestones
    def milestone_kind(self) -> str | None:
        """The record the current state takes (人大审议 in 评议通过, 备案 in 人大审议通过)."""
        from multiplan.core import workflow

        state = getattr(self.status, "state", None)
        for kind, (_zh, _en, in_state, _next) in getattr(workflow, "MILESTONES", {}).items():
            if in_state == state:
                return kind
        return None

    def _milestone_name(self, kind: str) -> str:
        from multiplan.core import workflow

        zh, en, _, _ = workflow.MILESTONES[kind]
        return en if self.lang == "en" else zh

    def ask_milestone(self) -> dict[str, Any] | None:
        kind = self.milestone_kind()
        if kind is None:
            return None
        dlg = MilestoneDialog(self.tr("登记{0}").format(self._milestone_name(kind)), self)
        self.last_milestone_dialog = dlg
        if dlg.exec() != QDialog.DialogCode.Accepted:
            return None
        return self.record_milestone(**dlg.values())

    def record_milestone(self, date: str, doc_no: str) -> dict[str, Any] | None:
        """Record the current state's milestone (core ``workflow.record_milestone``) and
        check the gates again."""
        from multiplan.core import workflow

        kind = self.milestone_kind()
        if kind is None:
            return None
        actor = getattr(self._project(), "user", None)
        try:
            row = workflow.record_milestone(self._project(), kind, date=date, doc_no=doc_no,
                                            actor=actor)
        except MultiplanError as exc:
            self.window.show_error(self.tr("无法登记"), exc.text(self.lang))
            return None
        self.refresh()
        return row

    def gate_rows(self) -> list[tuple[str, str, str]]:
        """(gate, ✔/✘, reason) as shown (for tests and scripts)."""
        out = []
        for i in range(self.gates.rowCount()):
            out.append(tuple(self.gates.item(i, j).text() for j in range(3)))
        return out

    # ------------------------------------------------------------------ advancing
    def advance(self) -> None:
        project = self._project()
        nxt = self.next_state()
        if project is None or nxt is None:
            return
        from multiplan.core import workflow

        actor = getattr(project, "user", None) or getattr(self.window, "review_user", None)
        self._set_busy(self.tr("正在推进…"))
        lang = self.lang

        def work(task: Any) -> dict[str, Any]:
            task.progress(0.1, "")
            try:
                workflow.advance(project, nxt, actor=actor)
            except MultiplanError as exc:
                return {"ok": False, "error": exc.text(lang), "status": workflow.status(project)}
            return {"ok": True, "status": workflow.status(project)}

        self.handle = self.window.tasks.run_in_thread(
            self.tr("推进规划流程"), work, transient=True, on_done=self._advanced,
            on_error=lambda err: (self._set_busy(""), self.window.show_error(
                self.tr("无法推进"), err.get(self.lang) or err.get("en", ""))))

    def _advanced(self, result: dict[str, Any]) -> None:
        self.show_status(result["status"])
        if result["ok"]:
            self.last_refusal = None
            self.window.statusBar().showMessage(self.tr("规划流程已推进到：{0}").format(
                self._state_name(getattr(result["status"], "state", None))), 8000)
            return
        failing = failing_text(result["status"], self.lang)
        text = result["error"]
        if failing and failing not in text:
            text += "\n\n" + self.tr("未满足的闸门：") + "\n" + failing
        self.last_refusal = text
        QMessageBox.warning(self, self.tr("无法推进到下一阶段"), text)
