"""The public-disclosure export dialog (发布 → 公开发布导出…).

Choose the sheets (only those the project can make are enabled; the others say what is
missing), the formats, public or internal edition, the 审图号, the generalisation of the
public edition, paper, orientation, resolution and the output folder. A preview of the
current sheet is composed by the core composer (:func:`multiplan.core.sheets.compose_sheet`)
at a low resolution in a worker thread and shown as a picture. The gates are checked as the
choices change and shown in plain words; a failing gate is told before anything starts. The
export runs as a background job (worker process) with progress and Cancel, and a cancelled
or failed export leaves no folder behind (the core writes into a temporary folder).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QAction, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from multiplan.core.project import Project
from multiplan.core.publish import plan_export
from multiplan.core.publish.export import PAPERS, export_job
from multiplan.core.publish.gating import GENERALISE_SETTING, REVIEW_SETTING

from .workers import DONE, TaskHandle, TaskManager

PREVIEW_DPI = 40
KEY_ROLE = Qt.ItemDataRole.UserRole


def _availability(project: Project) -> dict[str, tuple[str, str, bool, str, str]]:
    """key → (zh, en, available, why zh, why en)."""
    from multiplan.core.sheets import SHEETS, sheet_availability

    avail = sheet_availability(project)
    return {k: (s.zh, s.en, *avail.get(k, (False, "", ""))) for k, s in SHEETS.items()}


def preview_png(task: Any, folder: str, key: str, options: dict[str, Any]) -> bytes:
    """Compose sheet ``key`` and return it as PNG bytes at :data:`PREVIEW_DPI` (a worker
    thread job; the figure is a plain matplotlib Figure, no pyplot)."""
    from multiplan.core.sheets import compose_sheet

    fig = compose_sheet(Project.open(folder), key, task=task, **options)
    task.check()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PREVIEW_DPI)
    return buf.getvalue()


class ExportDialog(QDialog):
    """See the module docstring. ``tasks`` is the window's task manager (its own when None)."""

    def __init__(self, project: Project, tasks: TaskManager | None = None,
                 parent: QWidget | None = None, lang: str = "zh") -> None:
        super().__init__(parent)
        self.project = project
        self.lang = lang
        self.tasks = tasks or TaskManager(self)
        self.handle: TaskHandle | None = None
        self.preview_handle: TaskHandle | None = None
        self.result: dict[str, Any] | None = None
        self.last_error: str = ""
        self.setWindowTitle(self.tr("公开发布导出：规划图、统计表、数据包"))
        self.sheets = _availability(project)

        # ---- sheets
        self.sheet_list = QListWidget()
        for key, (zh, en, ok, why_zh, why_en) in self.sheets.items():
            item = QListWidgetItem(zh if lang == "zh" else en)
            item.setData(KEY_ROLE, key)
            flags = Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsSelectable
            if ok:
                item.setFlags(flags | Qt.ItemFlag.ItemIsEnabled)
                item.setCheckState(Qt.CheckState.Checked)
            else:
                item.setFlags(flags)
                item.setCheckState(Qt.CheckState.Unchecked)
                item.setToolTip(why_zh if lang == "zh" else why_en)
                item.setText(item.text() + (f"（{why_zh}）" if lang == "zh" else f" ({why_en})"))
            self.sheet_list.addItem(item)
        self.sheet_list.setMinimumWidth(400)
        self.sheet_list.itemChanged.connect(lambda _: self.update_gates())
        self.sheet_list.currentItemChanged.connect(lambda *_: self.preview())
        sheets_box = QGroupBox(self.tr("图幅"))
        QVBoxLayout(sheets_box).addWidget(self.sheet_list)

        # ---- options
        self.pdf = QCheckBox("PDF")
        self.png = QCheckBox("PNG")
        self.pdf.setChecked(True)
        self.png.setChecked(True)
        fmt = QWidget()
        fl = QHBoxLayout(fmt)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.addWidget(self.pdf)
        fl.addWidget(self.png)
        fl.addStretch(1)
        self.public = QRadioButton(self.tr("公开版"))
        self.internal = QRadioButton(self.tr("内部版"))
        self.edition = QButtonGroup(self)
        self.edition.addButton(self.public)
        self.edition.addButton(self.internal)
        self.internal.setChecked(True)
        ed = QWidget()
        el = QHBoxLayout(ed)
        el.setContentsMargins(0, 0, 0, 0)
        el.addWidget(self.public)
        el.addWidget(self.internal)
        el.addStretch(1)
        self.review_no = QLineEdit(str(project.setting(REVIEW_SETTING) or ""))
        self.review_no.setPlaceholderText(self.tr("例如 浙S(2025)12号"))
        self.generalise = QDoubleSpinBox()
        self.generalise.setRange(0.0, 1000.0)
        self.generalise.setDecimals(1)
        self.generalise.setSuffix(" m")
        default_gen = project.setting(GENERALISE_SETTING)
        self.generalise.setValue(float(50.0 if default_gen is None else default_gen))
        self._gen_touched = False  # untouched: the core's default and its stated basis

        def touched(_: float) -> None:
            self._gen_touched = True
            self.update_gates()

        self.generalise.valueChanged.connect(touched)
        self.paper = QComboBox()
        self.paper.addItems(list(PAPERS))
        self.paper.setCurrentText("A3")
        self.orientation = QComboBox()
        self.orientation.addItem(self.tr("自动（县域显示更大者）"), None)
        self.orientation.addItem(self.tr("横向"), "landscape")
        self.orientation.addItem(self.tr("纵向"), "portrait")
        self.dpi = QSpinBox()
        self.dpi.setRange(72, 600)
        self.dpi.setValue(300)
        self.dpi.setSuffix(" dpi")
        self.out = QLineEdit(str(project.folder / "exports" / "内部版"))
        browse = QPushButton(self.tr("浏览…"))
        browse.clicked.connect(self._browse)
        out_row = QWidget()
        ol = QHBoxLayout(out_row)
        ol.setContentsMargins(0, 0, 0, 0)
        ol.addWidget(self.out, 1)
        ol.addWidget(browse)
        form = QFormLayout()
        form.addRow(self.tr("格式"), fmt)
        form.addRow(self.tr("版本"), ed)
        form.addRow(self.tr("审图号"), self.review_no)
        form.addRow(self.tr("公开版图形概化"), self.generalise)
        form.addRow(self.tr("图纸"), self.paper)
        form.addRow(self.tr("方向"), self.orientation)
        form.addRow(self.tr("分辨率（PNG）"), self.dpi)
        form.addRow(self.tr("输出文件夹"), out_row)
        self.overwrite = QCheckBox(self.tr("替换该文件夹中以前的导出"))
        form.addRow("", self.overwrite)
        opts = QGroupBox(self.tr("选项"))
        opts.setLayout(form)
        self.gate_label = QLabel()
        self.gate_label.setWordWrap(True)
        self.gate_label.setTextFormat(Qt.TextFormat.PlainText)
        self.gate_label.setMinimumHeight(48)

        # ---- preview
        self.preview_label = QLabel(self.tr("预览"))
        self.preview_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview_label.setMinimumSize(420, 300)
        self.preview_label.setStyleSheet("background: #f4f4f4; border: 1px solid #ccc;")
        self.preview_button = QPushButton(self.tr("刷新预览"))
        self.preview_button.clicked.connect(self.preview)
        pv = QGroupBox(self.tr("预览（当前图幅）"))
        pl = QVBoxLayout(pv)
        pl.addWidget(self.preview_label, 1)
        pl.addWidget(self.preview_button, 0, Qt.AlignmentFlag.AlignRight)

        # ---- bottom
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.export_button = QPushButton(self.tr("导出"))
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start_export)
        self.cancel_button = QPushButton(self.tr("取消导出"))
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_export)
        self.close_button = QPushButton(self.tr("关闭"))
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.close_button)

        left = QVBoxLayout()
        left.addWidget(sheets_box, 1)
        left.addWidget(opts)
        left.addWidget(self.gate_label)
        top = QHBoxLayout()
        top.addLayout(left, 0)
        top.addWidget(pv, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(top, 1)
        lay.addWidget(self.status)
        lay.addLayout(buttons)
        self.resize(1040, 700)

        for w in (self.public, self.internal):
            w.toggled.connect(self._edition_changed)
        self.review_no.textChanged.connect(lambda _: self.update_gates())
        for w in (self.paper, self.orientation):
            w.currentIndexChanged.connect(lambda _: self.preview())
        self._edition_changed()
        first = next((i for i in range(self.sheet_list.count())
                      if self.sheet_list.item(i).flags() & Qt.ItemFlag.ItemIsEnabled), None)
        if first is not None:
            self.sheet_list.setCurrentRow(first)  # starts the first preview
        else:
            self.preview_label.setText(self.tr("项目中没有可出的图"))

    # ------------------------------------------------------------------ choices
    def chosen_sheets(self) -> list[str]:
        out = []
        for i in range(self.sheet_list.count()):
            it = self.sheet_list.item(i)
            if it.flags() & Qt.ItemFlag.ItemIsEnabled and \
                    it.checkState() == Qt.CheckState.Checked:
                out.append(str(it.data(KEY_ROLE)))
        return out

    def formats(self) -> list[str]:
        return [f for f, box in (("pdf", self.pdf), ("png", self.png)) if box.isChecked()]

    def options(self) -> dict[str, Any]:
        public = self.public.isChecked()
        return {"sheets": self.chosen_sheets(), "formats": self.formats(), "public": public,
                "review_no": self.review_no.text().strip() or None,
                "generalise_m": (self.generalise.value() if public and self._gen_touched
                                 else None),
                "paper": self.paper.currentText(),
                "orientation": self.orientation.currentData(), "dpi": self.dpi.value(),
                "overwrite": self.overwrite.isChecked()}

    def _edition_changed(self) -> None:
        public = self.public.isChecked()
        self.generalise.setEnabled(public)
        self.review_no.setEnabled(public)
        out = Path(self.out.text())
        if out.name in ("公开版", "内部版"):
            self.out.setText(str(out.with_name("公开版" if public else "内部版")))
        self.update_gates()
        if self.sheet_list.currentItem() is not None:
            self.preview()  # the public edition is generalised and may carry a watermark

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, self.tr("输出到文件夹"), self.out.text())
        if path:
            self.out.setText(path)

    def gate_text(self) -> tuple[bool, str]:
        """(ok, readable text) of the gates for the current choices."""
        o = self.options()
        plan = plan_export(self.project, public=o["public"], sheets=o["sheets"],
                           review_no=o["review_no"], generalise_m=o["generalise_m"])
        zh = self.lang == "zh"
        lines = [(plan.edition_zh if zh else plan.edition_en)
                 + (f" · {plan.state}" if zh else f" · state {plan.state}")]
        for g in plan.gates:
            mark = "✓" if g.holds else "✗"
            lines.append(f"{mark} {g.zh if zh else g.en}")
        if plan.watermark:
            lines.append(self.tr("每幅图加水印：") + plan.watermark)
        if plan.generalise_m:
            src = (plan.generalise_source or "").split(" / ", 1)
            lines.append(self.tr("图形概化 {0} 米，依据：{1}").format(
                f"{plan.generalise_m:g}", src[0] if zh or len(src) == 1 else src[1]))
        if not self.formats() and o["sheets"]:
            lines.append("✗ " + self.tr("请至少选择一种图的格式"))
            return False, "\n".join(lines)
        return plan.ok, "\n".join(lines)

    def update_gates(self) -> bool:
        ok, text = self.gate_text()
        self.gate_label.setText(text)
        self.gate_label.setStyleSheet("color: #1b5e20;" if ok else "color: #b71c1c;")
        running = self.handle is not None and self.handle.is_running()
        self.export_button.setEnabled(not running)
        return ok

    # ------------------------------------------------------------------ preview
    def current_sheet(self) -> str | None:
        it = self.sheet_list.currentItem()
        if it is None or not it.flags() & Qt.ItemFlag.ItemIsEnabled:
            return None
        return str(it.data(KEY_ROLE))

    def preview(self) -> TaskHandle | None:
        key = self.current_sheet()
        if key is None:
            return None
        if self.preview_handle is not None and self.preview_handle.is_running():
            self.preview_handle.cancel()
        o = self.options()
        opts = {"paper": o["paper"], "orientation": o["orientation"], "public": o["public"],
                "review_no": o["review_no"], "generalise_m": o["generalise_m"]}
        try:
            watermark = plan_export(self.project, public=o["public"], sheets=[]).watermark
        except Exception:  # noqa: BLE001 — the preview never fails the dialog
            watermark = None
        opts["watermark"] = watermark
        self.preview_label.setText(self.tr("正在生成预览…"))
        handle = self.tasks.run_in_thread(
            self.tr("预览：{0}").format(key), preview_png, str(self.project.folder), key, opts,
            on_done=lambda data, h=None: self._show_preview(handle, data),
            on_error=lambda err: self.preview_label.setText(
                self.tr("预览失败：") + (err.get("zh") if self.lang == "zh" else err.get("en"))),
            transient=True)
        self.preview_handle = handle
        return handle

    def _show_preview(self, handle: TaskHandle, data: bytes) -> None:
        if handle is not self.preview_handle:
            return  # an older preview finished after a newer one started
        pix = QPixmap()
        pix.loadFromData(data, "PNG")
        self.preview_pixmap = pix
        self.preview_label.setPixmap(pix.scaled(
            self.preview_label.size(), Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation))

    # ------------------------------------------------------------------ export
    def start_export(self) -> TaskHandle | None:
        ok, text = self.gate_text()
        self.update_gates()
        if not ok:
            QMessageBox.warning(self, self.tr("不能导出"), text)
            return None
        out = Path(self.out.text().strip())
        if not self.out.text().strip():
            QMessageBox.warning(self, self.tr("不能导出"), self.tr("请选择输出文件夹"))
            return None
        o = self.options()
        self.result = None
        self.last_error = ""
        self.progress.setValue(0)
        self.status.setText(self.tr("正在导出…"))
        self.export_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        handle = self.tasks.run_in_process(
            self.tr("公开发布导出"), export_job, str(self.project.folder), str(out), o,
            on_done=self._done, on_error=self._failed, on_cancel=self._cancelled)
        handle.progressChanged.connect(self._progress)
        self.handle = handle
        return handle

    def cancel_export(self) -> None:
        if self.handle is not None and self.handle.is_running():
            self.handle.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText(self.tr("正在取消…"))

    def _progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(round(fraction * 1000))
        if message:
            self.status.setText(message)

    def _finish(self) -> None:
        self.cancel_button.setEnabled(False)
        self.export_button.setEnabled(True)

    def _done(self, result: dict[str, Any]) -> None:
        self.result = result
        self.progress.setValue(1000)
        self._finish()
        self.status.setText(self.tr("已导出 {0} 个文件到 {1}").format(result["files"],
                                                                 result["folder"]))

    def _failed(self, err: dict[str, Any]) -> None:
        self._finish()
        self.last_error = err.get("zh" if self.lang == "zh" else "en") or ""
        self.status.setText(self.tr("导出失败：") + self.last_error)
        QMessageBox.critical(self, self.tr("导出失败"), self.last_error)

    def _cancelled(self) -> None:
        self._finish()
        self.progress.setValue(0)
        self.status.setText(self.tr("已取消，未留下任何文件"))

    def is_done(self) -> bool:
        return self.handle is not None and self.handle.state == DONE


def install_export_action(window: Any, menu: QMenu) -> QAction:
    """Add 公开发布导出… to ``menu`` of the main window (enabled with a project)."""
    act = QAction(QCoreApplication.translate("ExportDialog", "公开发布导出（规划图、统计表、数据包）…"),
                  window)

    def open_dialog() -> None:
        if getattr(window, "project", None) is None:
            return
        dlg = ExportDialog(window.project, getattr(window, "tasks", None), window,
                           getattr(window, "lang", "zh"))
        window.export_dialog = dlg
        dlg.show()

    act.triggered.connect(open_dialog)
    first = menu.actions()[0] if menu.actions() else None
    menu.insertAction(first, act)
    window.publish_export_action = act
    if hasattr(window, "project_actions"):
        window.project_actions.append(act)
        act.setEnabled(getattr(window, "project", None) is not None)
    return act
