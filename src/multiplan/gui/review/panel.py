"""The review panel (审查): filters, the item table, navigation and the decision form.

Filters are plain controls (no expressions): kind, type, severity, layer pair, township,
area ≥ 公顷, decision status, and whether slivers show. ``N`` / ``P`` (and Ctrl+] / Ctrl+[ in
the 审查 menu) jump to the next / previous undecided item. Without a conflict register the
panel says so and offers to run the detection.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from .decision import DecisionForm
from .items import KIND_EN, SEVERITY_EN, STATUS_EN, Filters, ReviewData, choices, statuses
from .model import ReviewModel

# Separates the two layer names of a pair in the pair filter's item data.
PAIR_SEP = "\x1f"
KIND_ZH = {"conflict": "差异图斑", "assessment": "双评价核查", "redline": "三区三线",
           "qa": "质检"}


class ReviewPanel(QWidget):
    itemSelected = Signal(int)  # row of the item frame
    runDetection = Signal()
    compareToggled = Signal(bool)
    reloadRequested = Signal()

    def __init__(self, lang: str = "zh", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lang = lang
        self.setObjectName("review_panel")
        self.model = ReviewModel(lang, self)
        self._filling = False

        # -- empty state
        empty = QWidget()
        ev = QVBoxLayout(empty)
        self.empty_label = QLabel(self.tr(
            "尚未运行冲突检测，还没有差异图斑可供审查。\n\n"
            "请先运行 分析 → 冲突检测（差异图斑），或点击下面的按钮。"))
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.run_button = QPushButton(self.tr("运行冲突检测…"))
        self.run_button.clicked.connect(self.runDetection.emit)
        ev.addStretch(1)
        ev.addWidget(self.empty_label)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.run_button)
        row.addStretch(1)
        ev.addLayout(row)
        ev.addStretch(2)

        # -- filters
        self.kind_combo = QComboBox()
        self.type_combo = QComboBox()
        self.severity_combo = QComboBox()
        self.pair_combo = QComboBox()
        self.township_combo = QComboBox()
        self.status_combo = QComboBox()
        self.area_spin = QDoubleSpinBox()
        self.area_spin.setRange(0.0, 1e6)
        self.area_spin.setDecimals(2)
        self.area_spin.setSingleStep(0.5)
        self.area_spin.setSuffix(self.tr(" 公顷"))
        self.area_spin.setToolTip(self.tr("只显示面积不小于此值的图斑"))
        self.sliver_check = QCheckBox(self.tr("含碎片"))
        self.sliver_check.setChecked(True)
        self.sliver_check.setToolTip(self.tr("碎片图斑（不计入统计）也列出"))
        for w in (self.kind_combo, self.type_combo, self.severity_combo, self.pair_combo,
                  self.township_combo, self.status_combo):
            w.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            w.setMinimumContentsLength(6)
            w.currentIndexChanged.connect(self._filters_changed)
        self.area_spin.valueChanged.connect(self._filters_changed)
        self.sliver_check.toggled.connect(self._filters_changed)
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(4)
        grid.setVerticalSpacing(2)
        cells = [(self.tr("类别"), self.kind_combo), (self.tr("类型"), self.type_combo),
                 (self.tr("严重程度"), self.severity_combo), (self.tr("决定"), self.status_combo),
                 (self.tr("图层对"), self.pair_combo), (self.tr("乡镇"), self.township_combo),
                 (self.tr("面积 ≥"), self.area_spin)]
        for i, (label, w) in enumerate(cells):
            r, c = divmod(i, 2)
            grid.addWidget(QLabel(label), r, 2 * c)
            grid.addWidget(w, r, 2 * c + 1)
        grid.addWidget(self.sliver_check, 3, 2, 1, 2)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)

        # -- table
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)

        # -- navigation
        self.count_label = QLabel("")
        self.reload_button = QPushButton(self.tr("刷新"))
        self.reload_button.setToolTip(self.tr("重新读取差异图斑、质检结果与评议决定"))
        self.reload_button.clicked.connect(self.reloadRequested.emit)
        self.prev_button = QPushButton(self.tr("◀ 上一个未决 (P)"))
        self.next_button = QPushButton(self.tr("下一个未决 (N) ▶"))
        self.compare_button = QPushButton(self.tr("对比两规"))
        self.compare_button.setCheckable(True)
        self.compare_button.setToolTip(self.tr("并排显示图斑处的图层 A 与图层 B（同步缩放平移）"))
        self.prev_button.clicked.connect(lambda: self.go_undecided(-1))
        self.next_button.clicked.connect(lambda: self.go_undecided(1))
        self.compare_button.toggled.connect(self.compareToggled.emit)
        nav = QHBoxLayout()
        nav.addWidget(self.prev_button)
        nav.addWidget(self.next_button)
        nav.addStretch(1)
        nav.addWidget(self.compare_button)

        self.form = DecisionForm(lang)

        main = QWidget()
        mv = QVBoxLayout(main)
        mv.setContentsMargins(2, 2, 2, 2)
        mv.setSpacing(3)
        mv.addLayout(grid)
        counts = QHBoxLayout()
        counts.addWidget(self.count_label, 1)
        counts.addWidget(self.reload_button)
        mv.addLayout(counts)
        lower = QWidget()
        lv = QVBoxLayout(lower)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.setSpacing(3)
        lv.addLayout(nav)
        lv.addWidget(self.form)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(lower)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setChildrenCollapsible(False)
        mv.addWidget(self.splitter, 1)

        self.stack = QStackedWidget()
        self.stack.addWidget(empty)
        self.stack.addWidget(main)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.stack)

        for keys, step in (("N", 1), ("P", -1)):
            sc = QShortcut(QKeySequence(keys), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(lambda s=step: self.go_undecided(s))
        self.set_data(None)

    # ------------------------------------------------------------------ data
    @property
    def data(self) -> ReviewData:
        return self.model.data_

    def set_data(self, data: ReviewData | None) -> None:
        """Show ``data`` (None or no register: the empty state). Filters and the current
        item are kept where they still apply."""
        current = self.current_item_id()
        if data is None or (not len(data) and not data.has_register):
            self.stack.setCurrentIndex(0)
            self.model.set_data(ReviewData(self.model.data_.items.iloc[:0]))
            self.form.set_item(None)
            self.count_label.setText("")
            return
        self.stack.setCurrentIndex(1)
        self._filling = True
        try:
            self._fill_choices(data)
        finally:
            self._filling = False
        self.model.filters = self.filters()
        self.model.set_data(data)
        self._update_count()
        if current is not None and not self.select_item(current):
            self.form.set_item(None)

    def _fill_choices(self, data: ReviewData) -> None:
        en = self.lang == "en"
        ch = data.choices if data.choices is not None else choices(data.items)

        def refill(combo: QComboBox, entries: list[tuple[str, Any]]) -> None:
            keep = combo.currentData()
            combo.clear()
            combo.addItem(self.tr("全部"), None)
            for text, value in entries:
                combo.addItem(text, value)
            i = combo.findData(keep)
            combo.setCurrentIndex(max(i, 0))

        refill(self.kind_combo, [(KIND_EN.get(k, k) if en else KIND_ZH.get(k, k), k)
                                 for k in ch["kind"]])
        refill(self.type_combo, [(f"{t} {n}".strip(), t) for t, n in ch["type"]])
        sev = [(self.tr("需审查（冲突、错误、警告、提示）"), "review")]
        sev += [(SEVERITY_EN.get(s, s) if en else s, s) for s in ch["severity"]]
        refill(self.severity_combo, sev)
        refill(self.pair_combo, [(f"{a} × {b}", PAIR_SEP.join((a, b))) for a, b in ch["pair"]])
        refill(self.township_combo, [(t, t) for t in ch["township"]])
        st = [(self.tr("未决"), "undecided"), (self.tr("已决"), "decided")]
        st += [(STATUS_EN.get(s, s) if en else s, s) for s in statuses()]
        refill(self.status_combo, st)

    def filters(self) -> Filters:
        pair = self.pair_combo.currentData()
        return Filters(kind=self.kind_combo.currentData(), type=self.type_combo.currentData(),
                       severity=self.severity_combo.currentData(),
                       pair=tuple(pair.split(PAIR_SEP)) if pair else None,
                       township=self.township_combo.currentData(),
                       min_area_ha=float(self.area_spin.value()),
                       status=self.status_combo.currentData(),
                       slivers=self.sliver_check.isChecked())

    def set_filters(self, **values: Any) -> None:
        """Set filter controls by value (for scripts and tests): kind, type, severity,
        pair, township, status, min_area_ha, slivers."""
        combos = {"kind": self.kind_combo, "type": self.type_combo,
                  "severity": self.severity_combo, "pair": self.pair_combo,
                  "township": self.township_combo, "status": self.status_combo}
        self._filling = True
        try:
            for key, value in values.items():
                if key in combos:
                    combo = combos[key]
                    if key == "pair" and value is not None:
                        value = PAIR_SEP.join(sorted(value))
                    i = combo.findData(value)
                    if i < 0:
                        raise ValueError(f"no {key} filter value {value!r}")
                    combo.setCurrentIndex(i)
                elif key == "min_area_ha":
                    self.area_spin.setValue(float(value))
                elif key == "slivers":
                    self.sliver_check.setChecked(bool(value))
                else:
                    raise KeyError(key)
        finally:
            self._filling = False
        self._filters_changed()

    def _filters_changed(self, *_: Any) -> None:
        if self._filling:
            return
        current = self.current_item_id()
        self.model.set_filters(self.filters())
        self._update_count()
        if current is not None:
            self.select_item(current, emit=False)

    def _update_count(self) -> None:
        items = self.data.items
        shown = self.model.rowCount()
        undecided = int((items["status"] == "待定").sum()) if len(items) else 0
        self.count_label.setText(self.tr("显示 {0} / {1} 项 · 未决 {2} 项").format(
            f"{shown:,}", f"{len(items):,}", f"{undecided:,}"))

    # ------------------------------------------------------------------ selection
    def current_view_row(self) -> int:
        idx = self.table.currentIndex()
        return idx.row() if idx.isValid() else -1

    def current_item_id(self) -> str | None:
        r = self.current_view_row()
        if r < 0 or r >= self.model.rowCount():
            return None
        return str(self.model.item(r)["item_id"])

    def select_view_row(self, row: int, emit: bool = True) -> None:
        idx = self.model.index(row, 0)
        sel = self.table.selectionModel()
        if not emit:
            sel.blockSignals(True)
        try:
            sel.setCurrentIndex(idx, QItemSelectionModel.SelectionFlag.ClearAndSelect
                                | QItemSelectionModel.SelectionFlag.Rows)
        finally:
            if not emit:
                sel.blockSignals(False)
        self.table.scrollTo(idx)

    def select_item(self, item_id: str, emit: bool = True) -> bool:
        row = self.data.row_of(item_id)
        if row is None:
            return False
        v = self.model.view_row(row)
        if v is None:
            return False
        self.select_view_row(v, emit)
        return True

    def go_undecided(self, step: int = 1) -> bool:
        """Select the next (step 1) or previous (-1) undecided row; False when none."""
        row = self.model.next_undecided(self.current_view_row(), step)
        if row is None:
            self.count_label.setText(self.tr("没有未决的图斑了"))
            return False
        self.select_view_row(row)
        return True

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            self.form.set_item(None)
            return
        row = self.model.item_row(current.row())
        self.form.set_item(self.data.items.iloc[row])
        self.itemSelected.emit(row)

    def item_updated(self, item_row: int, **values: Any) -> None:
        """A decision was recorded: update that row (and the form, if it shows it)."""
        self.model.update_item(item_row, **values)
        self._update_count()
        if self.form.item_id == str(self.data.items.at[item_row, "item_id"]):
            self.form.set_item(self.data.items.iloc[item_row])
