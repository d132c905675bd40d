"""Start the desktop app: ``run(project, lang)``, or ``python -m multiplan.gui.app [PROJECT]
[--lang zh|en]``.

Qt is imported inside the functions: worker processes import this module when it is the
program's main module (multiprocessing does that) and must stay light.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

#: Chinese UI font: the SC face of Noto CJK (Debian fonts-noto-cjk). Without naming it, some
#: programs pick the Japanese face of the same .ttc file.
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei")


def get_app(argv: Sequence[str] | None = None) -> Any:
    """The QApplication, created on first use (named so QSettings has a home)."""
    from PySide6.QtGui import QFont, QFontDatabase
    from PySide6.QtWidgets import QApplication

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
        from .map_canvas.canvas import stop_all_render_threads

        app.aboutToQuit.connect(stop_all_render_threads)
    return app


def language(lang: str | None) -> str:
    """The interface language: ``lang`` if given, else the saved setting, else Chinese."""
    from . import i18n

    if lang:
        return i18n.normalise(lang)
    from .main_window import settings

    return i18n.normalise(str(settings().value("language", "zh")))


def run(project: str | None, lang: str | None = None,
        argv: Sequence[str] | None = None, *, review: bool = False,
        user: str | None = None) -> int:
    """Open the main window (on ``project`` if given) and run the event loop.

    ``lang`` is ``"zh"`` or ``"en"`` (None: the setting chosen in 帮助 → 界面语言, default
    Chinese). ``argv`` goes to Qt (e.g. ``-qwindowgeometry 1600x1000+0+0``). ``review``
    opens the project in review mode (plan data read-only) as ``user``. Returns the
    application's exit code.
    """
    from . import i18n
    from .editing import install_editing
    from .main_window import MainWindow

    app = get_app(argv)
    used = i18n.install(app, language(lang))
    window = MainWindow(project, lang=used, mode="review" if review else None, user=user)
    window.editing = install_editing(window)  # the 编辑 menu and toolbar (issue 7)
    window.show()
    return app.exec()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m multiplan.gui.app",
                                     description="multiplan desktop app / 桌面程序")
    parser.add_argument("project", nargs="?", help="project folder / 项目文件夹")
    parser.add_argument("--lang", default=None, choices=["zh", "en"],
                        help="界面语言 / interface language (default: the saved setting, zh)")
    parser.add_argument("--review", action="store_true",
                        help="评审模式打开（规划数据只读）/ open in review mode (plan data "
                             "read-only)")
    parser.add_argument("--user", default=None, metavar="NAME",
                        help="评议人或编制人姓名 / reviewer or planner name")
    args, qt_args = parser.parse_known_args(argv)
    return run(args.project, args.lang, argv=[sys.argv[0], *qt_args], review=args.review,
               user=args.user)


if __name__ == "__main__":
    sys.exit(main())
