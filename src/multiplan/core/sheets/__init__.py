"""Plan map sheets for public disclosure (issue 9, parts 1–3): the composer and the standard
sheets.

>>> from multiplan.core.sheets import SHEETS, available_sheets, render_sheet
>>> render_sheet(project, "landuse", paper="A3", out_dir="exports/maps")

See :mod:`.composer` (true scale, strip-rendered PNG, fonts), :mod:`.layout` (paper sizes,
the scale-fitting and scale-bar rules), :mod:`.themes` (what each sheet shows, colours) and
:mod:`.elements` (legend, north arrow, scale bar, title block, inset, watermark).

Project settings the sheets read (all optional): ``plan_period`` ("2021—2035年"),
``plan_title`` (replaces the whole first title line), ``plan_organisation`` (编制单位),
``plan_date`` (编制日期, default this month), ``data_source_note`` (数据来源, default: the
layers drawn), ``sheet_inset_layer`` (polygons drawn round the county in the locator
inset, e.g. the city's districts), and the ones the maps depend on (``plan_layer``,
``sansheng_overrides``).

:class:`SheetResult`: ``title`` is the plan title (the first title line, e.g.
长兴县国土空间总体规划（2021—2035年）), ``sheet_name`` the sheet's own name, ``legend`` the
thematic classes present in the frame as (code, name), ``reference_legend`` the base-map
entries, ``extent`` the frame's ground extent in the project CRS, ``scale`` N of 1:N.
Gating (published state, 审图号 required, watermark for drafts) is the caller's job
(:mod:`multiplan.core.publish`); the composer only prints what it is given.
"""

from .composer import (
    CRS_TEXT,
    HEIGHT_TEXT,
    SHEETS,
    SheetResult,
    SheetSpec,
    available_sheets,
    compose_sheet,
    plan_title,
    render_sheet,
    sheet_availability,
    write_png_strips,
)
from .layout import PAPER_MM, fit_scale, format_scale, make_layout, nice_scale, paper_size
from .themes import SheetError, styles_version

__all__ = [
    "CRS_TEXT",
    "HEIGHT_TEXT",
    "PAPER_MM",
    "SHEETS",
    "SheetError",
    "SheetResult",
    "SheetSpec",
    "available_sheets",
    "compose_sheet",
    "fit_scale",
    "format_scale",
    "make_layout",
    "nice_scale",
    "paper_size",
    "plan_title",
    "render_sheet",
    "sheet_availability",
    "styles_version",
    "write_png_strips",
]
