"""How layers look: styles per role, classes (legend entries) per layer, their colours.

* Classified plan layers (those carrying the unified ``mp_code`` column) are filled per
  用地用海 2023 class with the official colours (《市级国土空间总体规划制图规范（试行）》
  附录B, from ``resources/standards/ydyh2023.json``); each class is a legend entry.
* Control lines and boundaries keep a role style. The official 三区三线 symbology was not
  found in our sources (domain.md §3.3); these follow common practice and are provisional:
  red outline for 生态保护红线, yellow hatch for 永久基本农田, purple dashed outline for
  城镇开发边界.
* 规划分区 and 主体功能区 are drawn by zone name. No colour table for them was found either
  (domain.md: "No colour table for 规划分区 was found"); the colours below are provisional
  and only meant to be told apart.
* The conflict register is drawn by severity.

Qt is used only for the renderer's style dataclass and for translating labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from PySide6.QtCore import QCoreApplication

from multiplan.core.classification import load_scheme
from multiplan.core.layers import LayerRecord

from .map_canvas.render import LayerStyle

#: The scheme of the unified ``mp_code`` column written on import.
UNIFIED_SCHEME = "ydyh2023"
FALLBACK_FILL = (200, 200, 200)

#: Name of the pseudo-layer showing the conflict register (差异图斑), table ``mp_conflicts``.
CONFLICTS_LAYER = "mp_conflicts"

ROLE_STYLES: dict[str, LayerStyle] = {
    "eco_redline": LayerStyle(fill=None, pen=(220, 20, 20), pen_width=2.0, antialias=True),
    "basic_farmland": LayerStyle(fill=(230, 180, 0), pen=(215, 170, 0), hatch=True,
                                 outline_min_px=0.0, opacity=0.6),
    "urban_boundary": LayerStyle(fill=None, pen=(150, 40, 200), pen_width=2.0, dash=True,
                                 antialias=True),
    "admin_boundary": LayerStyle(fill=None, pen=(40, 40, 40), pen_width=2.0, antialias=True),
    "township": LayerStyle(fill=None, pen=(110, 110, 110), pen_width=1.0, dash=True),
    "water": LayerStyle(fill=(51, 142, 192), pen=(30, 100, 170), pen_width=1.0,
                        antialias=True),
}
DEFAULT_STYLE = LayerStyle(fill=(200, 200, 200), pen=(110, 110, 110))
CLASSIFIED_STYLE = LayerStyle(fill=FALLBACK_FILL, pen=(120, 120, 120))
ZONE_STYLE = LayerStyle(fill=(200, 200, 200), pen=(90, 90, 90), opacity=0.85)
CONFLICT_STYLE = LayerStyle(fill=(230, 60, 60), pen=(150, 0, 0), outline_min_px=3.0)

#: Provisional zone colours (see the module docstring).
ZONE_COLOURS: dict[str, tuple[int, int, int]] = {
    "生态保护区": (56, 142, 60), "生态控制区": (139, 195, 74), "农田保护区": (255, 235, 130),
    "城镇发展区": (244, 121, 66), "乡村发展区": (222, 196, 140), "矿产能源发展区": (141, 110, 99),
    "海洋发展区": (100, 181, 246), "重点开发区": (239, 83, 80), "优化开发区": (255, 167, 38),
    "农产品主产区": (255, 238, 88), "重点生态功能区": (67, 160, 71),
    "集中建设区": (244, 121, 66), "弹性发展区": (255, 183, 77), "特别用途区": (161, 136, 127),
}
#: Colours for other categorised values (Tableau 10; distinct, colour-blind friendlier).
QUALITATIVE = [(78, 121, 167), (242, 142, 43), (225, 87, 89), (118, 183, 178), (89, 161, 79),
               (237, 201, 72), (176, 122, 161), (255, 157, 167), (156, 117, 95),
               (186, 176, 172)]
SEVERITY_COLOURS: dict[str, tuple[int, int, int]] = {
    "冲突": (220, 30, 30), "警告": (245, 140, 20), "提示": (250, 220, 60), "一致": (190, 190, 190),
}
SLIVER_COLOUR = (150, 150, 150)

#: Roles categorised by their name field.
ZONE_ROLES = ("planning_zone", "main_function_zone")


@dataclass
class Classes:
    """The classes of a layer: per-feature class index and, per class, colour, label,
    count. ``column`` is the attribute the classes come from (None: a single class)."""

    index: np.ndarray
    palette: list[tuple[int, ...]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    column: str | None = None
    values: list[str] = field(default_factory=list)


def _categorise(values: pd.Series, colour_of, label_of=None) -> Classes:
    vals = values.astype("string").fillna("").to_numpy(dtype=object)
    uniq, inverse, counts = np.unique(vals.astype(str), return_inverse=True, return_counts=True)
    palette = [tuple(colour_of(v, i)) for i, v in enumerate(uniq)]
    labels = [label_of(v) if label_of else (v or "—") for v in uniq]
    return Classes(inverse.astype(np.int32), palette, labels, counts.tolist(),
                   values.name if isinstance(values.name, str) else None,
                   [str(v) for v in uniq])


def classify(rec: LayerRecord, attrs: pd.DataFrame) -> Classes:
    """The legend classes of a vector layer from its attributes."""
    n = len(attrs)
    if rec.name == CONFLICTS_LAYER and "severity" in attrs.columns:
        sev = attrs["severity"].astype("string").fillna("")
        if "sliver" in attrs.columns:
            sliver = attrs["sliver"].fillna(0).astype(int) == 1
            sev = sev.where(~sliver, "~sliver")
        sev.name = "severity"

        def colour(v: str, i: int) -> tuple[int, int, int]:
            return SEVERITY_COLOURS.get(v, SLIVER_COLOUR)

        def label(v: str) -> str:
            if v == "~sliver":
                return QCoreApplication.translate("styles", "碎片（不计入统计）")
            return v

        return _categorise(sev, colour, label)
    if rec.role not in ROLE_STYLES and "mp_code" in attrs.columns and (rec.code_field
                                                                     or rec.scheme):
        scheme = load_scheme(UNIFIED_SCHEME)
        codes = attrs["mp_code"]
        codes.name = "mp_code"

        def colour(v: str, i: int) -> tuple[int, int, int]:
            return scheme.colour(v)[:3] if v else FALLBACK_FILL

        def label(v: str) -> str:
            if not v:
                return QCoreApplication.translate("styles", "（无代码）")
            return f"{v} {scheme.name(v) or ''}".strip()

        return _categorise(codes, colour, label)
    if rec.role in ZONE_ROLES and rec.name_field and rec.name_field in attrs.columns:
        col = attrs[rec.name_field]

        def colour(v: str, i: int) -> tuple[int, int, int]:
            return ZONE_COLOURS.get(v, QUALITATIVE[i % len(QUALITATIVE)])

        return _categorise(col, colour)
    return Classes(np.zeros(n, dtype=np.int32), [], [], [n])


def style_for(rec: LayerRecord, classes: Classes | None = None) -> LayerStyle:
    if rec.name == CONFLICTS_LAYER:
        return CONFLICT_STYLE.copy()
    if classes is not None and classes.column and rec.role in ZONE_ROLES:
        return ZONE_STYLE.copy()
    if rec.role in ROLE_STYLES:
        return ROLE_STYLES[rec.role].copy()
    if classes is not None and classes.column:
        return CLASSIFIED_STYLE.copy()
    return DEFAULT_STYLE.copy()


def swatch_colours(style: LayerStyle, classes: Classes | None) -> list[tuple[int, ...]]:
    """Colours for legend swatches: one per class, or the layer's own look."""
    if classes is not None and classes.palette:
        return list(classes.palette)
    return [style.fill if style.fill is not None else style.pen]
