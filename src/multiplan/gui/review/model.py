"""The review table model: a lazy view over the item frame (no item objects per row).

The model keeps the positions of the rows the filters keep, in display order; ``data()``
reads the frame's cells on demand, so a register of 100k pieces costs one index array.
Sorting reorders that array; a decision changes one cell and repaints one row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from .items import (
    SEVERITIES,
    SEVERITY_EN,
    STATUS_EN,
    UNDECIDED,
    Filters,
    ReviewData,
    filter_mask,
)

#: (frame column, header) of the table; the header is translated in :meth:`headerData`.
COLUMN_KEYS = ("item_id", "type", "severity", "area_ha", "township", "pair", "status",
               "reviewer")

SEVERITY_BRUSH = {"冲突": QColor(250, 215, 215), "错误": QColor(250, 215, 215),
                  "警告": QColor(253, 232, 205),
                  "提示": QColor(252, 247, 210)}
STATUS_BRUSH = QColor(222, 242, 222)

Index = QModelIndex | QPersistentModelIndex


class ReviewModel(QAbstractTableModel):
    def __init__(self, lang: str = "zh", parent: Any = None) -> None:
        super().__init__(parent)
        self.lang = lang
        self.data_ = ReviewData(pd.DataFrame(columns=list(COLUMN_KEYS)))
        self.filters = Filters()
        self._rows = np.empty(0, dtype=np.int64)
        self._sort: tuple[int, Qt.SortOrder] | None = None

    # ------------------------------------------------------------------ content
    def headers(self) -> list[str]:
        return [self.tr("编号"), self.tr("类型"), self.tr("严重程度"), self.tr("面积（公顷）"),
                self.tr("乡镇"), self.tr("图层 A × B"), self.tr("决定"), self.tr("审查人")]

    def set_data(self, data: ReviewData) -> None:
        self.beginResetModel()
        self.data_ = data
        self._apply()
        self.endResetModel()

    def set_filters(self, filters: Filters) -> None:
        self.beginResetModel()
        self.filters = filters
        self._apply()
        self.endResetModel()

    def _apply(self) -> None:
        items = self.data_.items
        if not len(items):
            self._rows = np.empty(0, dtype=np.int64)
            return
        self._rows = np.flatnonzero(filter_mask(items, self.filters)).astype(np.int64)
        if self._sort is not None:
            self._rows = self._sorted(self._rows, *self._sort)

    def _key(self, col: int) -> pd.Series:
        items = self.data_.items
        key = COLUMN_KEYS[col]
        if key == "pair":
            return items["layer_a"].astype(str) + "×" + items["layer_b"].astype(str)
        if key == "severity":
            rank = {s: i for i, s in enumerate(SEVERITIES)}
            return items["severity"].map(lambda s: rank.get(s, len(rank)))
        if key == "area_ha":
            return items["area_ha"].fillna(-1.0)
        return items[key].astype(object).where(items[key].notna(), "").astype(str)

    def _sorted(self, rows: np.ndarray, col: int, order: Qt.SortOrder) -> np.ndarray:
        key = pd.Series(self._key(col).to_numpy()[rows])
        asc = order == Qt.SortOrder.AscendingOrder
        idx = key.sort_values(ascending=asc, kind="stable").index.to_numpy()
        return rows[idx]

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(COLUMN_KEYS):
            return
        self.layoutAboutToBeChanged.emit()
        self._sort = (column, order)
        self._rows = self._sorted(self._rows, column, order)
        self.layoutChanged.emit()

    # ------------------------------------------------------------------ access
    def item_row(self, view_row: int) -> int:
        """Position in the item frame of the table row ``view_row``."""
        return int(self._rows[view_row])

    def view_row(self, item_row: int) -> int | None:
        hits = np.flatnonzero(self._rows == item_row)
        return int(hits[0]) if len(hits) else None

    def item(self, view_row: int) -> pd.Series:
        return self.data_.items.iloc[self.item_row(view_row)]

    def item_ids(self) -> list[str]:
        """The ids shown, in display order."""
        return [str(v) for v in self.data_.items["item_id"].to_numpy()[self._rows]]

    def next_undecided(self, start: int, step: int = 1, wrap: bool = True) -> int | None:
        """The next table row after ``start`` (before it when ``step`` is -1) whose item is
        still 待定; -1 as ``start`` begins at the first (or the last) row."""
        n = len(self._rows)
        if not n:
            return None
        status = self.data_.items["status"].to_numpy()[self._rows]
        pending = status == UNDECIDED
        order = np.arange(n)
        if step > 0:
            after = order[order > start]
            before = order[order <= start] if wrap else order[:0]
        else:
            start = n if start < 0 else start
            after = order[order < start][::-1]
            before = order[order >= start][::-1] if wrap else order[:0]
        for seq in (after, before):
            hits = seq[pending[seq]]
            if len(hits):
                return int(hits[0])
        return None

    def update_item(self, item_row: int, **values: Any) -> None:
        """Change cells of one item (e.g. after a decision) and repaint its row only."""
        items = self.data_.items
        for k, v in values.items():
            if k in items.columns:
                items.at[item_row, k] = v
        r = self.view_row(item_row)
        if r is not None:
            self.dataChanged.emit(self.index(r, 0), self.index(r, len(COLUMN_KEYS) - 1))

    # ------------------------------------------------------------------ Qt model
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMN_KEYS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.headers()[section]
        if orientation == Qt.Orientation.Vertical and role == Qt.ItemDataRole.DisplayRole:
            return section + 1
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.item_row(index.row())
        key = COLUMN_KEYS[index.column()]
        items = self.data_.items
        en = self.lang == "en"
        if role == Qt.ItemDataRole.DisplayRole:
            if key == "pair":
                a, b = items.at[row, "layer_a"], items.at[row, "layer_b"]
                return f"{a or '—'} × {b or '—'}"
            if key == "type":
                t, name = items.at[row, "type"], items.at[row, "type_name"]
                return f"{t or ''} {name or ''}".strip()
            if key == "area_ha":
                v = items.at[row, "area_ha"]
                return "" if pd.isna(v) else f"{v:,.4f}"
            v = items.at[row, key]
            if v is None or (isinstance(v, float) and np.isnan(v)):
                return ""
            if en and key == "severity":
                return SEVERITY_EN.get(v, v)
            if en and key == "status":
                return STATUS_EN.get(v, v)
            return str(v)
        if role == Qt.ItemDataRole.TextAlignmentRole and key == "area_ha":
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole:
            if key == "severity":
                c = SEVERITY_BRUSH.get(items.at[row, "severity"])
                return QBrush(c) if c is not None else None
            if key == "status" and items.at[row, "status"] != UNDECIDED:
                return QBrush(STATUS_BRUSH)
        if role == Qt.ItemDataRole.ToolTipRole:
            msg = items.at[row, "message"]
            comment = items.at[row, "comment"]
            parts = [str(v) for v in (msg, comment) if v]
            return "\n".join(parts) or None
        if role == Qt.ItemDataRole.UserRole:
            return str(items.at[row, "item_id"])
        return None
