"""Dialogs: new project, import layer, layer properties, conflict layer pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from multiplan.core import crs as crsmod
from multiplan.core.layers import LEVELS, ROLES, LayerRecord


def _browse_row(edit: QLineEdit, button: QPushButton) -> QWidget:
    w = QWidget()
    lay = QHBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(edit, 1)
    lay.addWidget(button)
    return w


class NewProjectDialog(QDialog):
    """Folder, county name and the project CRS (a CGCS2000 3° Gauss-Krüger zone chosen from
    the county's central longitude)."""

    def __init__(self, parent: QWidget | None = None, start_dir: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("新建项目"))
        self.folder = QLineEdit(start_dir)
        browse = QPushButton(self.tr("浏览…"))
        browse.clicked.connect(self._browse)
        self.county = QLineEdit()
        self.county.setPlaceholderText(self.tr("例如 长兴县"))
        self.longitude = QDoubleSpinBox()
        self.longitude.setRange(73.0, 136.0)
        self.longitude.setDecimals(3)
        self.longitude.setValue(120.0)
        self.prefixed = QCheckBox(self.tr("坐标带号前缀（X 坐标前加带号）"))
        self.crs_label = QLabel()
        self.longitude.valueChanged.connect(self._update_crs)
        self.prefixed.toggled.connect(self._update_crs)
        form = QFormLayout()
        form.addRow(self.tr("项目文件夹"), _browse_row(self.folder, browse))
        form.addRow(self.tr("县（区）名称"), self.county)
        form.addRow(self.tr("县域中心经度"), self.longitude)
        form.addRow("", self.prefixed)
        form.addRow(self.tr("项目坐标系"), self.crs_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)
        self._update_crs()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.tr("项目文件夹"), self.folder.text())
        if folder:
            self.folder.setText(folder)

    def epsg(self) -> int:
        return crsmod.epsg_for_longitude(self.longitude.value(), self.prefixed.isChecked())

    def _update_crs(self) -> None:
        epsg = self.epsg()
        self.crs_label.setText(crsmod.crs_label(epsg))

    def values(self) -> dict[str, Any]:
        return {"folder": self.folder.text().strip(), "county": self.county.text().strip(),
                "epsg": self.epsg()}


class ImportLayerDialog(QDialog):
    """What core io.import_layer needs: file, name, level, role, classification, fields."""

    VECTOR_FILTER = "GIS (*.gpkg *.shp *.zip *.geojson *.json *.fgb *.tif *.tiff)"

    def __init__(self, parent: QWidget | None = None, path: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("导入图层"))
        self.path = QLineEdit(path)
        browse = QPushButton(self.tr("浏览…"))
        browse.clicked.connect(self._browse)
        self.name = QLineEdit()
        self.level = QComboBox()
        for key, label in LEVELS.items():
            self.level.addItem(label, key)
        self.level.setCurrentIndex(self.level.findData("county"))
        self.role = QComboBox()
        for key, (label, _) in ROLES.items():
            self.role.addItem(label, key)
        self.scheme = QComboBox()
        self.scheme.addItem(self.tr("不分类"), None)
        self.scheme.addItem(self.tr("自动识别"), "auto")
        from multiplan.core.classification import available_schemes

        for s in available_schemes():
            sid = s["id"] if isinstance(s, dict) else str(s)
            title = s.get("title", sid) if isinstance(s, dict) else sid
            self.scheme.addItem(f"{title}（{sid}）", sid)
        self.code_field = QComboBox()
        self.code_field.setEditable(True)
        self.name_field = QComboBox()
        self.name_field.setEditable(True)
        self.encoding = QComboBox()
        self.encoding.setEditable(True)
        for enc in ("", "UTF-8", "GBK", "GB18030"):
            self.encoding.addItem(enc or self.tr("自动"), enc or None)
        self.path.editingFinished.connect(self._read_fields)
        form = QFormLayout()
        form.addRow(self.tr("文件"), _browse_row(self.path, browse))
        form.addRow(self.tr("图层名称"), self.name)
        form.addRow(self.tr("规划级别"), self.level)
        form.addRow(self.tr("图层用途"), self.role)
        form.addRow(self.tr("分类标准"), self.scheme)
        form.addRow(self.tr("地类代码字段"), self.code_field)
        form.addRow(self.tr("地类名称字段"), self.name_field)
        form.addRow(self.tr("字符编码"), self.encoding)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)
        if path:
            self._read_fields()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("选择要导入的文件"), self.path.text(),
                                              self.VECTOR_FILTER)
        if path:
            self.path.setText(path)
            self._read_fields()

    def _read_fields(self) -> None:
        path = Path(self.path.text().strip())
        if not self.name.text():
            self.name.setText(path.stem)
        if path.suffix.lower() in (".tif", ".tiff"):
            self.role.setCurrentIndex(self.role.findData("assessment_factor"))
            return
        fields: list[str] = []
        try:
            import pyogrio

            if path.is_file() and path.suffix.lower() != ".zip":
                fields = [str(f) for f in pyogrio.read_info(path)["fields"]]
        except Exception:  # noqa: BLE001 — the import itself reports what is wrong
            fields = []
        for combo in (self.code_field, self.name_field):
            combo.clear()
            combo.addItem("", None)
            for f in fields:
                combo.addItem(f, f)

    def _encoding(self) -> str | None:
        text = self.encoding.currentText().strip()
        return None if not text or text == self.tr("自动") else text

    def options(self) -> dict[str, Any]:
        scheme = self.scheme.currentData()
        code = self.code_field.currentText().strip() or None
        opts: dict[str, Any] = {
            "name": self.name.text().strip() or None,
            "level": self.level.currentData(), "role": self.role.currentData(),
            "code_field": code, "name_field": self.name_field.currentText().strip() or None,
            "encoding": self._encoding(),
        }
        if code and scheme not in (None, "auto"):
            opts["scheme"] = scheme
        if not code or scheme is None:  # 不分类: the codes are not read as land classes
            opts.pop("code_field")
        if self.path.text().lower().endswith((".tif", ".tiff")):
            opts = {"name": opts["name"], "level": opts["level"], "role": opts["role"]}
        return opts


class LayerPropertiesDialog(QDialog):
    """Where a layer comes from and how it is classified; its opacity can be changed."""

    def __init__(self, rec: LayerRecord, info: dict[str, str], opacity: float,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("图层属性 — {0}").format(rec.title or rec.name))
        form = QFormLayout()
        rows = [
            (self.tr("名称"), rec.name),
            (self.tr("标题"), rec.title or ""),
            (self.tr("类型"), f"{rec.kind} · {rec.geometry_type or ''}"),
            (self.tr("规划级别"), rec.level_label),
            (self.tr("图层用途"), rec.role_label),
            (self.tr("要素数"), "" if rec.feature_count is None else f"{rec.feature_count:,}"),
            (self.tr("来源文件"), rec.source_path or rec.raster_path or ""),
            (self.tr("源坐标系"), (rec.source_crs or "")
             + (self.tr("（假定）") if rec.crs_assumed else "")),
            (self.tr("项目坐标系"), info.get("project_crs", "")),
            (self.tr("字符编码"), rec.encoding or ""),
            (self.tr("分类标准"), info.get("scheme", rec.scheme or "")),
            (self.tr("地类代码字段"), rec.code_field or ""),
            (self.tr("地类名称字段"), rec.name_field or ""),
            (self.tr("导入时间"), rec.imported_at or ""),
            (self.tr("源文件 SHA-256"), (rec.source_sha256 or "")[:16]),
        ]
        if rec.synthetic:
            rows.append((self.tr("数据性质"), self.tr("合成示例数据")))
        for k, v in info.items():
            if k.startswith("extra:"):
                rows.append((k[6:], v))
        self.labels: dict[str, str] = {}
        for label, value in rows:
            w = QLabel(value)
            w.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            w.setWordWrap(True)
            form.addRow(label, w)
            self.labels[label] = value
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(round(opacity * 100))
        self.opacity_label = QLabel(f"{self.opacity.value()}%")
        self.opacity.valueChanged.connect(lambda v: self.opacity_label.setText(f"{v}%"))
        row = QWidget()
        rl = QHBoxLayout(row)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.opacity, 1)
        rl.addWidget(self.opacity_label)
        form.addRow(self.tr("不透明度"), row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def chosen_opacity(self) -> float:
        return self.opacity.value() / 100.0


class LayerPairDialog(QDialog):
    """Choose two layers for conflict detection, or every meaningful pair."""

    def __init__(self, layers: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("冲突检测（差异图斑）"))
        self.all_pairs = QCheckBox(self.tr("检查全部有意义的图层对"))
        self.all_pairs.setChecked(True)
        self.a = QComboBox()
        self.b = QComboBox()
        for name, title in layers:
            self.a.addItem(title, name)
            self.b.addItem(title, name)
        if self.b.count() > 1:
            self.b.setCurrentIndex(1)
        self.all_pairs.toggled.connect(lambda on: (self.a.setEnabled(not on),
                                                   self.b.setEnabled(not on)))
        self.a.setEnabled(False)
        self.b.setEnabled(False)
        form = QFormLayout()
        form.addRow(self.all_pairs)
        form.addRow(self.tr("图层 A"), self.a)
        form.addRow(self.tr("图层 B"), self.b)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def pair(self) -> tuple[str, str] | None:
        if self.all_pairs.isChecked():
            return None
        return self.a.currentData(), self.b.currentData()
