"""Plan map sheets for public disclosure (issue 9, parts 1–3): the composer and the standard
sheets.

>>> from multiplan.core.sheets import SHEETS, available_sheets, render_sheet
>>> render_sheet(project, "landuse", paper="A3", out_dir="exports/maps")

See :mod:`.composer` (true scale, strip-rendered PNG, fonts), :mod:`.layout` (paper sizes,
the scale-fitting and scale-bar rules), :mod:`.themes` (what each sheet shows, colours) and
:mod:`.elements` (legend, north arrow, scale bar, title block, inset, watermark).
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
