"""Interface translations: Chinese source strings, English from resources/i18n (.ts → .qm
with Qt's lrelease). The tests check that the committed files are complete and current and
that ``--lang en`` really gives an English window."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from multiplan.gui import app as gui_app
from multiplan.gui import i18n
from multiplan.gui.main_window import MainWindow

PLACEHOLDER = re.compile(r"\{\d\}")


def messages(ts: Path) -> dict[tuple[str, str], ET.Element]:
    out = {}
    for ctx in ET.parse(ts).getroot().iter("context"):
        name = ctx.find("name").text
        for msg in ctx.iter("message"):
            out[(name, msg.find("source").text)] = msg.find("translation")
    return out


def test_every_string_has_a_finished_english_translation() -> None:
    msgs = messages(i18n.ts_path("en"))
    assert len(msgs) > 150
    for (ctx, src), tr in msgs.items():
        assert tr.get("type") not in ("unfinished", "vanished", "obsolete"), (ctx, src)
        assert tr.text and tr.text.strip(), (ctx, src)
        assert sorted(PLACEHOLDER.findall(src)) == sorted(PLACEHOLDER.findall(tr.text)), src


def test_the_ts_file_covers_the_sources(tmp_path: Path) -> None:
    """lupdate over the GUI sources finds nothing new and nothing gone."""
    ts = tmp_path / "check.ts"
    shutil.copy(i18n.ts_path("en"), ts)
    subprocess.run([i18n._tool("lupdate"), "-silent", "-locations", "none",
                    *map(str, i18n.sources()), "-ts", str(ts)], check=True)
    before = {k for k in messages(i18n.ts_path("en"))}
    after = {k for k, tr in messages(ts).items() if tr.get("type") not in ("vanished",
                                                                            "obsolete")}
    assert after == before, (f"new: {sorted(after - before)[:5]}; "
                             f"gone: {sorted(before - after)[:5]} — run "
                             f"`python -m multiplan.gui.i18n update` and translate")


def test_the_qm_file_is_built_from_the_ts(tmp_path: Path) -> None:
    built = i18n.build("en", tmp_path / "fresh.qm")
    assert built.read_bytes() == i18n.qm_path("en").read_bytes(), \
        "run `python -m multiplan.gui.i18n build`"


@pytest.fixture
def english(qapp):
    assert i18n.install(qapp, "en") == "en"
    yield
    i18n.install(qapp, "zh")


def test_english_window(english, qtbot, tmp_path: Path, dialogs) -> None:
    win = MainWindow(None, lang="en")
    qtbot.addWidget(win)
    assert [a.text() for a in win.menuBar().actions()] == \
        ["Project", "Layer", "Analysis", "Review", "Publish", "Help"]
    assert win.open_action.text() == "Open project…"
    assert win.layer_tree.headerItem().text(0) == "Layer"
    assert win.canvas.hint == "Open a project (Ctrl+O)"
    # core errors follow the window's language
    assert win.open_project(tmp_path) is False
    assert "not a multiplan project" in dialogs[-1][2]


def test_lang_option_starts_an_english_window(qtbot, monkeypatch) -> None:
    """``python -m multiplan.gui.app --lang en``: the event loop itself is replaced (a real
    exec/exit cycle inside the test session would stop later tests' queued signals)."""
    seen: list[list[str]] = []
    # windows other tests left open are not the one the app starts
    before = {id(w) for w in QApplication.topLevelWidgets()}

    def fake_exec(self) -> int:
        for w in QApplication.topLevelWidgets():
            if isinstance(w, MainWindow) and w.isVisible() and id(w) not in before:
                seen.append([a.text() for a in w.menuBar().actions()])
                qtbot.addWidget(w)
        return 0

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    try:
        assert gui_app.main(["--lang", "en"]) == 0
    finally:
        i18n.install(QApplication.instance(), "zh")
    # the app also installs the editing tools, whose 编辑 menu is translated too
    assert seen == [["Project", "Edit", "Layer", "Analysis", "Review", "Publish", "Help"]]
