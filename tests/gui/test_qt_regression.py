"""Guards against PySide6 6.12.0's crash on CPython 3.11 (platform notes).

There every call of a Qt method that returns nothing drops one reference to None; after a few
thousand calls the interpreter aborts with ``Fatal Python error: none_dealloc``. The calls run
in a subprocess so that a crash fails this test instead of killing the test run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CALLS = 30_000

SCRIPT = textwrap.dedent(f"""
    import sys
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPainterPath, QPolygonF
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    img = QImage(64, 64, QImage.Format.Format_ARGB32)
    painter = QPainter(img)
    brush = QBrush(QColor(10, 20, 30))
    path = QPainterPath()
    poly = QPolygonF()
    for i in range({CALLS}):
        path.moveTo(i % 50, 0.0)          # void
        path.lineTo(0.0, i % 50)          # void
        painter.setBrush(brush)           # void
        if i % 100 == 0:
            poly.resize(i % 7)            # void
            path = QPainterPath()
    painter.drawPath(path)
    painter.end()
    print("ok", {CALLS})
""")


def test_void_qt_methods_do_not_crash_the_interpreter() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], check=False, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, (
        f"exit {proc.returncode}; stderr:\n{proc.stderr[-2000:]}")
    assert proc.stdout.strip() == f"ok {CALLS}"


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the crash is specific to 3.11")
def test_pyside6_612_not_installed_on_python_311() -> None:
    import PySide6

    assert PySide6.__version__ != "6.12.0", (
        "PySide6 6.12.0 crashes CPython 3.11 (none_dealloc); pyproject pins 6.11.3 there")
