"""Long core operations as jobs for the GUI's worker processes. No Qt here.

Each job is a top-level function ``job(task, *args) -> small picklable result`` that opens
the project itself (a project is a folder; nothing heavy crosses the process boundary) and
calls one core function with ``task`` for progress and cancel. :func:`child_main` is the
entry point of a worker process: it wires the core :class:`~multiplan.core.tasks.Task`
protocol to a pipe (progress out) and a process-shared event (cancel in), and sends back the
result, :class:`~multiplan.core.tasks.Cancelled`, or a bilingual error — never a traceback
for a user to read.

Why processes: core functions hold the GIL for stretches of 100 ms and more (GEOS and pandas
steps, measured in the tests), and so does Qt while it draws; in a separate process they can
never freeze the window, and the work gets a core of its own.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

# Imported here so the fork server preloads them once (forked workers start warm).
from multiplan.core import conflicts as _conflicts  # noqa: F401
from multiplan.core import io as _io  # noqa: F401
from multiplan.core.errors import MultiplanError
from multiplan.core.project import Project
from multiplan.core.tasks import Cancelled, CancelToken, Task

#: Seconds between progress messages sent over the pipe.
PROGRESS_INTERVAL = 0.05


class EventToken(CancelToken):
    """A cancel token backed by a ``multiprocessing`` event shared with the GUI process."""

    def __init__(self, event: Any) -> None:
        super().__init__()
        self._mp_event = event

    def cancel(self) -> None:
        self._mp_event.set()

    @property
    def cancelled(self) -> bool:
        return self._mp_event.is_set()


def error_payload(exc: BaseException) -> dict[str, Any]:
    """A bilingual, user-readable description of ``exc`` (plus the traceback for the log)."""
    if isinstance(exc, MultiplanError):
        return {"code": exc.code, "zh": exc.text("zh"), "en": exc.text("en")}
    name = type(exc).__name__
    return {"code": "unexpected", "zh": f"发生意外错误（{name}）：{exc}",
            "en": f"unexpected error ({name}): {exc}",
            "traceback": traceback.format_exc()}


def child_main(conn: Any, cancel_event: Any, fn: Any, args: tuple, kwargs: dict) -> None:
    """Run ``fn(task, *args, **kwargs)`` in a worker process and report over ``conn``."""
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_INTERVAL or fraction >= 1.0:
            last[0] = now
            conn.send(("progress", float(fraction), str(message)))

    task = Task(progress, EventToken(cancel_event))
    try:
        result = fn(task, *args, **kwargs)
        conn.send(("done", result))
    except Cancelled:
        conn.send(("cancelled",))
    except BaseException as exc:  # noqa: BLE001 — everything becomes a readable error
        conn.send(("error", error_payload(exc)))
    finally:
        conn.close()


# ---------------------------------------------------------------------- the jobs
def import_layer(task: Task, folder: str, path: str, options: dict[str, Any]) -> dict[str, Any]:
    """Import a vector or raster file (core io.import_layer)."""
    from multiplan.core.io import import_layer as run

    report = run(Project.open(folder), path, task=task, **options)
    return {"name": report.name, "features": report.feature_count,
            "summary_zh": report.summary("zh"), "summary_en": report.summary("en")}


def detect_conflicts(task: Task, folder: str, layer_a: str | None = None,
                     layer_b: str | None = None) -> dict[str, Any]:
    """Conflict detection (差异图斑) for one pair, or every meaningful pair."""
    from multiplan.core.conflicts import detect_all, detect_conflicts, load_rules

    project = Project.open(folder)
    if layer_a and layer_b:
        runs = [detect_conflicts(project, layer_a, layer_b, task=task)]
    else:
        runs = detect_all(project, task=task)
    rules = load_rules()
    pairs = []
    for run in runs:
        s = run.summary(rules)
        pairs.append({k: s.get(k) for k in ("layer_a", "layer_b", "pieces", "conflicts",
                                            "conflict_area_ha", "pending", "slivers")})
    return {"pairs": pairs, "rule_version": f"{rules.id}/{rules.version}"}


def merged_map(task: Task, folder: str) -> dict[str, Any]:
    """The proposed merged 一张图 (core conflicts.build_merged_map)."""
    from multiplan.core.conflicts import build_merged_map

    return build_merged_map(Project.open(folder), task=task).summary()


def assessment(task: Task, folder: str, reports: bool = True) -> dict[str, Any]:
    """The 双评价 run (and its tables/charts under exports/assessment)."""
    from multiplan.core.assessment import assessment_gate, run_assessment

    project = Project.open(folder)
    run = run_assessment(project, task=task.sub(0.0, 0.9))
    out: dict[str, Any] = {"run_id": run.run_id, "summary": run.summary()}
    if reports:
        from multiplan.core.assessment.report import write_reports

        task.progress(0.92, "写出统计表与图 / writing tables and charts")
        rep = write_reports(project, run)
        out["report_dir"] = str(rep["dir"])
    gate = assessment_gate(project)
    out["gate_zh"], out["gate_en"] = gate.zh, gate.en
    task.progress(1.0, "完成 / done")
    return out


def assessment_gate(task: Task, folder: str) -> dict[str, Any]:
    from multiplan.core.assessment import assessment_gate as gate

    task.progress(0.1, "检查 / checking")
    g = gate(Project.open(folder))
    return g.to_dict()


def run_checks(task: Task, folder: str, groups: list[str] | None = None) -> dict[str, Any]:
    """质检 / 三区三线 checks (core qa.run_checks) of the given check groups (None: all)."""
    from multiplan.core import qa

    project = Project.open(folder)
    only = None
    if groups:
        only = [c["id"] for c in qa.available_checks() if c["group"] in groups]
    run = qa.run_checks(project, only=only, task=task)
    keys = ("id", "group", "zh", "en", "blocking", "status", "status_zh", "errors", "warnings",
            "infos", "error_area_m2")
    checks = [{k: c.get(k) for k in keys} for c in run.to_dict(findings=0)["checks"]]
    return {"passed": run.passed, "blocking_failures": run.blocking_failures,
            "checks": checks, "seconds": round(run.seconds, 2)}


def export_conflicts(task: Task, folder: str, out_dir: str) -> dict[str, Any]:
    """Export the conflict register (CSV + XLSX)."""
    from multiplan.core.conflicts import export_register

    task.progress(0.05, "导出差异图斑登记表 / exporting the register")
    paths = export_register(Project.open(folder), Path(out_dir))
    task.progress(1.0, "完成 / done")
    return {k: str(v) for k, v in paths.items()}


def sleep_steps(task: Task, steps: int = 50, seconds: float = 0.05) -> int:
    """A job that only waits (diagnostics and tests of the worker mechanism)."""
    for i in range(steps):
        task.progress(i / steps, f"{i}/{steps}")
        time.sleep(seconds)
    task.progress(1.0, "done")
    return steps


def fail(task: Task, bilingual: bool = True) -> None:
    """A job that fails (tests of the error path)."""
    task.progress(0.1, "failing")
    if bilingual:
        raise MultiplanError("test.failure", "测试错误：图层已损坏", "test error: the layer is broken")
    raise RuntimeError("boom")
