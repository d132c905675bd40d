"""Start the desktop app: ``run(project, lang)``, or ``python -m multiplan.gui.app [PROJECT]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QApplication

#: Chinese UI font: the SC face of Noto CJK (Debian fonts-noto-cjk). Without naming it, some
#: programs pick the Japanese face of the same .ttc file.
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei")


def get_app(argv: Sequence[str] | None = None) -> QApplication:
    """The QApplication, created on first use (named so QSettings has a home)."""
    app = QApplication.instance()
    if app is None:
        QApplication.setApplicationName("multiplan")
        QApplication.setOrganizationName("multiplan")
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
        families = set(QFontDatabase.families())
        for family in CJK_FAMILIES:
            if family in families:
                font = QFont(family)
                font.setPointSizeF(app.font().pointSizeF())
                app.setFont(font)
                break
    return app  # type: ignore[return-value]


def run(project: str | None, lang: str = "zh", argv: Sequence[str] | None = None) -> int:
    """Open the main window (on ``project`` if given) and run the event loop.

    ``lang`` is ``"zh"`` (default) or ``"en"``: the language of menus, labels and error
    messages. ``argv`` goes to Qt (e.g. ``-qwindowgeometry 1600x1000+0+0``).
    Returns the application's exit code.
    """
    from .main_window import MainWindow

    app = get_app(argv)
    window = MainWindow(project, lang=lang)
    window.show()
    return app.exec()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m multiplan.gui.app",
                                     description="multiplan desktop app / 桌面程序")
    parser.add_argument("project", nargs="?", help="project folder / 项目文件夹")
    parser.add_argument("--lang", default="zh", choices=["zh", "en"])
    args, qt_args = parser.parse_known_args(argv)
    return run(args.project, args.lang, argv=[sys.argv[0], *qt_args])


if __name__ == "__main__":
    sys.exit(main())
