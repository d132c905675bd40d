"""The CJK font every matplotlib output of multiplan uses (charts, reports, map sheets).

matplotlib picks the JP face of ``NotoSansCJK-Regular.ttc`` unless the SC family is named,
so the Simplified-Chinese family is named explicitly (platform-notes.md, Fonts). With
``pdf.fonttype`` 42 the font is embedded as TrueType, so ``pdffonts`` lists it ``emb yes``
and ``pdftotext`` gives the Chinese text back.

No Qt here: the desktop app has its own font choice (gui/app.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache

__all__ = ["CJK_FAMILIES", "cjk_family", "cjk_font", "cjk_rc"]

#: Simplified-Chinese families, best first: Noto Sans CJK SC (fonts-noto-cjk), Source Han
#: Sans SC (the same design under Adobe's name), WenQuanYi Micro Hei (fonts-wqy-microhei).
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei")


@cache
def _installed() -> frozenset[str]:
    from matplotlib import font_manager

    return frozenset(f.name for f in font_manager.fontManager.ttflist)


def cjk_font() -> str | None:
    """The first installed family of :data:`CJK_FAMILIES`, or None if none is installed."""
    names = _installed()
    for fam in CJK_FAMILIES:
        if fam in names:
            return fam
    return None


#: Another name for :func:`cjk_font`.
cjk_family = cjk_font


@contextlib.contextmanager
def cjk_rc(*, embed: bool = True) -> Iterator[str | None]:
    """matplotlib settings for Chinese text inside the block: the CJK family first in
    ``font.sans-serif``, a plain minus sign (the CJK fonts lack U+2212), and with ``embed``
    TrueType (42) fonts in PDF and PS output. Yields the family (None: none installed, the
    text falls back to DejaVu Sans and Chinese shows as boxes)."""
    import matplotlib

    fam = cjk_font()
    rc: dict[str, object] = {"axes.unicode_minus": False, "font.family": "sans-serif"}
    if fam:
        rest = [f for f in matplotlib.rcParams["font.sans-serif"] if f != fam]
        rc["font.sans-serif"] = [fam, *rest]
    if embed:
        rc["pdf.fonttype"] = 42
        rc["ps.fonttype"] = 42
    with matplotlib.rc_context(rc):
        yield fam
