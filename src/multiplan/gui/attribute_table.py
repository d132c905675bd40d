"""The attribute table: a lazy table model over a layer's attributes, sort, a field /
operator / value filter (no expressions, nothing is evaluated), selection synced with the
map both ways, zoom to selected.

:class:`FeatureTableModel` keeps the attributes as numpy column arrays and a row → feature
permutation (sort order, then filter); it formats a cell only when the view asks for it and
hands rows to the view in batches (``canFetchMore``/``fetchMore``), so opening a 150 000-row
layer costs the same as opening a 1 000-row one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

# Operators of the filter bar: key → symbol shown (words are translated in the widget).
OPERATORS = ["eq", "ne", "gt", "ge", "lt", "le", "contains", "startswith", "empty", "notempty"]
_SYMBOLS = {"eq": "=", "ne": "≠", "gt": ">", "ge": "≥", "lt": "<", "le": "≤"}

Index = QModelIndex | QPersistentModelIndex


def filter_mask(values: pd.Series, op: str, value: str) -> np.ndarray:
    """Rows of ``values`` matching ``op value`` (a plain comparison, never an expression).

    Numbers compare as numbers when the column is numeric and ``value`` parses as one;
    otherwise values compare as text. ``contains``/``startswith`` are text tests; ``empty``
    and ``notempty`` ignore ``value``.
    """
    if op not in OPERATORS:
        raise ValueError(f"unknown operator {op!r}")
    isna = values.isna().to_numpy()
    if op == "empty":
        text = values.astype("string").fillna("").str.strip()
        return (isna | (text == "").to_numpy(dtype=bool))
    if op == "notempty":
        text = values.astype("string").fillna("").str.strip()
        return ~(isna | (text == "").to_numpy(dtype=bool))
    value = value.strip()
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and op not in ("contains", "startswith"):
        try:
            number = float(value)
        except ValueError:
            numeric = False
        else:
            arr = values.to_numpy(dtype=float, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                res = {"eq": arr == number, "ne": arr != number, "gt": arr > number,
                       "ge": arr >= number, "lt": arr < number, "le": arr <= number}[op]
            return res & ~isna if op != "ne" else res | isna
    text = values.astype("string").fillna("")
    if op == "contains":
        return text.str.contains(value, regex=False).to_numpy(dtype=bool)
    if op == "startswith":
        return text.str.startswith(value).to_numpy(dtype=bool)
    cmp = {"eq": text == value, "ne": text != value, "gt": text > value, "ge": text >= value,
           "lt": text < value, "le": text <= value}[op]
    return cmp.to_numpy(dtype=bool)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return f"{v:.10g}"
    if isinstance(v, np.floating):
        return "" if np.isnan(v) else f"{float(v):.10g}"
    if v is pd.NA or v is pd.NaT:
        return ""
    return str(v)


class FeatureTableModel(QAbstractTableModel):
    """Lazy model over a DataFrame whose row ``i`` is feature position ``i`` of the layer."""

    BATCH = 1000

    def __init__(self, attrs: pd.DataFrame, parent: Any = None) -> None:
        super().__init__(parent)
        self.attrs = attrs
        self.columns = [str(c) for c in attrs.columns]
        # numpy columns as they are; Arrow-backed ones (pandas ≥ 3 strings) are indexed per
        # cell: converting a 150k-row column to Python objects up front costs ~20 ms each
        self._arrays = [attrs.iloc[:, i].to_numpy() if isinstance(attrs.dtypes.iloc[i], np.dtype)
                        else attrs.iloc[:, i].array for i in range(attrs.shape[1])]
        self._numeric = [pd.api.types.is_numeric_dtype(attrs[c]) for c in attrs.columns]
        self.fids = attrs.index.to_numpy()
        n = len(attrs)
        # sort order (feature positions); by fid until a column is chosen
        self._order = np.argsort(self.fids, kind="stable").astype(np.int64)
        self._mask: np.ndarray | None = None  # filter, per position
        self._only: np.ndarray | None = None  # "selected only", positions
        self.rows = self._order
        self._row_of: np.ndarray | None = None
        self._fetched = min(self.BATCH, n)
        self.sort_column = -1
        self.sort_order = Qt.SortOrder.AscendingOrder
        self.filter: tuple[str, str, str] | None = None

    # ------------------------------------------------------------------ Qt model
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._fetched

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and self._fetched < len(self.rows)

    def fetchMore(self, parent: Index = QModelIndex()) -> None:  # noqa: B008
        self.ensure_fetched(self._fetched + self.BATCH - 1)

    def ensure_fetched(self, row: int) -> None:
        """Make rows up to ``row`` available to the view."""
        target = min(len(self.rows), row + 1)
        if target > self._fetched:
            self.beginInsertRows(QModelIndex(), self._fetched, target - 1)
            self._fetched = target
            self.endInsertRows()

    @property
    def fetched(self) -> int:
        return self._fetched

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return _fmt(self._arrays[c][self.rows[r]])
        if role == Qt.ItemDataRole.TextAlignmentRole and self._numeric[c]:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self.columns[section] if 0 <= section < len(self.columns) else None
        return str(self.fids[self.rows[section]]) if 0 <= section < len(self.rows) else None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort by a column (-1: by fid); missing values last."""
        self.beginResetModel()
        asc = order == Qt.SortOrder.AscendingOrder
        if column < 0 or column >= len(self.columns):
            s = pd.Series(self.fids)
        else:
            s = self.attrs.iloc[:, column].reset_index(drop=True)
            if not self._numeric[column]:
                s = s.astype("string")
        self._order = s.sort_values(ascending=asc, kind="stable",
                                    na_position="last").index.to_numpy(dtype=np.int64)
        self.sort_column, self.sort_order = column, order
        self._apply()
        self.endResetModel()

    # ------------------------------------------------------------------ filter
    def set_filter(self, column: str, op: str, value: str) -> int:
        """Show only rows where ``column op value``; returns the number of rows shown."""
        mask = filter_mask(self.attrs[column] if column in self.attrs.columns
                           else self.attrs[self.attrs.columns[self.columns.index(column)]],
                           op, value)
        self.beginResetModel()
        self._mask = mask
        self.filter = (column, op, value)
        self._apply()
        self.endResetModel()
        return len(self.rows)

    def clear_filter(self) -> None:
        self.beginResetModel()
        self._mask = None
        self.filter = None
        self._apply()
        self.endResetModel()

    def set_only(self, positions: np.ndarray | None) -> None:
        """Show only these feature positions (None: all)."""
        self.beginResetModel()
        self._only = None if positions is None else np.asarray(positions, dtype=np.int64)
        self._apply()
        self.endResetModel()

    def _apply(self) -> None:
        rows = self._order
        if self._mask is not None:
            rows = rows[self._mask[rows]]
        if self._only is not None:
            keep = np.zeros(len(self.fids), dtype=bool)
            keep[self._only] = True
            rows = rows[keep[rows]]
        self.rows = rows
        self._row_of = None
        self._fetched = min(self.BATCH, len(rows))

    # ------------------------------------------------------------------ mapping
    def total(self) -> int:
        return len(self.fids)

    def shown(self) -> int:
        return len(self.rows)

    def row_of_positions(self, positions: np.ndarray) -> np.ndarray:
        """Model rows of feature positions (-1 where filtered out)."""
        if self._row_of is None:
            inv = np.full(len(self.fids), -1, dtype=np.int64)
            inv[self.rows] = np.arange(len(self.rows))
            self._row_of = inv
        return self._row_of[np.asarray(positions, dtype=np.int64)]

    def positions_of_rows(self, rows: np.ndarray) -> np.ndarray:
        return self.rows[np.asarray(rows, dtype=np.int64)]

    def value(self, row: int, column: str) -> Any:
        return self._arrays[self.columns.index(column)][self.rows[row]]


class AttributeTable(QWidget):
    """Layer chooser, filter bar, table, selection tools. Talks to the window via signals."""

    selectionChanged = Signal(str, object)  # layer, fids (np.ndarray)
    zoomToSelected = Signal(str)
    layerChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layer: str | None = None
        self.model: FeatureTableModel | None = None
        self._layers: dict[str, pd.DataFrame] = {}
        self._syncing = False

        self.layer_combo = QComboBox()
        self.layer_combo.setMinimumContentsLength(12)
        self.layer_combo.currentIndexChanged.connect(self._on_combo)
        self.count_label = QLabel("")
        self.field_combo = QComboBox()
        self.field_combo.setMinimumContentsLength(8)
        self.op_combo = QComboBox()
        words = {"contains": self.tr("包含"), "startswith": self.tr("开头是"),
                 "empty": self.tr("为空"), "notempty": self.tr("不为空")}
        for op in OPERATORS:
            self.op_combo.addItem(_SYMBOLS.get(op) or words[op], op)
        self.value_edit = QLineEdit()
        self.value_edit.setPlaceholderText(self.tr("值"))
        self.value_edit.returnPressed.connect(self.apply_filter)
        self.filter_button = QPushButton(self.tr("筛选"))
        self.filter_button.clicked.connect(self.apply_filter)
        self.clear_button = QPushButton(self.tr("清除筛选"))
        self.clear_button.clicked.connect(self.clear_filter)
        self.zoom_button = QPushButton(self.tr("缩放至所选"))
        self.zoom_button.clicked.connect(lambda: self.layer and self.zoomToSelected.emit(
            self.layer))
        self.deselect_button = QPushButton(self.tr("清除选择"))
        self.deselect_button.clicked.connect(self.clear_selection)
        self.only_selected = QCheckBox(self.tr("仅显示所选"))
        self.only_selected.toggled.connect(self._on_only_selected)

        self.view = QTableView()
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setSortingEnabled(True)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        vh = self.view.verticalHeader()
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.view.horizontalHeader().setDefaultSectionSize(110)

        top = QHBoxLayout()
        top.addWidget(QLabel(self.tr("图层")))
        top.addWidget(self.layer_combo, 1)
        top.addWidget(self.count_label)
        bar = QHBoxLayout()
        bar.addWidget(self.field_combo, 2)
        bar.addWidget(self.op_combo)
        bar.addWidget(self.value_edit, 2)
        bar.addWidget(self.filter_button)
        bar.addWidget(self.clear_button)
        tools = QHBoxLayout()
        tools.addWidget(self.zoom_button)
        tools.addWidget(self.deselect_button)
        tools.addWidget(self.only_selected)
        tools.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addLayout(bar)
        lay.addWidget(self.view, 1)
        lay.addLayout(tools)
        self._update_count()

    # ------------------------------------------------------------------ layers
    def set_layers(self, layers: dict[str, tuple[str, pd.DataFrame]]) -> None:
        """Available layers: name → (title, attributes in draw order)."""
        current = self.layer
        self._layers = {n: df for n, (_, df) in layers.items()}
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        for name, (title, _) in layers.items():
            self.layer_combo.addItem(title, name)
        self.layer_combo.blockSignals(False)
        if current in self._layers:
            self.layer_combo.setCurrentIndex(self.layer_combo.findData(current))
        elif current is not None:
            self.show_layer(None)

    def _on_combo(self, i: int) -> None:
        name = self.layer_combo.itemData(i)
        if name and name != self.layer:
            self.show_layer(name)
            self.layerChosen.emit(name)

    def show_layer(self, name: str | None) -> None:
        """Show the attributes of ``name`` (instantly: the model fetches rows lazily)."""
        self.layer = name
        old = self.model
        if name is None or name not in self._layers:
            self.model = None
            self.view.setModel(None)
        else:
            self.model = FeatureTableModel(self._layers[name], self)
            self.view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
            self.view.setModel(self.model)
            self.model.modelReset.connect(self._reselect)
            self.view.selectionModel().selectionChanged.connect(self._on_view_selection)
            i = self.layer_combo.findData(name)
            if i >= 0 and i != self.layer_combo.currentIndex():
                self.layer_combo.blockSignals(True)
                self.layer_combo.setCurrentIndex(i)
                self.layer_combo.blockSignals(False)
        if old is not None:
            old.deleteLater()
        self.field_combo.clear()
        if self.model is not None:
            self.field_combo.addItems(self.model.columns)
        self.only_selected.blockSignals(True)
        self.only_selected.setChecked(False)
        self.only_selected.blockSignals(False)
        self._map_selection = None
        self._update_count()

    # ------------------------------------------------------------------ filter
    def apply_filter(self) -> None:
        if self.model is None or not self.field_combo.currentText():
            return
        self.model.set_filter(self.field_combo.currentText(), self.op_combo.currentData(),
                              self.value_edit.text())

    def set_filter(self, column: str, op: str, value: str) -> None:
        """Set the filter bar's controls and apply them."""
        self.field_combo.setCurrentText(column)
        self.op_combo.setCurrentIndex(self.op_combo.findData(op))
        self.value_edit.setText(value)
        self.apply_filter()

    def clear_filter(self) -> None:
        if self.model is not None:
            self.model.clear_filter()
            self.value_edit.clear()

    def _update_count(self) -> None:
        if self.model is None:
            self.count_label.setText("")
            return
        sel = len(self._map_selection) if self._map_selection is not None else 0
        self.count_label.setText(self.tr("显示 {0} / {1} · 已选 {2}").format(
            f"{self.model.shown():,}", f"{self.model.total():,}", f"{sel:,}"))

    # ------------------------------------------------------------------ selection
    _map_selection: np.ndarray | None = None

    def selection_from_map(self, positions: np.ndarray | None) -> None:
        """Select the rows of these feature positions (the map's selection)."""
        self._map_selection = positions
        if self.model is None:
            return
        if self.only_selected.isChecked():
            self.model.set_only(positions if positions is not None
                                else np.empty(0, dtype=np.int64))  # resets → _reselect
        else:
            self._reselect()

    def _reselect(self) -> None:
        """Show the current map selection as the table's row selection."""
        positions = self._map_selection
        self._update_count()
        if self.model is None or self.view.selectionModel() is None:
            return
        sm = self.view.selectionModel()
        self._syncing = True
        try:
            if positions is None or not len(positions):
                sm.clearSelection()
                return
            rows = np.sort(self.model.row_of_positions(positions))
            rows = rows[rows >= 0]
            selection = QItemSelection()
            if len(rows):
                self.model.ensure_fetched(int(rows[-1]))
                breaks = np.flatnonzero(np.diff(rows) != 1)
                starts = np.r_[rows[0], rows[breaks + 1]]
                ends = np.r_[rows[breaks], rows[-1]]
                last_col = max(self.model.columnCount() - 1, 0)
                for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
                    selection.select(self.model.index(a, 0), self.model.index(b, last_col))
            sm.select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            if len(rows):
                self.view.scrollTo(self.model.index(int(rows[0]), 0))
        finally:
            self._syncing = False

    def _on_view_selection(self, *_: Any) -> None:
        if self._syncing or self.model is None or self.layer is None:
            return
        rows = []
        for rng in self.view.selectionModel().selection():
            rows.append(np.arange(rng.top(), rng.bottom() + 1))
        rows_arr = np.unique(np.concatenate(rows)) if rows else np.empty(0, dtype=np.int64)
        positions = self.model.positions_of_rows(rows_arr)
        self._map_selection = positions
        self._update_count()
        self.selectionChanged.emit(self.layer, self.model.fids[positions])

    def clear_selection(self) -> None:
        if self.model is not None:
            self.view.selectionModel().clearSelection()

    def _on_only_selected(self, on: bool) -> None:
        if self.model is not None:
            self.model.set_only((self._map_selection if self._map_selection is not None
                                 else np.empty(0, dtype=np.int64)) if on else None)

    def selected_fids(self) -> np.ndarray:
        if self.model is None or self._map_selection is None:
            return np.empty(0, dtype=np.int64)
        return np.sort(self.model.fids[self._map_selection])
