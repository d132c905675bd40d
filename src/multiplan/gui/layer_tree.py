"""The layer tree: layers grouped as 三区三线 / 审查结果 / 国家级 / 省级 / 市级 / 县级 / 评价结果,
with visibility boxes, drag to reorder (within a group; groups among themselves), legend
swatches per class, and a context menu (zoom to layer, attribute table, properties).

The tree's order is the draw order: a layer higher in the tree is drawn above the ones below
it. User actions are reported as signals (the window turns them into undoable commands); the
``apply_*`` methods change the tree without emitting them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QDropEvent, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QMenu,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from multiplan.core.layers import CONTROL_LINE_ROLES, LayerRecord

NAME_ROLE = Qt.ItemDataRole.UserRole  # layer name on a layer item
GROUP_ROLE = Qt.ItemDataRole.UserRole + 1  # group key on a group item
LEGEND_ROLE = Qt.ItemDataRole.UserRole + 2  # class index on a legend item

#: Group keys, top (drawn last) to bottom.
GROUPS = ["control", "review", "national", "provincial", "city", "county", "assessment"]
#: Legends with more classes than this start collapsed.
EXPAND_MAX = 8

#: Default order inside a group, top first (lower rank = higher in the tree).
_ROLE_RANK = {"admin_boundary": 0, "township": 1, "eco_redline": 2, "urban_boundary": 3,
              "basic_farmland": 4, "water": 5, "reference": 6, "main_function_zone": 7,
              "planning_zone": 8, "spatial_plan": 9, "land_use_plan": 10, "urban_plan": 11,
              "forest_plan": 12, "current_use": 13, "assessment_result": 14,
              "assessment_factor": 15}


def group_of(rec: LayerRecord) -> str:
    if rec.name == "mp_conflicts":
        return "review"
    if rec.role in CONTROL_LINE_ROLES:
        return "control"
    if rec.role == "assessment_result":
        return "assessment"
    return rec.level if rec.level in GROUPS else "county"


def default_rank(rec: LayerRecord) -> tuple[int, int]:
    """Sort key inside a group: boundaries and lines above areas, rasters at the bottom."""
    line = 0 if (rec.geometry_type or "").endswith("LineString") else 1
    raster = 1 if rec.kind == "raster" else 0
    return (raster, _ROLE_RANK.get(rec.role, 9) * 2 + line)


_swatches: dict[tuple, QIcon] = {}


def swatch(fill: Sequence[int] | None, outline: Sequence[int] | None = None, size: int = 14,
           hatch: bool = False, line: bool = False, dash: bool = False) -> QIcon:
    """A legend swatch: a filled (or hatched, or empty) square, or a line (cached)."""
    key = (tuple(fill) if fill is not None else None, tuple(outline or ()), size, hatch, line,
           dash)
    icon = _swatches.get(key)
    if icon is None:
        icon = _swatches[key] = _draw_swatch(fill, outline, size, hatch, line, dash)
    return icon


def _draw_swatch(fill: Sequence[int] | None, outline: Sequence[int] | None, size: int,
                 hatch: bool, line: bool, dash: bool) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    if line:
        pen = QPen(QColor(*(outline or fill or (90, 90, 90))[:3]), 2)
        if dash:
            pen.setStyle(Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.drawLine(1, size // 2, size - 2, size // 2)
    else:
        rect = QRect(1, 1, size - 3, size - 3)
        if fill is not None:
            p.fillRect(rect, QBrush(QColor(*fill[:3]), Qt.BrushStyle.BDiagPattern if hatch
                                    else Qt.BrushStyle.SolidPattern))
        pen = QPen(QColor(*(outline or (90, 90, 90))[:3]), 2 if fill is None else 1)
        if dash:
            pen.setStyle(Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(rect)
    p.end()
    return QIcon(pm)


class LayerTree(QTreeWidget):
    visibilityToggled = Signal(object)  # list of (layer name, visible) the user changed
    orderChanged = Signal(object, object)  # old order, new order (lists of (group, [names]))
    zoomToLayer = Signal(str)
    propertiesRequested = Signal(str)
    attributesRequested = Signal(str)
    currentLayerChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels([self.tr("图层"), self.tr("要素数")])
        header = self.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        self.setDragEnabled(True)
        self.setAcceptDrops(True)
        self.setDropIndicatorShown(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.itemChanged.connect(self._on_item_changed)
        self.currentItemChanged.connect(self._on_current)
        self.itemDoubleClicked.connect(self._on_double_click)
        self._applying = 0
        self.group_titles = {
            "control": self.tr("三区三线"), "review": self.tr("审查结果"),
            "national": self.tr("国家级"), "provincial": self.tr("省级"),
            "city": self.tr("市级"), "county": self.tr("县级"),
            "assessment": self.tr("评价结果"),
        }

    # ------------------------------------------------------------------ building
    def clear_layers(self) -> None:
        self._applying += 1
        try:
            self.clear()
        finally:
            self._applying -= 1

    def group_item(self, key: str, create: bool = True) -> QTreeWidgetItem | None:
        for i in range(self.topLevelItemCount()):
            it = self.topLevelItem(i)
            if it.data(0, GROUP_ROLE) == key:
                return it
        if not create:
            return None
        it = QTreeWidgetItem([self.group_titles.get(key, key), ""])
        it.setData(0, GROUP_ROLE, key)
        it.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                    | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsDragEnabled)
        it.setCheckState(0, Qt.CheckState.Checked)
        font = it.font(0)
        font.setBold(True)
        it.setFont(0, font)
        # keep the canonical group order when inserting
        rank = GROUPS.index(key) if key in GROUPS else len(GROUPS)
        pos = self.topLevelItemCount()
        for i in range(self.topLevelItemCount()):
            k = self.topLevelItem(i).data(0, GROUP_ROLE)
            if (GROUPS.index(k) if k in GROUPS else len(GROUPS)) > rank:
                pos = i
                break
        self._applying += 1
        try:
            self.insertTopLevelItem(pos, it)
            it.setExpanded(True)
        finally:
            self._applying -= 1
        return it

    def add_layer(self, rec: LayerRecord, visible: bool, group: str | None = None,
                  index: int | None = None) -> QTreeWidgetItem:
        """Add a layer item (at ``index`` in its group, default: by the default rank)."""
        group = group or group_of(rec)
        parent = self.group_item(group)
        assert parent is not None
        count = "" if rec.feature_count is None else f"{rec.feature_count:,}"
        item = QTreeWidgetItem([rec.title or rec.name, count])
        item.setData(0, NAME_ROLE, rec.name)
        item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                      | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsDragEnabled)
        tip = f"{rec.name} · {rec.geometry_type or rec.kind}"
        if rec.scheme:
            tip += f" · {rec.scheme}"
        item.setToolTip(0, tip)
        self._applying += 1
        try:
            if index is None:
                key = default_rank(rec)
                index = parent.childCount()
                for i in range(parent.childCount()):
                    other = parent.child(i).data(0, Qt.ItemDataRole.UserRole + 3)
                    if other is not None and tuple(other) > key:
                        index = i
                        break
            item.setData(0, Qt.ItemDataRole.UserRole + 3, list(default_rank(rec)))
            parent.insertChild(index, item)
            item.setCheckState(0, Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)
            self._sync_group_state(parent)
        finally:
            self._applying -= 1
        return item

    def set_legend(self, name: str, entries: Sequence[tuple[str, Sequence[int] | None]],
                   counts: Sequence[int] | None = None, *, hatch: bool = False,
                   line: bool = False, outline: Sequence[int] | None = None,
                   dash: bool = False) -> None:
        """Legend of a layer: a swatch per class as child items (one class: the layer's
        own icon)."""
        item = self.layer_item(name)
        if item is None:
            return
        self._applying += 1
        try:
            for i in reversed(range(item.childCount())):
                item.removeChild(item.child(i))
            if len(entries) == 1:
                item.setIcon(0, swatch(entries[0][1], outline, hatch=hatch, line=line,
                                       dash=dash))
            else:
                item.setIcon(0, QIcon())
                for k, (label, colour) in enumerate(entries):
                    n = "" if counts is None or k >= len(counts) else f"{counts[k]:,}"
                    child = QTreeWidgetItem([label, n])
                    child.setIcon(0, swatch(colour, outline, hatch=hatch, line=line, dash=dash))
                    child.setData(0, LEGEND_ROLE, k)
                    child.setFlags(Qt.ItemFlag.ItemIsEnabled)
                    child.setTextAlignment(1, Qt.AlignmentFlag.AlignRight
                                           | Qt.AlignmentFlag.AlignVCenter)
                    item.addChild(child)
                item.setExpanded(len(entries) <= EXPAND_MAX)
        finally:
            self._applying -= 1

    def set_layer_error(self, name: str, text: str) -> None:
        item = self.layer_item(name)
        if item is None:
            return
        self._applying += 1
        try:
            item.setCheckState(0, Qt.CheckState.Unchecked)
            item.setDisabled(True)
            item.setToolTip(0, text)
            item.setForeground(0, QColor(160, 0, 0))
        finally:
            self._applying -= 1

    def set_loading(self, name: str, loading: bool) -> None:
        item = self.layer_item(name)
        if item is not None:
            self._applying += 1
            try:
                item.setForeground(0, QColor(150, 150, 150) if loading else
                                   self.palette().text().color())
            finally:
                self._applying -= 1

    def remove_layer(self, name: str) -> None:
        item = self.layer_item(name)
        if item is None:
            return
        parent = item.parent()
        self._applying += 1
        try:
            parent.removeChild(item)
            if parent.childCount() == 0:
                self.takeTopLevelItem(self.indexOfTopLevelItem(parent))
            else:
                self._sync_group_state(parent)
        finally:
            self._applying -= 1

    # ------------------------------------------------------------------ lookup
    def layer_items(self) -> Iterator[QTreeWidgetItem]:
        for g in range(self.topLevelItemCount()):
            group = self.topLevelItem(g)
            for i in range(group.childCount()):
                yield group.child(i)

    def layer_item(self, name: str) -> QTreeWidgetItem | None:
        for item in self.layer_items():
            if item.data(0, NAME_ROLE) == name:
                return item
        return None

    def layer_names(self) -> list[str]:
        """Layer names top to bottom (the reverse of the draw order)."""
        return [it.data(0, NAME_ROLE) for it in self.layer_items()]

    def is_checked(self, name: str) -> bool:
        item = self.layer_item(name)
        return item is not None and item.checkState(0) == Qt.CheckState.Checked

    def current_layer(self) -> str | None:
        item = self.currentItem()
        while item is not None and item.data(0, NAME_ROLE) is None:
            item = item.parent() if item.data(0, LEGEND_ROLE) is not None else None
        return item.data(0, NAME_ROLE) if item is not None else None

    def order(self) -> list[tuple[str, list[str]]]:
        """The tree's order: (group key, [layer names top first]) top first."""
        out = []
        for g in range(self.topLevelItemCount()):
            group = self.topLevelItem(g)
            out.append((group.data(0, GROUP_ROLE),
                        [group.child(i).data(0, NAME_ROLE) for i in range(group.childCount())]))
        return out

    # ------------------------------------------------------------------ applying (no signals)
    def apply_visibility(self, name: str, visible: bool) -> None:
        item = self.layer_item(name)
        if item is None:
            return
        self._applying += 1
        try:
            item.setCheckState(0, Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)
            self._sync_group_state(item.parent())
        finally:
            self._applying -= 1

    def apply_order(self, order: Sequence[tuple[str, Sequence[str]]]) -> None:
        """Rearrange groups and layers to ``order`` (as returned by :meth:`order`)."""
        self._applying += 1
        try:
            expanded = {it.data(0, NAME_ROLE): it.isExpanded() for it in self.layer_items()}
            gexp = {self.topLevelItem(i).data(0, GROUP_ROLE): self.topLevelItem(i).isExpanded()
                    for i in range(self.topLevelItemCount())}
            groups = {self.topLevelItem(i).data(0, GROUP_ROLE): self.topLevelItem(i)
                      for i in range(self.topLevelItemCount())}
            items = {}
            for key, g in groups.items():
                for i in reversed(range(g.childCount())):
                    child = g.takeChild(i)
                    items[child.data(0, NAME_ROLE)] = (key, child)
            while self.topLevelItemCount():
                self.takeTopLevelItem(0)
            placed = set()
            for key, names in order:
                g = groups.get(key)
                if g is None:
                    continue
                self.addTopLevelItem(g)
                for name in names:
                    if name in items and name not in placed:
                        g.addChild(items[name][1])
                        placed.add(name)
            for key, g in groups.items():  # groups/layers the order did not mention
                if self.indexOfTopLevelItem(g) < 0:
                    self.addTopLevelItem(g)
            for name, (key, child) in items.items():
                if name not in placed:
                    groups[key].addChild(child)
            for key, g in groups.items():
                g.setExpanded(gexp.get(key, True))
                self._sync_group_state(g)
            for it in self.layer_items():
                it.setExpanded(expanded.get(it.data(0, NAME_ROLE), False))
        finally:
            self._applying -= 1

    def move_layer(self, name: str, index: int) -> bool:
        """Move a layer to ``index`` within its group (as a user drag would)."""
        item = self.layer_item(name)
        if item is None:
            return False
        parent = item.parent()
        index = max(0, min(index, parent.childCount() - 1))
        if parent.indexOfChild(item) == index:
            return False
        old = self.order()
        self._applying += 1
        try:
            expanded = item.isExpanded()
            parent.takeChild(parent.indexOfChild(item))
            parent.insertChild(index, item)
            item.setExpanded(expanded)
        finally:
            self._applying -= 1
        self.orderChanged.emit(old, self.order())
        return True

    def move_group(self, key: str, index: int) -> bool:
        group = self.group_item(key, create=False)
        if group is None:
            return False
        index = max(0, min(index, self.topLevelItemCount() - 1))
        if self.indexOfTopLevelItem(group) == index:
            return False
        old = self.order()
        new = [o for o in old if o[0] != key]
        new.insert(index, next(o for o in old if o[0] == key))
        self.apply_order(new)
        self.orderChanged.emit(old, self.order())
        return True

    # ------------------------------------------------------------------ drag and drop
    def _drop_target(self, event: QDropEvent) -> tuple[QTreeWidgetItem, int] | None:
        """(parent, index) where the dragged item would land, or None if not allowed."""
        dragged = self.currentItem()
        if dragged is None or dragged.data(0, LEGEND_ROLE) is not None:
            return None
        pos = event.position().toPoint()
        target = self.itemAt(pos)
        below = False
        if target is not None:
            # upper half of a row: above it; lower half: below it (computed here, not taken
            # from the view, so that the rule is the same for every drop)
            rect = self.visualItemRect(target)
            below = pos.y() > rect.center().y()
            if target.data(0, LEGEND_ROLE) is not None:  # onto a legend entry: its layer
                target, below = target.parent(), True
        if dragged.parent() is None:  # a group: among the groups
            if target is None:
                return self.invisibleRootItem(), self.topLevelItemCount()
            if target.parent() is not None:
                target = target.parent()
            i = self.indexOfTopLevelItem(target)
            return self.invisibleRootItem(), i + (1 if below else 0)
        parent = dragged.parent()
        if target is None:
            return None
        if target is parent:  # onto its own group's row: to the top
            return parent, 0
        if target.parent() is not parent:
            return None  # layers stay in their group (the group is their level)
        i = parent.indexOfChild(target)
        return parent, i + (1 if below else 0)

    def dragMoveEvent(self, event) -> None:
        super().dragMoveEvent(event)
        if self._drop_target(event) is None:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        dest = self._drop_target(event)
        dragged = self.currentItem()
        event.setDropAction(Qt.DropAction.IgnoreAction)
        event.accept()
        if dest is None or dragged is None:
            return
        parent, index = dest
        if dragged.parent() is None:
            current = self.indexOfTopLevelItem(dragged)
            if index > current:
                index -= 1
            self.move_group(dragged.data(0, GROUP_ROLE), index)
        else:
            current = parent.indexOfChild(dragged)
            if index > current:
                index -= 1
            self.move_layer(dragged.data(0, NAME_ROLE), index)

    # ------------------------------------------------------------------ user actions
    def _sync_group_state(self, group: QTreeWidgetItem | None) -> None:
        if group is None or group.parent() is not None:
            return
        states = {group.child(i).checkState(0) for i in range(group.childCount())
                  if not group.child(i).isDisabled()}
        if states == {Qt.CheckState.Checked}:
            state = Qt.CheckState.Checked
        elif states <= {Qt.CheckState.Unchecked}:
            state = Qt.CheckState.Unchecked
        else:
            state = Qt.CheckState.PartiallyChecked
        self._applying += 1
        try:
            group.setCheckState(0, state)
        finally:
            self._applying -= 1

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._applying or column != 0:
            return
        if item.parent() is None:  # a group box: all its layers follow
            visible = item.checkState(0) != Qt.CheckState.Unchecked
            changes = []
            self._applying += 1
            try:
                for i in range(item.childCount()):
                    child = item.child(i)
                    if child.isDisabled():
                        continue
                    was = child.checkState(0) == Qt.CheckState.Checked
                    if was != visible:
                        child.setCheckState(0, Qt.CheckState.Checked if visible
                                            else Qt.CheckState.Unchecked)
                        changes.append((child.data(0, NAME_ROLE), visible))
            finally:
                self._applying -= 1
            self._sync_group_state(item)
            if changes:
                self.visibilityToggled.emit(changes)
            return
        name = item.data(0, NAME_ROLE)
        if name:
            self._sync_group_state(item.parent())
            self.visibilityToggled.emit([(name, item.checkState(0) == Qt.CheckState.Checked)])

    def _on_current(self, *_: object) -> None:
        name = self.current_layer()
        if name:
            self.currentLayerChanged.emit(name)

    def _on_double_click(self, item: QTreeWidgetItem, column: int) -> None:
        name = item.data(0, NAME_ROLE)
        if name:
            self.zoomToLayer.emit(name)

    def _menu(self, pos: QPoint) -> None:
        item = self.itemAt(pos)
        if item is None:
            return
        if item.data(0, LEGEND_ROLE) is not None:
            item = item.parent()
        name = item.data(0, NAME_ROLE)
        if not name:
            return
        menu = QMenu(self)
        menu.addAction(self.tr("缩放至图层"), lambda: self.zoomToLayer.emit(name))
        if not item.isDisabled():
            menu.addAction(self.tr("打开属性表"), lambda: self.attributesRequested.emit(name))
        menu.addSeparator()
        menu.addAction(self.tr("属性…"), lambda: self.propertiesRequested.emit(name))
        menu.exec(self.viewport().mapToGlobal(pos))
