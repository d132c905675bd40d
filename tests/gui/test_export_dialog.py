"""The export dialog (发布 → 公开发布导出…) on a copy of the sample county: sheets the project
cannot make are disabled with the reason, the gates are shown before anything starts, a
preview of the current sheet arrives as a picture, an export runs as a background job with
progress and can be cancelled without leaving a folder, and the main window's 发布 menu
opens the dialog. The dialog is grabbed to /tmp/multiplan_export_dialog.png for a look."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from multiplan.core.project import Project
from multiplan.gui.export_dialog import ExportDialog


@pytest.fixture(scope="module")
def sample_copy_module(tmp_path_factory, repo_root) -> Path:
    dst = tmp_path_factory.mktemp("gui_export") / "changxing"
    shutil.copytree(repo_root / "sample_data" / "changxing", dst)
    return dst


@pytest.fixture
def dialog(qtbot, sample_copy_module):
    dlg = ExportDialog(Project.open(sample_copy_module))
    qtbot.addWidget(dlg)
    dlg.show()
    yield dlg
    for h in dlg.tasks.running():
        h.cancel()
    dlg.tasks.cancel_all(wait=5.0)


def _items(dlg) -> dict[str, object]:
    return {dlg.sheet_list.item(i).data(Qt.ItemDataRole.UserRole): dlg.sheet_list.item(i)
            for i in range(dlg.sheet_list.count())}


def test_only_available_sheets_are_enabled(dialog) -> None:
    items = _items(dialog)
    # the sample has a plan and control lines, but no assessment run and no register
    for key in ("landuse", "controls", "sansheng"):
        assert items[key].flags() & Qt.ItemFlag.ItemIsEnabled
        assert items[key].checkState() == Qt.CheckState.Checked
    for key in ("assessment_ecology", "conflicts"):
        assert not items[key].flags() & Qt.ItemFlag.ItemIsEnabled
        assert items[key].toolTip()  # says what is missing
    assert dialog.chosen_sheets() == ["landuse", "controls", "sansheng"]
    assert dialog.options()["orientation"] is None  # the composer picks (county larger)


def test_preview_of_the_current_sheet(dialog, qtbot) -> None:
    assert dialog.current_sheet() == "landuse"
    qtbot.waitUntil(lambda: dialog.preview_label.pixmap() is not None
                    and not dialog.preview_label.pixmap().isNull(), timeout=60000)
    pix = dialog.preview_pixmap
    assert pix.width() > 200 and pix.height() > 100
    img = pix.toImage()
    colours = {img.pixelColor(x, y).name() for x in range(0, img.width(), 7)
               for y in range(0, img.height(), 7)}
    assert len(colours) > 8  # a map, not a blank page
    path = Path("/tmp/multiplan_export_dialog.png")
    dialog.grab().save(str(path))
    assert path.stat().st_size > 10000


def test_public_gate_is_shown_and_refused_before_start(dialog, dialogs, tmp_path) -> None:
    dialog.public.setChecked(True)
    ok, text = dialog.gate_text()
    assert not ok and "✗" in text and "编制中" in text and "审图号" in text
    assert "color: #b71c1c" in dialog.gate_label.styleSheet()
    dialog.out.setText(str(tmp_path / "pub"))
    assert dialog.start_export() is None
    assert dialogs and dialogs[-1][0] == "warning" and "编制中" in dialogs[-1][2]
    assert dialog.handle is None and not (tmp_path / "pub").exists()
    assert dialog.generalise.isEnabled() and dialog.review_no.isEnabled()
    assert "图形概化 50 米" in text and "domain.md §7.2" in text  # says where 50 m comes from
    assert "from memory" not in text  # the Chinese half only
    dialog.generalise.setValue(30.0)
    assert "图形概化 30 米，依据：本次导出指定" in dialog.gate_text()[1]
    assert dialog.options()["generalise_m"] == 30.0
    dialog.internal.setChecked(True)
    assert dialog.gate_text()[0] and not dialog.generalise.isEnabled()


def test_internal_export_runs_in_the_background(dialog, qtbot, tmp_path) -> None:
    dialog.internal.setChecked(True)
    for key, item in _items(dialog).items():
        if key != "landuse" and item.flags() & Qt.ItemFlag.ItemIsEnabled:
            item.setCheckState(Qt.CheckState.Unchecked)
    dialog.png.setChecked(False)
    dialog.paper.setCurrentText("A4")
    out = tmp_path / "out"
    dialog.out.setText(str(out))
    seen: list[int] = []
    dialog.progress.valueChanged.connect(seen.append)
    handle = dialog.start_export()
    assert handle is not None and handle.backend == "process"
    assert not dialog.export_button.isEnabled() and dialog.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not handle.is_running(), timeout=120000)
    assert dialog.is_done(), dialog.last_error
    assert dialog.result["files"] > 5 and dialog.progress.value() == 1000
    assert seen and max(seen) == 1000
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert m["edition"] == "internal"
    assert [s["key"] for s in m["sheets"]] == ["landuse"]
    assert str(out) in dialog.status.text()


def test_cancel_leaves_no_folder(dialog, qtbot, tmp_path) -> None:
    dialog.internal.setChecked(True)
    out = tmp_path / "cancelled"
    dialog.out.setText(str(out))
    handle = dialog.start_export()
    qtbot.waitUntil(lambda: handle.fraction > 0.0 or not handle.is_running(), timeout=60000)
    dialog.cancel_export()
    qtbot.waitUntil(lambda: not handle.is_running(), timeout=60000)
    assert handle.state == "cancelled"
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if ".part-" in p.name] == []
    assert "已取消" in dialog.status.text() and dialog.export_button.isEnabled()


def test_publish_menu_opens_the_dialog(qtbot, sample_copy_module) -> None:
    from multiplan.gui.main_window import MainWindow

    win = MainWindow(None)
    qtbot.addWidget(win)
    act = win.publish_export_action
    assert act in win.publish_menu.actions() and not act.isEnabled()  # no project yet
    assert act in win.project_actions
    assert "公开发布导出" in act.text()


def test_the_action_opens_the_dialog_on_the_open_project(open_window, sample_copy_module,
                                                        qtbot) -> None:
    win = open_window(sample_copy_module)
    act = win.publish_export_action
    assert act.isEnabled()
    act.trigger()
    dlg = win.export_dialog
    qtbot.waitUntil(dlg.isVisible)
    assert dlg.project.folder == win.project.folder and dlg.tasks is win.tasks
    assert dlg.chosen_sheets() == ["landuse", "controls", "sansheng"]
    win.tasks.cancel_all(wait=5.0)
    dlg.close()


def test_english_dialog(qtbot, qapp, sample_copy_module) -> None:
    from multiplan.gui import i18n

    assert i18n.install(qapp, "en") == "en"
    try:
        dlg = ExportDialog(Project.open(sample_copy_module), lang="en")
        qtbot.addWidget(dlg)
        assert dlg.windowTitle().startswith("Public-disclosure export")
        assert dlg.export_button.text() == "Export"
        items = _items(dlg)
        assert items["landuse"].text() == "land and sea use plan"
        assert "run multiplan assess" in items["assessment_ecology"].toolTip()
        dlg.public.setChecked(True)
        ok, text = dlg.gate_text()
        assert not ok and "not published" in text and "map review number" in text
        assert "generalised by 50 m" in text and "from memory" in text
        dlg.tasks.cancel_all(wait=5.0)
    finally:
        i18n.install(qapp, "zh")


def test_a_refusal_in_the_worker_is_shown_readably(dialog, qtbot, dialogs, tmp_path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    dialog.internal.setChecked(True)
    dialog.out.setText(str(out))
    handle = dialog.start_export()
    qtbot.waitUntil(lambda: not handle.is_running(), timeout=60000)
    assert handle.state == "failed"
    assert "输出文件夹已存在且不为空" in dialog.last_error
    assert dialogs[-1][0] == "critical" and "输出文件夹已存在" in dialogs[-1][2]
    assert "Traceback" not in dialog.status.text()
    assert (out / "mine.txt").read_text() == "keep" and dialog.export_button.isEnabled()


def test_replacing_an_earlier_export(dialog, qtbot, tmp_path) -> None:
    from multiplan.core.publish import verify_export

    out = tmp_path / "again"
    dialog.internal.setChecked(True)
    for item in _items(dialog).values():
        if item.flags() & Qt.ItemFlag.ItemIsEnabled:
            item.setCheckState(Qt.CheckState.Unchecked)
    dialog.out.setText(str(out))
    for replace in (False, True):
        dialog.overwrite.setChecked(replace)
        handle = dialog.start_export()
        qtbot.waitUntil(lambda h=handle: not h.is_running(), timeout=60000)
        assert dialog.is_done(), dialog.last_error
    assert verify_export(out).ok
    assert [p.name for p in tmp_path.iterdir() if ".old-" in p.name or ".part-" in p.name] == []
