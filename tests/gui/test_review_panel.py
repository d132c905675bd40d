"""The 审查 panel, 两规对比, decisions, review mode and the workflow dialog (pytest-qt,
offscreen) on a copy of the 长兴县 sample with two real conflict pairs detected by the core.

Expected values come from an independent route: the register is read with sqlite3 /
pyogrio and filtered with plain pandas here; piece bounds come from shapely on pyogrio's
geometries; decisions are read back from ``mp_decisions`` with sqlite3.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from multiplan.core import conflicts as cf
from multiplan.core import qa
from multiplan.core.editing import EditSession
from multiplan.core.project import Project
from multiplan.gui.editing import install_editing
from multiplan.gui.main_window import MainWindow
from multiplan.gui.review.model import COLUMN_KEYS
from multiplan.gui.styles import CONFLICTS_LAYER

PAIRS = [("土地利用规划", "城市总体规划"), ("城市总体规划", "永久基本农田")]
REVIEWER = "张三"


@pytest.fixture(scope="module")
def project_dir(sample: Path, tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("review") / "changxing"
    shutil.copytree(sample, dst)
    p = Project.open(dst)
    p.set_roles(reviewers=[REVIEWER, "李四"])
    for a, b in PAIRS:
        cf.detect_conflicts(p, a, b)
    qa.run_checks(p, only=["rl_construction_eco"])  # two 三区三线 findings
    return dst


def register(folder: Path) -> pd.DataFrame:
    """What the reviewer should see, read independently: every register row but 一致, and
    the 质检 / 三区三线 findings."""
    with contextlib.closing(sqlite3.connect(folder / "plan.gpkg")) as conn:
        df = pd.read_sql_query('SELECT fid, conflict_id, layer_a, layer_b, conflict_type, '
                               'severity, township, area_ha, sliver FROM mp_conflicts', conn)
        found = pd.read_sql_query(
            'SELECT NULL AS fid, error_id AS conflict_id, layer AS layer_a, layer_other AS '
            'layer_b, check_id AS conflict_type, severity_zh AS severity, township, '
            'area_m2 / 10000.0 AS area_ha, 0 AS sliver, feature_fid FROM mp_qa_errors', conn)
    df = df[df["severity"] != "一致"]
    return pd.concat([df, found], ignore_index=True)


def decided_rows(folder: Path) -> pd.DataFrame:
    with contextlib.closing(sqlite3.connect(folder / "plan.gpkg")) as conn:
        return pd.read_sql_query('SELECT conflict_id, status, reviewer, comment, time '
                                 'FROM mp_decisions ORDER BY fid', conn)


def wait(win: MainWindow, qtbot) -> None:
    qtbot.waitUntil(lambda: not win.loading and win.canvas.is_current(), timeout=30000)
    qtbot.waitUntil(lambda: not win.review.loading, timeout=30000)


@pytest.fixture(scope="module")
def shared(qapp, project_dir: Path):
    """One window on the project (opened as the listed reviewer), for the tests that put
    back what they change."""
    from PySide6.QtWidgets import QMessageBox

    with pytest.MonkeyPatch.context() as mp:
        for name in ("critical", "warning", "information"):
            mp.setattr(QMessageBox, name, lambda *a, **k: QMessageBox.StandardButton.Ok)
        mp.setattr(QMessageBox, "question",
                   lambda *a, **k: QMessageBox.StandardButton.Discard)
        w = MainWindow(None)
        install_editing(w)
        w.resize(1500, 950)
        w.show()
        assert w.open_project(project_dir, user=REVIEWER)
        deadline = 40_000
        while (w.loading or not w.canvas.is_current() or w.review.loading) and deadline > 0:
            QTest.qWait(10)
            deadline -= 10
        w.review.show_panel(True)
        yield w
        w.undo_stack.setClean()
        w.close()
        w.deleteLater()


@pytest.fixture
def win(shared: MainWindow, qtbot) -> MainWindow:
    wait(shared, qtbot)
    shared.review.panel.set_filters(kind=None, type=None, severity=None, pair=None,
                                    township=None, status=None, min_area_ha=0.0, slivers=True)
    return shared


def test_panel_lists_the_register_and_filters_like_pandas(win: MainWindow) -> None:
    panel = win.review.panel
    reg = register(win.project.folder)
    assert panel.stack.currentIndex() == 1
    assert sorted(panel.model.item_ids()) == sorted(reg["conflict_id"])
    cases = [
        ({"severity": "冲突"}, reg["severity"] == "冲突"),
        ({"pair": ("城市总体规划", "永久基本农田")},
         (reg["layer_a"] == "城市总体规划") & (reg["layer_b"] == "永久基本农田")),
        ({"township": "雉城街道", "min_area_ha": 1.0},
         (reg["township"] == "雉城街道") & (reg["area_ha"] >= 1.0)),
        ({"type": "C2", "slivers": False}, (reg["conflict_type"] == "C2") & (reg["sliver"] == 0)),
        ({"severity": "review", "min_area_ha": 0.5}, reg["area_ha"] >= 0.5),
        ({"kind": "redline"}, reg["conflict_type"].str.startswith("rl_")),
        ({"severity": "错误"}, reg["severity"] == "错误"),
    ]
    for filters, mask in cases:
        panel.set_filters(kind=None, type=None, severity=None, pair=None, township=None,
                          status=None, min_area_ha=0.0, slivers=True)
        panel.set_filters(**filters)
        expected = sorted(reg.loc[mask, "conflict_id"])
        assert expected, filters  # each case keeps something and drops something
        assert len(expected) < len(reg), filters
        assert sorted(panel.model.item_ids()) == expected, filters
        assert f"显示 {len(expected):,} / {len(reg):,}" in panel.count_label.text()


def test_sorting_by_area_and_severity(win: MainWindow) -> None:
    model = win.review.panel.model
    area_col = COLUMN_KEYS.index("area_ha")
    win.review.panel.table.sortByColumn(area_col, Qt.SortOrder.DescendingOrder)
    reg = register(win.project.folder).set_index("conflict_id")
    areas = reg.loc[model.item_ids(), "area_ha"].to_numpy()
    assert len(areas) == len(reg)
    assert np.all(np.diff(areas) <= 0)
    assert model.data(model.index(0, area_col)) == f"{areas[0]:,.4f}"
    win.review.panel.table.sortByColumn(COLUMN_KEYS.index("severity"),
                                        Qt.SortOrder.AscendingOrder)
    rank = {"冲突": 0, "错误": 1, "警告": 2, "提示": 3}
    sev = [rank[s] for s in reg.loc[model.item_ids(), "severity"]]
    assert sev == sorted(sev)


def test_selecting_a_row_zooms_to_the_piece_and_highlights_it(win: MainWindow, qtbot) -> None:
    panel = win.review.panel
    reg = register(win.project.folder)
    target = reg[(reg["area_ha"] > 1.0) & reg["fid"].notna()].sort_values("conflict_id").iloc[0]
    gdf = pyogrio.read_dataframe(win.project.gpkg, layer="mp_conflicts",
                                 where=f"conflict_id = '{target['conflict_id']}'")
    minx, miny, maxx, maxy = shapely.bounds(gdf.geometry.iloc[0])
    win.canvas.zoom_to_extent()  # far away first
    assert panel.select_item(target["conflict_id"])
    qtbot.waitUntil(lambda: win.canvas._highlight_src is not None, timeout=20000)
    vx0, vy0, vx1, vy1 = win.canvas.view_bounds()
    assert vx0 <= minx and vy0 <= miny and vx1 >= maxx and vy1 >= maxy
    # zoomed in: the piece fills a good part of the view, not the whole county
    assert (maxx - minx) >= 0.2 * (vx1 - vx0) or (maxy - miny) >= 0.2 * (vy1 - vy0)
    name, pos = win.canvas._highlight_src
    assert name == CONFLICTS_LAYER
    fids = win.canvas.layer(CONFLICTS_LAYER).data.fids[pos]
    assert fids.tolist() == [int(target["fid"])]
    assert win.review.panel.form.item_id == target["conflict_id"]


def test_next_undecided_skips_decided_rows(win: MainWindow, qtbot) -> None:
    from multiplan.core import review

    panel = win.review.panel
    panel.set_filters(severity="冲突")
    ids = panel.model.item_ids()
    assert len(ids) >= 6
    for i in (1, 2, 4):  # decided outside the panel, then read again
        review.decide(win.project, ids[i], "按现状保留", reviewer=REVIEWER, comment="测试")
    win.review.reload()
    qtbot.waitUntil(lambda: not win.review.loading, timeout=20000)
    assert panel.model.item_ids() == ids
    panel.select_view_row(0)
    seen = []
    for _ in range(4):
        assert panel.go_undecided(1)
        seen.append(panel.current_item_id())
    undecided = [ids[j] for j in range(len(ids)) if j not in (1, 2, 4)]
    assert seen[:2] == [ids[3], ids[5]]
    assert all(s in undecided for s in seen)  # wraps round, never lands on a decided row
    panel.select_view_row(5)
    assert panel.go_undecided(-1)
    assert panel.current_item_id() == ids[3]
    win.activateWindow()
    panel.table.setFocus()
    qtbot.waitUntil(lambda: panel.table.hasFocus(), timeout=5000)
    QTest.keyClick(panel.table, Qt.Key.Key_P)  # the keyboard: P, then N
    assert panel.current_item_id() == ids[0]
    QTest.keyClick(panel.table, Qt.Key.Key_N)
    assert panel.current_item_id() == ids[3]
    # "undecided" filter shows exactly the rows left
    panel.set_filters(status="undecided")
    assert set(panel.model.item_ids()) == set(ids) - {ids[1], ids[2], ids[4]}


def test_saving_a_decision_writes_the_row_and_updates_the_list_in_place(
        win: MainWindow, qtbot) -> None:
    panel = win.review.panel
    panel.set_filters(pair=("城市总体规划", "永久基本农田"), severity="警告")
    item_id = panel.model.item_ids()[0]
    assert panel.select_item(item_id)
    resets: list[int] = []
    panel.model.modelReset.connect(lambda: resets.append(1))
    form = panel.form
    form.status.setCurrentIndex(form.status.findData("认可例外"))
    form.comment.setPlainText("省级重点项目，予以认可")
    assert form.save_button.isEnabled()
    qtbot.mouseClick(form.save_button, Qt.MouseButton.LeftButton)
    rows = decided_rows(win.project.folder)
    last = rows[rows["conflict_id"] == item_id].iloc[-1]
    assert (last["status"], last["reviewer"], last["comment"]) == \
        ("认可例外", REVIEWER, "省级重点项目，予以认可")
    assert last["time"]
    status_col = COLUMN_KEYS.index("status")
    row = panel.model.item_ids().index(item_id)
    assert panel.model.data(panel.model.index(row, status_col)) == "认可例外"
    assert panel.model.data(panel.model.index(row, COLUMN_KEYS.index("reviewer"))) == REVIEWER
    assert not resets  # one row repainted, no reload


def test_comparison_canvases_show_both_plans_and_stay_synchronised(win: MainWindow,
                                                                     qtbot) -> None:
    panel = win.review.panel
    panel.set_filters(pair=("土地利用规划", "城市总体规划"), severity="冲突", min_area_ha=1.0)
    item_id = panel.model.item_ids()[0]
    win.review.set_comparison(True)
    assert panel.select_item(item_id)
    cmp_ = win.review.compare
    a, b = cmp_.canvas_a, cmp_.canvas_b
    qtbot.waitUntil(lambda: cmp_.layers == ("土地利用规划", "城市总体规划"), timeout=20000)
    qtbot.waitUntil(lambda: a.is_current() and b.is_current(), timeout=20000)
    assert a.visible_layers() == ["土地利用规划"] and b.visible_layers() == ["城市总体规划"]
    # each in its own classification colours: the window's palette of that layer
    assert a.layer("土地利用规划").palette == win.loaded["土地利用规划"].classes.palette
    assert b.layer("城市总体规划").palette == win.loaded["城市总体规划"].classes.palette
    assert a._highlight_src[0] == CONFLICTS_LAYER and b._highlight_src[0] == CONFLICTS_LAYER
    # a pan in A moves B; a zoom in B moves A
    before = b.center()
    a.pan_by(60, -35)
    assert a.center() != before
    assert b.center() == pytest.approx(a.center())
    assert b.units_per_pixel() == pytest.approx(a.units_per_pixel())
    QTest.mouseMove(b, b.rect().center())
    b.zoom_by(0.5, delay=0)
    assert a.units_per_pixel() == pytest.approx(b.units_per_pixel())
    assert a.center() == pytest.approx(b.center())
    # a mouse drag in B (pan tool) as well
    start = b.rect().center()
    QTest.mousePress(b, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(b, start + type(start)(30, 20))
    QTest.mouseRelease(b, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       start + type(start)(30, 20))
    assert a.center() == pytest.approx(b.center())
    qtbot.waitUntil(lambda: a.is_current() and b.is_current(), timeout=20000)
    win.review.set_comparison(False)


def test_review_mode_disables_editing_and_refuses_writes(open_window, project_dir: Path,
                                                         qtbot, dialogs) -> None:
    win = open_window(None)
    editing = install_editing(win)
    assert win.open_project(project_dir, mode="review", user="李四")
    wait(win, qtbot)
    QTest.qWait(10)  # the mode is applied again once the event loop runs
    r = win.review
    assert win.project.mode == "review"
    assert r.banner.isVisible() and "评审模式（只读）" in r.banner_label.text()
    assert "李四" in r.banner_label.text()
    assert r.mode_label.isVisible() and r.mode_label.text() == "评审模式（只读）"
    assert r.dock.isVisible()  # the review list opens with review mode
    for act in (win.import_action, win.conflicts_action, win.merged_action,
                win.assessment_action, editing.edit_action, editing.add_action):
        assert not act.isEnabled(), act.text()
    assert not editing.toolbar.isEnabled()
    assert win.open_action.isEnabled() and win.zoom_in_action.isEnabled()
    # a write attempt through the editing core is refused and nothing changes
    layer = "土地利用规划"
    with contextlib.closing(sqlite3.connect(project_dir / "plan.gpkg")) as conn:
        fid, code = conn.execute(f'SELECT fid, GHQ FROM "{layer}" LIMIT 1').fetchone()
    assert editing.start_editing(layer)
    editing.session.set_attributes([fid], {"GHQ": "评审期间误改"})
    assert editing.save_edits() is False
    assert "评议模式" in (win.last_error or "")
    editing.discard_edits()
    editing.stop_editing()
    with contextlib.closing(sqlite3.connect(project_dir / "plan.gpkg")) as conn:
        assert conn.execute(f'SELECT GHQ FROM "{layer}" WHERE fid = ?',
                            (fid,)).fetchone()[0] == code
    # decisions are still allowed, by a listed reviewer
    panel = r.panel
    item_id = panel.model.item_ids()[0]
    assert panel.select_item(item_id)
    assert panel.form.save_button.isEnabled()
    assert not panel.form.apply_button.isEnabled()  # editing the plan is not
    assert r.save_decision(item_id, "按上位规划调整", "评审会意见") is not None
    rows = decided_rows(project_dir)
    assert rows.iloc[-1][["conflict_id", "status", "reviewer"]].tolist() == \
        [item_id, "按上位规划调整", "李四"]
    # leaving review mode gives the tools back
    assert r.leave_review_mode()
    wait(win, qtbot)
    QTest.qWait(10)
    assert win.project.mode == "edit" and not r.banner.isVisible()
    assert win.conflicts_action.isEnabled() and editing.edit_action.isEnabled()
    # and 审查 → 进入评审模式 (the name given) reopens it read-only again
    assert r.review_mode_action.isEnabled() and not r.leave_review_action.isEnabled()
    assert r.enter_review_mode("李四")
    wait(win, qtbot)
    assert win.project.mode == "review" and win.project.user == "李四"
    assert r.leave_review_action.isEnabled() and not win.import_action.isEnabled()


def test_empty_state_without_a_register(open_window, tmp_path: Path, qtbot) -> None:
    Project.create(tmp_path / "empty", county="长兴县", crs=4549)
    win = open_window(tmp_path / "empty")
    qtbot.waitUntil(lambda: not win.review.loading, timeout=20000)
    win.review.show_panel(True)
    panel = win.review.panel
    assert panel.stack.currentIndex() == 0
    assert "尚未运行冲突检测" in panel.empty_label.text()
    assert panel.run_button.isVisible()


def test_workflow_dialog_lists_gates_and_shows_a_refusal(win: MainWindow, qtbot,
                                                         dialogs) -> None:
    dlg = win.review.show_workflow()
    qtbot.addWidget(dlg)
    qtbot.waitUntil(lambda: dlg.status is not None and dlg.advance_button.isEnabled(),
                    timeout=20000)
    assert "编制中" in dlg.state_label.text()
    rows = dlg.gate_rows()
    assert rows and {r[1] for r in rows} <= {"✔", "✘"}
    assert all(r[2] for r in rows)  # each gate says why
    assert "已评价" in dlg.advance_button.text()
    with contextlib.closing(sqlite3.connect(win.project.gpkg)) as conn:
        before = conn.execute("SELECT count(*) FROM mp_audit WHERE action = "
                              "'workflow.gate_check'").fetchone()[0]
    failing = [r for r in rows if r[1] == "✘"]
    assert failing  # the sample has no current assessment run
    qtbot.mouseClick(dlg.advance_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.last_refusal is not None, timeout=20000)
    kind, title, text = dialogs[-1]
    assert kind == "warning" and title == "无法推进到下一阶段"
    for name, _, why in failing:
        assert name in text and why in text
    with contextlib.closing(sqlite3.connect(win.project.gpkg)) as conn:
        assert conn.execute("SELECT count(*) FROM mp_audit WHERE action = "
                            "'workflow.gate_check'").fetchone()[0] == before + 1
        state = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'mp_workflow'"
                             ).fetchone()[0]
        if state:
            assert conn.execute("SELECT count(*) FROM mp_workflow WHERE state = '已评价'"
                                ).fetchone()[0] == 0
    # the committee's sign-off, from the dialog's form
    from multiplan.gui.review.workflow_dialog import CommitteeDialog

    form = CommitteeDialog(REVIEWER, [REVIEWER, "李四"], "zh", dlg)
    qtbot.addWidget(form)
    form.members.setText("张三、李四, 王五")
    form.comment.setPlainText("同意，按意见修改")
    form.outcome.setCurrentIndex(form.outcome.findData("修改后通过"))
    assert dlg.record_committee(**form.values()) is not None
    with contextlib.closing(sqlite3.connect(win.project.gpkg)) as conn:
        row = conn.execute("SELECT outcome, members, chair, comment FROM mp_committee "
                           "ORDER BY fid DESC LIMIT 1").fetchone()
    assert row[0] == "修改后通过" and row[2] == REVIEWER and row[3] == "同意，按意见修改"
    assert json.loads(row[1]) == ["张三", "李四", "王五"]
    qtbot.waitUntil(lambda: "修改后通过" in dlg.committee_label.text(), timeout=20000)
    dlg.close()


def test_adjust_by_precedence_edits_the_plan_and_ctrl_z_takes_it_back(win: MainWindow,
                                                                       qtbot) -> None:
    panel = win.review.panel
    panel.set_filters(pair=("土地利用规划", "城市总体规划"), severity="冲突", min_area_ha=1.0,
                      status="undecided")
    gpkg = win.project.gpkg
    with contextlib.closing(sqlite3.connect(gpkg)) as conn:
        reg = pd.read_sql_query('SELECT conflict_id, layer_a, fid_a, layer_b, fid_b, '
                                'winner_layer, proposed_code FROM mp_conflicts', conn)
    reg = reg[reg["conflict_id"].isin(panel.model.item_ids())
              & reg["proposed_code"].notna()].iloc[0]
    loser, fid = ((reg["layer_b"], int(reg["fid_b"])) if reg["winner_layer"] == reg["layer_a"]
                  else (reg["layer_a"], int(reg["fid_a"])))

    def state() -> tuple[int, list[tuple]]:
        with contextlib.closing(sqlite3.connect(gpkg)) as conn:
            n = conn.execute(f'SELECT count(*) FROM "{loser}"').fetchone()[0]
            rows = conn.execute(f'SELECT fid, mp_code FROM "{loser}" ORDER BY fid').fetchall()
        return n, rows

    before = state()
    assert panel.select_item(reg["conflict_id"])
    assert panel.form.apply_button.isEnabled()
    depth = win.undo_stack.count()
    qtbot.mouseClick(panel.form.apply_button, Qt.MouseButton.LeftButton)
    assert win.last_error is None or "按上位规划" not in (win.last_error or "")
    after = state()
    assert after != before
    codes, old = dict(after[1]), dict(before[1])
    touched = {fid} | (set(codes) - set(old))  # the parcel and the parts split off it
    assert old[fid] != reg["proposed_code"]
    assert reg["proposed_code"] in {codes[f] for f in touched}
    assert all(codes[f] == old[f] for f in old if f != fid)  # nothing else changed
    assert win.undo_stack.count() == depth + 1
    assert reg["conflict_id"] in win.undo_stack.undoText()
    rows = decided_rows(win.project.folder)
    assert rows[rows["conflict_id"] == reg["conflict_id"]].iloc[-1]["status"] == "已修改"
    status_col = COLUMN_KEYS.index("status")
    r = panel.model.item_ids().index(reg["conflict_id"])
    assert panel.model.data(panel.model.index(r, status_col)) == "已修改"
    # Ctrl+Z: the window's Undo takes the edit back in the file, and the decision
    win.undo_action.trigger()
    restored = state()
    assert restored[0] == before[0]
    assert dict(restored[1])[fid] == dict(before[1])[fid]
    rows = decided_rows(win.project.folder)
    assert rows[rows["conflict_id"] == reg["conflict_id"]].iloc[-1]["status"] == "待定"
    assert panel.model.data(panel.model.index(r, status_col)) == "待定"
    qtbot.waitUntil(lambda: not win.loading, timeout=20000)


def test_a_control_line_finding_highlights_its_parcel(win: MainWindow, qtbot) -> None:
    panel = win.review.panel
    reg = register(win.project.folder)
    found = reg[reg["conflict_type"] == "rl_construction_eco"].sort_values("conflict_id")
    panel.set_filters(kind="redline")
    assert sorted(panel.model.item_ids()) == found["conflict_id"].tolist()
    target = found.iloc[1]
    assert panel.select_item(target["conflict_id"])
    layer = target["layer_a"]
    qtbot.waitUntil(lambda: (win.canvas._highlight_src or ("",))[0] == layer, timeout=20000)
    _name, pos = win.canvas._highlight_src
    assert win.canvas.layer(layer).data.fids[pos].tolist() == [int(target["feature_fid"])]
    geom = pyogrio.read_dataframe(win.project.gpkg, layer="mp_qa_errors",
                                  where=f"error_id = '{target['conflict_id']}'").geometry.iloc[0]
    minx, miny, maxx, maxy = shapely.bounds(geom)
    vx0, vy0, vx1, vy1 = win.canvas.view_bounds()
    assert vx0 <= minx and vy0 <= miny and vx1 >= maxx and vy1 >= maxy
    assert "红线" in panel.form.summary.text()
    assert not panel.form.apply_button.isEnabled()  # no proposed class for a finding


def test_gui_command_opens_review_mode(project_dir: Path, qtbot, monkeypatch) -> None:
    """``multiplan gui PROJECT --review --user NAME``: the event loop itself is replaced (a
    real exec/exit cycle inside the test session would stop later tests' queued signals)."""
    from PySide6.QtWidgets import QApplication

    from multiplan import cli

    seen: list[tuple[str, str | None, bool]] = []
    before = set(QApplication.topLevelWidgets())

    def fake_exec(self) -> int:
        for w in QApplication.topLevelWidgets():
            if not shiboken6.isValid(w) or w in before:
                continue
            if isinstance(w, MainWindow) and w.isVisible():
                qtbot.addWidget(w)
                qtbot.waitUntil(lambda w=w: not w.loading, timeout=30000)
                seen.append((w.project.mode, w.project.user, w.review.banner.isVisible()))
                w.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    assert cli.main(["gui", str(project_dir), "--review", "--user", "李四", "--lang", "zh"]) == 0
    assert seen == [("review", "李四", True)]


def test_decision_register_export_from_the_review_menu(win: MainWindow, qtbot,
                                                       tmp_path: Path) -> None:
    from multiplan.core import review

    assert win.review.export_action in win.review_menu.actions()
    reg = register(win.project.folder)
    item_id = reg[(reg["severity"] == "冲突") & (reg["sliver"] == 0)]["conflict_id"].iloc[-1]
    review.decide(win.project, item_id, "认可例外", reviewer=REVIEWER, comment="导出测试")
    out = tmp_path / "decisions.csv"
    handle = win.review.export_decisions(str(out))
    qtbot.waitUntil(lambda: not handle.is_running(), timeout=20000)
    assert handle.state == "done", handle.error
    table = pd.read_csv(out, encoding="utf-8-sig", dtype=str)
    row = table[table.apply(lambda r: item_id in r.tolist(), axis=1)]
    assert len(row) == 1
    assert "认可例外" in row.iloc[0].tolist() and "导出测试" in row.iloc[0].tolist()


def test_undo_of_an_adjustment_is_refused_once_the_parcel_changed_again(
        win: MainWindow, qtbot) -> None:
    panel = win.review.panel
    panel.set_filters(pair=("土地利用规划", "城市总体规划"), severity="冲突", min_area_ha=1.0,
                      status="undecided")
    gpkg = win.project.gpkg
    with contextlib.closing(sqlite3.connect(gpkg)) as conn:
        reg = pd.read_sql_query('SELECT conflict_id, proposed_code FROM mp_conflicts', conn)
    item_id = reg[reg["conflict_id"].isin(panel.model.item_ids())
                  & reg["proposed_code"].notna()]["conflict_id"].iloc[-1]
    edit = win.review.apply_precedence(item_id)
    assert edit is not None
    depth = win.undo_stack.count()
    col = {"城市总体规划": "YDMC", "土地利用规划": "GHQ"}[edit.layer]  # a free-text field
    other = EditSession.open(win.project, edit.layer)  # someone edits it again, and saves
    other.set_attributes([edit.fid], {col: "又改过"})
    other.save()
    other.close()
    win.last_error = None
    win.undo_action.trigger()
    assert "不能自动撤销" in (win.last_error or "")
    assert win.undo_stack.count() == depth - 1  # the stale entry is gone
    with contextlib.closing(sqlite3.connect(gpkg)) as conn:
        assert conn.execute(f'SELECT "{col}" FROM "{edit.layer}" WHERE fid = ?',
                            (edit.fid,)).fetchone()[0] == "又改过"
    rows = decided_rows(win.project.folder)
    assert rows[rows["conflict_id"] == item_id].iloc[-1]["status"] == "已修改"
    qtbot.waitUntil(lambda: not win.loading, timeout=20000)


def test_a_failing_conflict_gate_leads_to_the_open_conflicts(win: MainWindow, qtbot) -> None:
    """Past 已评价 (forced here: the sample has no assessment run), the gate "no open
    conflicts" fails; double-clicking it lists exactly the open non-sliver 冲突 pieces."""
    from multiplan.core import workflow

    workflow.advance(win.project, "已评价", actor=REVIEWER, force_note="测试：双评价另行完成")
    dlg = win.review.show_workflow()
    qtbot.addWidget(dlg)
    qtbot.waitUntil(lambda: dlg.status is not None and "公示中" in dlg.advance_button.text(),
                    timeout=20000)
    rows = dlg.gate_rows()
    names = [r[0] for r in rows]
    assert "无未决冲突图斑" in names and "质检阻断项通过" in names
    with contextlib.closing(sqlite3.connect(win.project.gpkg)) as conn:
        open_ids = {r[0] for r in conn.execute(
            "SELECT conflict_id FROM mp_conflicts WHERE severity = '冲突' AND sliver = 0 "
            "AND conflict_id NOT IN (SELECT d.conflict_id FROM mp_decisions d WHERE d.fid = "
            "(SELECT max(fid) FROM mp_decisions e WHERE e.conflict_id = d.conflict_id) "
            "AND d.status != '待定')")}
    assert open_ids
    row = names.index("无未决冲突图斑")
    assert rows[row][1] == "✘" and f"{len(open_ids)} 条" in rows[row][2]
    dlg.gates.cellDoubleClicked.emit(row, 0)
    panel = win.review.panel
    assert set(panel.model.item_ids()) == open_ids
    assert panel.current_item_id() in open_ids
    dlg.close()


def test_an_unlisted_user_in_review_mode_may_look_but_not_decide(open_window,
                                                                 project_dir: Path,
                                                                 qtbot) -> None:
    win = open_window(None)
    assert win.open_project(project_dir, mode="review", user="王五")
    wait(win, qtbot)
    assert "王五" in win.review.banner_label.text()
    assert "不在评议人名单中" in win.review.banner_label.text()
    panel = win.review.panel
    assert panel.select_item(panel.model.item_ids()[0])
    assert not panel.form.save_button.isEnabled()
    assert "不在评议人名单中" in panel.form.reviewer.text()
    before = len(decided_rows(project_dir))
    # and the core refuses it too, should the form be bypassed
    assert win.review.save_decision(panel.form.item_id, "认可例外", "") is None
    assert "王五" in (win.last_error or "")
    assert len(decided_rows(project_dir)) == before


def test_public_comments_are_imported_pinned_and_shown_with_their_conflict(
        win: MainWindow, qtbot, tmp_path: Path) -> None:
    """During 公示中 (reached here by deciding the open conflicts and forcing the 质检 gate),
    a CSV of comments is imported from the 审查 menu's action; the comments are pinned on the
    map and the one inside a conflict piece shows with that piece's decision form."""
    from multiplan.core import review, workflow

    gpkg = win.project.gpkg
    gdf = pyogrio.read_dataframe(gpkg, layer="mp_conflicts",
                                 where="severity = '冲突' AND sliver = 0")
    target = gdf.sort_values("area_ha").iloc[-1]
    point = target.geometry.representative_point()
    csv = tmp_path / "意见.csv"
    csv.write_text("编号,姓名,意见,x,y\n"
                   f"1,王某,此处应保留农田,{point.x:.3f},{point.y:.3f}\n"
                   f"2,李某,建议增加绿地,{point.x + 3000:.3f},{point.y + 2000:.3f}\n",
                   encoding="utf-8")
    # before 公示中 the core refuses, and the window says why
    win.last_error = None
    handle = win.review.import_comments(str(csv))
    qtbot.waitUntil(lambda: not handle.is_running(), timeout=20000)
    assert "公示中" in (win.last_error or "")
    for cid in review.open_conflicts(win.project)["conflict_id"]:
        review.decide(win.project, cid, "按现状保留", reviewer=REVIEWER)
    if workflow.current_state(win.project) == "编制中":
        workflow.advance(win.project, "已评价", actor=REVIEWER, force_note="测试")
    workflow.advance(win.project, "公示中", actor=REVIEWER, force_note="测试：质检另行复核")
    handle = win.review.import_comments(str(csv))
    qtbot.waitUntil(lambda: not handle.is_running(), timeout=20000)
    assert handle.state == "done", handle.error
    qtbot.waitUntil(lambda: not win.review.loading and len(win.review.pins.ids) == 2,
                    timeout=20000)
    with contextlib.closing(sqlite3.connect(gpkg)) as conn:
        stored = conn.execute("SELECT comment_id, text, conflict_ids FROM mp_public_comments "
                              "ORDER BY comment_id").fetchall()
    assert [r[1] for r in stored] == ["此处应保留农田", "建议增加绿地"]
    assert target["conflict_id"] in (stored[0][2] or "").split(",")
    pins = win.review.pins
    assert pins.isVisible() and sorted(pins.ids) == [stored[0][0], stored[1][0]]
    # selecting the piece: its comment in the form, its pin marked, drawn where it is
    panel = win.review.panel
    panel.set_filters(kind=None, type=None, severity=None, pair=None, township=None,
                      status=None, min_area_ha=0.0, slivers=True)
    assert panel.select_item(target["conflict_id"])
    assert "此处应保留农田" in panel.form.public.text() and "王某" in panel.form.public.text()
    assert pins.selected == {stored[0][0]}
    assert stored[0][0] in [pins.ids[i] for i in pins.in_view()]
    qtbot.waitUntil(lambda: win.canvas.is_current(), timeout=20000)
    image = win.canvas.grab().toImage()
    head = win.canvas.world_to_pixel(point.x, point.y).toPoint()
    head.setY(head.y() - 11)
    c = image.pixelColor(head)
    assert (c.red(), c.green(), c.blue()) == (0, 150, 255)  # the selected pin's colour
    win.review.pins_action.trigger()  # off
    assert not pins.isVisible()
    win.review.pins_action.trigger()
    assert pins.isVisible()


def test_comparison_stays_open_behind_another_tab(win: MainWindow, qtbot) -> None:
    r = win.review
    r.set_comparison(True)
    assert r.compare_dock.isVisible() and r.panel.compare_button.isChecked()
    win.attributes_dock.raise_()  # its tab in front: the comparison is only behind it
    qtbot.wait(20)
    assert r.panel.compare_button.isChecked() and r.compare_action.isChecked()
    assert not r.compare_dock.isHidden()
    r.compare_dock.close()  # closing it for real unchecks the button
    assert not r.panel.compare_button.isChecked()
    win.identify_dock.raise_()
    qtbot.wait(20)
    assert r.panel_action.isChecked()  # the review panel too is only behind a tab


def test_menu_shortcuts_and_the_english_texts(win: MainWindow, qtbot, qapp) -> None:
    r = win.review
    texts = [a.text() for a in win.review_menu.actions() if a.text()]
    for t in ("冲突审查面板", "下一个未决图斑", "上一个未决图斑", "两规对比", "进入评审模式…",
              "规划流程状态…", "导出评议决定登记表（XLSX/CSV）…", "导入公众意见（CSV）…"):
        assert t in texts
    assert r.next_action.shortcut().toString() == "Ctrl+]"
    assert r.prev_action.shortcut().toString() == "Ctrl+["
    panel = r.panel
    panel.set_filters(kind=None, type=None, severity="提示", pair=None, township=None,
                      status="undecided", min_area_ha=0.0, slivers=True)
    ids = panel.model.item_ids()
    panel.select_view_row(0)
    r.next_action.trigger()
    assert panel.current_item_id() == ids[1]
    r.prev_action.trigger()
    assert panel.current_item_id() == ids[0]
    # the same window in English
    from multiplan.gui import i18n

    assert i18n.install(qapp, "en") == "en"
    try:
        en = MainWindow(None, lang="en")
        qtbot.addWidget(en)
        texts = [a.text() for a in en.review_menu.actions() if a.text()]
        assert "Conflict review panel" in texts and "Plan workflow status…" in texts
        assert en.review.panel.next_button.text() == "Next undecided (N) ▶"
        assert en.review.panel.form.save_button.text() == "Save decision"
        assert en.review.compare_dock.windowTitle() == "Compare plans"
    finally:
        i18n.install(qapp, "zh")


def test_congress_record_from_the_workflow_dialog(win: MainWindow, qtbot) -> None:
    """From 公示中 (left by the comments test), 31 days later on a fixed clock the plan
    passes review; the dialog then takes the 人大常委会审议 record."""
    from datetime import UTC, datetime, timedelta

    from multiplan.core import review, workflow

    if workflow.current_state(win.project) != "公示中":
        pytest.skip("needs the state the comments test leaves")
    if review.committee_decision(win.project) is None:
        review.record_committee_decision(win.project, "通过", members=[REVIEWER],
                                         chair=REVIEWER)
    later = datetime.now(UTC) + timedelta(days=31)
    workflow.advance(win.project, "评议通过", actor=REVIEWER, now=later)
    dlg = win.review.show_workflow()
    qtbot.addWidget(dlg)
    qtbot.waitUntil(lambda: dlg.status is not None and dlg.milestone_button.isEnabled(),
                    timeout=20000)
    assert dlg.milestone_button.text() == "登记人大常委会审议…"
    rows = {r[0]: r[1] for r in dlg.gate_rows()}
    assert rows.get("人大常委会审议记录") == "✘"
    assert dlg.record_milestone("2026-12-20", "长人常〔2026〕12号") is not None
    with contextlib.closing(sqlite3.connect(win.project.gpkg)) as conn:
        got = conn.execute("SELECT kind, date, doc_no, actor FROM mp_milestones "
                           "ORDER BY fid DESC LIMIT 1").fetchone()
    assert got == ("人大审议", "2026-12-20", "长人常〔2026〕12号", REVIEWER)
    qtbot.waitUntil(lambda: {r[0]: r[1] for r in dlg.gate_rows()}.get(
        "人大常委会审议记录") == "✔", timeout=20000)
    dlg.close()
