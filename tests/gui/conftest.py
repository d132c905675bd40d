"""Fixtures for the desktop-app tests (pytest-qt, offscreen; see tests/conftest.py).

* Message boxes never block: every static QMessageBox call is recorded in ``dialogs`` and
  answered with a safe default (Discard for "save changes?", No for "quit while running?").
* ``sample`` is the committed 长兴县 project (read only); ``sample_copy`` a copy in tmp_path
  for tests that write.
* ``open_window`` opens a window on a project and waits until its visible layers are read and
  drawn — with ``qtbot.waitUntil``, never with sleeps.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from multiplan.gui.main_window import MainWindow


@pytest.fixture(autouse=True)
def clean_settings() -> None:
    """Each test starts with empty per-user settings (in the session's temporary
    XDG_CONFIG_HOME, never the real profile)."""
    s = QSettings("multiplan", "multiplan")
    s.clear()
    s.sync()


@pytest.fixture(autouse=True)
def dialogs(monkeypatch) -> list[tuple[str, str, str]]:
    shown: list[tuple[str, str, str]] = []

    def record(kind: str, answer: object) -> Callable[..., object]:
        def f(parent, title, text, *args, **kwargs):
            shown.append((kind, title, text))
            return answer

        return f

    monkeypatch.setattr(QMessageBox, "critical", record("critical", QMessageBox.StandardButton.Ok))
    monkeypatch.setattr(QMessageBox, "warning", record("warning", QMessageBox.StandardButton.Ok))
    monkeypatch.setattr(QMessageBox, "information",
                        record("information", QMessageBox.StandardButton.Ok))
    monkeypatch.setattr(QMessageBox, "question",
                        record("question", QMessageBox.StandardButton.Discard))
    monkeypatch.setattr(QMessageBox, "about", record("about", None))
    return shown


@pytest.fixture(scope="session")
def sample(repo_root: Path) -> Path:
    path = repo_root / "sample_data" / "changxing"
    if not (path / "plan.gpkg").is_file():
        pytest.skip("the sample project sample_data/changxing is missing")
    return path


@pytest.fixture
def sample_copy(sample: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "changxing"
    shutil.copytree(sample, dst)
    return dst


def _wait_drawn(qtbot, win: MainWindow, timeout: int = 20000) -> None:
    qtbot.waitUntil(lambda: not win.loading and win.canvas.is_current(), timeout=timeout)


@pytest.fixture
def wait_drawn(qtbot) -> Callable[[MainWindow], None]:
    """``wait_drawn(win)``: wait until the window's layers are read and the map is drawn."""
    return lambda win, timeout=20000: _wait_drawn(qtbot, win, timeout)


@pytest.fixture
def open_window(qtbot) -> Callable[..., MainWindow]:
    def make(project: Path | str | None, size: tuple[int, int] = (1400, 900),
             lang: str = "zh") -> MainWindow:
        win = MainWindow(None, lang=lang)
        qtbot.addWidget(win)
        win.resize(*size)
        win.show()
        qtbot.waitExposed(win)
        if project is not None:
            assert win.open_project(project)
            _wait_drawn(qtbot, win)
        return win

    return make
