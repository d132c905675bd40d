"""Interface translations.

Source strings are **Chinese** (the default language needs no translation file and can never
be missing); English comes from ``resources/i18n/multiplan_en.ts``, compiled to
``multiplan_en.qm`` with Qt's ``lrelease`` (the PySide6-Essentials wheel ships it as
``pyside6-lrelease``). Both files are committed.

Update after changing interface text::

    .venv/bin/python -m multiplan.gui.i18n update   # lupdate: new strings into the .ts
    (translate the unfinished entries in the .ts)
    .venv/bin/python -m multiplan.gui.i18n build    # lrelease: .ts → .qm

Core messages are bilingual by themselves (``MultiplanError.text(lang)``), Qt's own dialog
buttons come from Qt's ``qtbase_zh_CN.qm``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QTranslator

I18N_DIR = Path(__file__).resolve().parent.parent / "resources" / "i18n"
GUI_DIR = Path(__file__).resolve().parent
LANGUAGES = ("zh", "en")
_installed: list[QTranslator] = []


def normalise(lang: str | None) -> str:
    return "en" if (lang or "zh").lower().startswith("en") else "zh"


def ts_path(lang: str = "en") -> Path:
    return I18N_DIR / f"multiplan_{lang}.ts"


def qm_path(lang: str = "en") -> Path:
    return I18N_DIR / f"multiplan_{lang}.qm"


def install(app: QCoreApplication, lang: str) -> str:
    """Install the translators for ``lang`` ("zh" or "en"); returns the language in use.

    Chinese is the source language: only Qt's own Chinese strings are loaded. For English the
    compiled ``multiplan_en.qm`` must load, else the interface stays Chinese (and says so on
    stderr).
    """
    for t in _installed:
        app.removeTranslator(t)
    _installed.clear()
    lang = normalise(lang)
    qt_dir = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    if lang == "zh":
        qt = QTranslator(app)
        if qt.load(QLocale(QLocale.Language.Chinese, QLocale.Country.China), "qtbase", "_",
                   qt_dir):
            app.installTranslator(qt)
            _installed.append(qt)
        QLocale.setDefault(QLocale(QLocale.Language.Chinese, QLocale.Country.China))
        return "zh"
    ours = QTranslator(app)
    if not ours.load(str(qm_path("en"))):
        print(f"multiplan: English translation {qm_path('en')} could not be loaded; "
              f"the interface stays Chinese", file=sys.stderr)
        return "zh"
    app.installTranslator(ours)
    _installed.append(ours)
    QLocale.setDefault(QLocale(QLocale.Language.English, QLocale.Country.UnitedStates))
    return "en"


def _tool(name: str) -> str:
    exe = Path(sys.executable).with_name(f"pyside6-{name}")
    if exe.exists():
        return str(exe)
    found = shutil.which(f"pyside6-{name}") or shutil.which(name)
    if not found:
        raise SystemExit(f"pyside6-{name} not found (it comes with PySide6-Essentials)")
    return found


def sources() -> list[Path]:
    return sorted(p for p in GUI_DIR.rglob("*.py") if p.name != "__init__.py")


def update(lang: str = "en") -> None:
    """Run lupdate over the GUI sources into the .ts (keeps existing translations)."""
    I18N_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run([_tool("lupdate"), "-locations", "none", "-source-language", "zh_CN",
                    "-target-language", "en_US", *map(str, sources()), "-ts",
                    str(ts_path(lang))], check=True)


def build(lang: str = "en", out: Path | None = None) -> Path:
    """Compile the .ts into the .qm with lrelease; returns the .qm path."""
    out = out or qm_path(lang)
    subprocess.run([_tool("lrelease"), "-silent", str(ts_path(lang)), "-qm", str(out)],
                   check=True)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ("update", "build"):
        print("usage: python -m multiplan.gui.i18n update|build", file=sys.stderr)
        return 2
    if args[0] == "update":
        update()
    else:
        print(build())
    return 0


if __name__ == "__main__":
    sys.exit(main())
