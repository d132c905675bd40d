"""Background tasks: one worker mechanism with progress and Cancel, readable errors, and a
UI thread that keeps running while core work happens (measured, not assumed)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer

from multiplan.gui import jobs
from multiplan.gui.workers import CANCELLED, DONE, FAILED, TaskManager, TaskPanel


@pytest.fixture
def manager(qtbot) -> TaskManager:
    m = TaskManager()
    panel = TaskPanel(m)
    qtbot.addWidget(panel)
    m.panel = panel  # type: ignore[attr-defined]
    yield m
    m.cancel_all(wait=5)


def test_a_process_job_reports_progress_and_cancels(manager: TaskManager, qtbot) -> None:
    handle = manager.run_in_process("wait", jobs.sleep_steps, 200, 0.05)
    row = manager.panel.row(handle)  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: handle.fraction > 0.02, timeout=30000)
    assert row.bar.value() > 0 and "/200" in row.status.text()
    t0 = time.monotonic()
    row.cancel_button.click()
    qtbot.waitUntil(lambda: not handle.is_running(), timeout=10000)
    assert handle.state == CANCELLED
    assert time.monotonic() - t0 < 2.0
    assert row.status.text().startswith("已取消")
    assert handle.process.exitcode == 0


def test_errors_become_readable_text(manager: TaskManager, qtbot) -> None:
    shown = []
    manager.error_handler = lambda h: shown.append(h.error_text("zh"))
    bilingual = manager.run_in_process("fails", jobs.fail, True)
    crash = manager.run_in_process("crashes", jobs.fail, False)
    qtbot.waitUntil(lambda: not bilingual.is_running() and not crash.is_running(),
                    timeout=30000)
    assert bilingual.state == crash.state == FAILED
    assert bilingual.error_text("zh") == "测试错误：图层已损坏"
    assert bilingual.error_text("en") == "test error: the layer is broken"
    assert crash.error_text("zh") == "发生意外错误（RuntimeError）：boom"
    assert all("Traceback" not in t for t in shown) and len(shown) == 2


def test_thread_jobs_post_partial_results_in_order(manager: TaskManager, qtbot) -> None:
    got = []

    def work(task, n):
        for i in range(n):
            task.post(i)
        return n

    handle = manager.run_in_thread("posts", work, 50, on_partial=got.append)
    qtbot.waitUntil(lambda: handle.state == DONE)
    assert got == list(range(50)) and handle.result == 50


def test_ui_thread_keeps_running_during_conflict_detection(open_window, sample_copy: Path,
                                                          qtbot) -> None:
    """A long core operation (差异图斑 for 现状 × 土地利用规划, seconds of GEOS and pandas) runs
    while a 5 ms timer measures how late the UI thread's event loop gets: never > 100 ms."""
    win = open_window(sample_copy)
    qtbot.waitUntil(lambda: not win.canvas._worker.busy(), timeout=10000)
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    handle = win.run_conflicts(("现状用地", "土地利用规划"))
    timer.start(5)
    last[0] = time.perf_counter()
    qtbot.waitUntil(lambda: not handle.is_running(), timeout=60000)
    timer.stop()
    assert handle.state == DONE, handle.error
    assert handle.seconds() > 1.0  # it really was long work
    assert len(gaps) > 100
    assert max(gaps) < 0.100, f"event loop blocked {max(gaps) * 1000:.0f} ms"
    # the register shows up as a layer; identify lists a parcel's conflicts
    qtbot.waitUntil(lambda: "mp_conflicts" in win.records, timeout=10000)
    with sqlite3.connect(sample_copy / "plan.gpkg") as conn:
        fid, n = conn.execute(
            "SELECT fid_a, count(*) FROM mp_conflicts WHERE layer_a = '现状用地' AND "
            "severity <> '一致' GROUP BY fid_a ORDER BY count(*) DESC LIMIT 1").fetchone()
    from multiplan.gui.identify import conflicts_of

    assert len(conflicts_of(sample_copy / "plan.gpkg", "现状用地", fid)) == n


def test_cancel_a_running_core_task_leaves_the_project_unchanged(open_window,
                                                                  sample_copy: Path,
                                                                  qtbot) -> None:
    win = open_window(sample_copy)
    handle = win.run_conflicts(None)  # every meaningful pair: a long run
    row = win.task_panel.row(handle)
    qtbot.waitUntil(lambda: handle.fraction > 0, timeout=30000)
    row.cancel_button.click()
    qtbot.waitUntil(lambda: not handle.is_running(), timeout=30000)
    assert handle.state == CANCELLED
    assert "mp_conflicts" not in win.records
    conn = sqlite3.connect(sample_copy / "plan.gpkg")
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        runs = (conn.execute("SELECT count(*) FROM mp_conflict_runs").fetchone()[0]
                if "mp_conflict_runs" in tables else 0)
    finally:
        conn.close()
    assert "mp_conflicts" not in tables and runs == 0


def test_import_runs_in_a_worker_and_the_layer_appears(open_window, sample_copy: Path,
                                                       tmp_path: Path, qtbot) -> None:
    import json

    src = tmp_path / "新规划.geojson"
    src.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"DLBM": "0101"},
         "geometry": {"type": "Polygon", "coordinates": [[[119.90, 31.00], [119.91, 31.00],
                                                          [119.91, 31.01], [119.90, 31.01],
                                                          [119.90, 31.00]]]}}]}),
        encoding="utf-8")
    win = open_window(sample_copy)
    handle = win.import_layer(str(src), {"name": "新规划", "level": "county",
                                         "role": "land_use_plan", "code_field": "DLBM",
                                         "scheme": "ydyh2023"})
    qtbot.waitUntil(lambda: not handle.is_running(), timeout=30000)
    assert handle.state == DONE, handle.error
    qtbot.waitUntil(lambda: win.layer_item("新规划") is not None, timeout=10000)
    assert win.records["新规划"].feature_count == 1
    # a refused file becomes a readable error, not a crash
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json", encoding="utf-8")
    shown = []
    win.tasks.error_handler = lambda h: shown.append(h.error_text("zh"))
    handle = win.import_layer(str(bad), {"name": "坏文件"})
    qtbot.waitUntil(lambda: not handle.is_running(), timeout=30000)
    assert handle.state == FAILED and shown and str(bad) in shown[0]
    assert "Traceback" not in shown[0]
