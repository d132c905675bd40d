"""One worker mechanism for every long operation, and the task panel that shows it.

:class:`TaskManager` runs a job off the UI thread and reports progress, cancel and the outcome
through a :class:`TaskHandle`:

* ``run_in_process(title, job, *args)`` — core operations (import, conflicts, checks,
  assessment, export). ``job`` is a top-level function of :mod:`multiplan.gui.jobs`; it runs
  in a worker process (fork server on Linux, so workers start with the core preloaded) and
  gets a core :class:`~multiplan.core.tasks.Task` whose cancel token is shared with this
  process. A supervisor thread starts the process and reads its pipe, so the UI thread never
  waits for either.
* ``run_in_thread(title, fn, *args)`` — GUI-side work whose result must live in this
  process (reading layers for the canvas). ``fn`` gets a :class:`ThreadTask` (a core Task
  that can also ``post()`` partial results to the UI thread) and must keep each step short.

Progress is polled by a UI timer (no signal flood); completion arrives as a queued signal.
Errors become bilingual text for a readable dialog; cancellation is an outcome, not an error.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from multiplan.core.tasks import Cancelled, CancelToken, Task

from . import jobs

log = logging.getLogger(__name__)

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"
POLL_MS = 80

_context: Any = None
_context_lock = threading.Lock()


def mp_context() -> Any:
    """The multiprocessing context of the worker processes (fork server where available:
    workers fork from a server that preloaded the core, never from the GUI process)."""
    global _context
    with _context_lock:
        if _context is None:
            if sys.platform.startswith("linux") and \
                    "forkserver" in multiprocessing.get_all_start_methods():
                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload(["multiplan.gui.jobs"])
            else:
                ctx = multiprocessing.get_context("spawn")
            _context = ctx
        return _context


def warm_up() -> None:
    """Start the fork server in the background so the first job starts quickly."""
    def start() -> None:
        try:
            ctx = mp_context()
            if ctx.get_start_method() == "forkserver":
                from multiprocessing import forkserver

                forkserver.ensure_running()
        except Exception:
            log.debug("fork server warm-up failed", exc_info=True)

    threading.Thread(target=start, name="multiplan-warmup", daemon=True).start()


class ThreadTask(Task):
    """The Task of an in-process job: progress and cancel as usual, plus :meth:`post`."""

    def __init__(self, handle: TaskHandle) -> None:
        super().__init__(handle._set_progress, handle._token)
        self._handle = handle

    def post(self, item: Any) -> None:
        """Hand a partial result to the UI thread (``on_partial``), in order."""
        self.check()
        try:
            self._handle._manager._bridge.partial.emit(self._handle, item)
        except RuntimeError:  # the window was closed meanwhile
            raise Cancelled("the receiver is gone") from None


class TaskHandle(QObject):
    """One job: its state, progress and outcome. Signals arrive in the UI thread."""

    progressChanged = Signal(float, str)
    finished = Signal(str)  # final state

    _ids = itertools.count(1)

    def __init__(self, manager: TaskManager, title: str, backend: str,
                 transient: bool = False) -> None:
        super().__init__(manager)
        self.transient = transient  # the panel forgets it once it finished well
        self.id = next(self._ids)
        self.title = title
        self.backend = backend
        self.state = RUNNING
        self.fraction = 0.0
        self.message = ""
        self.result: Any = None
        self.error: dict[str, Any] | None = None
        self.started = time.monotonic()
        self.ended: float | None = None
        self._manager = manager
        self._token = CancelToken()
        self._mp_event: Any = None
        self._shown = (-1.0, "")
        self.on_done: Callable[[Any], None] | None = None
        self.on_error: Callable[[dict[str, Any]], None] | None = None
        self.on_cancel: Callable[[], None] | None = None
        self.on_partial: Callable[[Any], None] | None = None
        self.process: Any = None

    # called from worker threads
    def _set_progress(self, fraction: float, message: str) -> None:
        self.fraction = float(fraction)
        if message:
            self.message = message

    def cancel(self) -> None:
        """Ask the job to stop (it stops at its next progress/cancel check)."""
        if self.state == RUNNING:
            self._token.cancel()
            if self._mp_event is not None:
                self._mp_event.set()

    @property
    def cancel_requested(self) -> bool:
        return self._token.cancelled

    def is_running(self) -> bool:
        return self.state == RUNNING

    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def error_text(self, lang: str) -> str:
        if not self.error:
            return ""
        return self.error.get("en" if lang == "en" else "zh") or self.error.get("en", "")

    def _poll(self) -> None:
        shown = (round(self.fraction, 3), self.message)
        if shown != self._shown:
            self._shown = shown
            self.progressChanged.emit(self.fraction, self.message)


class _Bridge(QObject):
    """Queued hops from worker threads to the UI thread."""

    finished = Signal(object, str, object)  # handle, state, payload
    partial = Signal(object, object)  # handle, item


class TaskManager(QObject):
    """Starts jobs and tracks them (see the module docstring)."""

    taskStarted = Signal(object)
    taskFinished = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tasks: list[TaskHandle] = []
        self._bridge = _Bridge()
        self._bridge.finished.connect(self._on_finished, Qt.ConnectionType.QueuedConnection)
        self._bridge.partial.connect(self._on_partial, Qt.ConnectionType.QueuedConnection)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self.error_handler: Callable[[TaskHandle], None] | None = None

    # ------------------------------------------------------------------ starting
    def _new(self, title: str, backend: str, on_done: Any, on_error: Any, on_cancel: Any,
             on_partial: Any = None, transient: bool = False) -> TaskHandle:
        handle = TaskHandle(self, title, backend, transient)
        handle.on_done, handle.on_error = on_done, on_error
        handle.on_cancel, handle.on_partial = on_cancel, on_partial
        self.tasks.append(handle)
        if not self._timer.isActive():
            self._timer.start()
        self.taskStarted.emit(handle)
        return handle

    def run_in_thread(self, title: str, fn: Callable[..., Any], *args: Any,
                      on_done: Callable[[Any], None] | None = None,
                      on_error: Callable[[dict[str, Any]], None] | None = None,
                      on_cancel: Callable[[], None] | None = None,
                      on_partial: Callable[[Any], None] | None = None,
                      transient: bool = False, **kwargs: Any) -> TaskHandle:
        handle = self._new(title, "thread", on_done, on_error, on_cancel, on_partial,
                           transient)

        def run() -> None:
            task = ThreadTask(handle)
            try:
                result = fn(task, *args, **kwargs)
                state, payload = DONE, result
            except Cancelled:
                state, payload = CANCELLED, None
            except BaseException as exc:  # noqa: BLE001 — reported, never raised into Qt
                state, payload = FAILED, jobs.error_payload(exc)
                log.error("task %r failed:\n%s", title, payload.get("traceback", payload))
            self._emit_finished(handle, state, payload)

        threading.Thread(target=run, name=f"multiplan-task-{handle.id}", daemon=True).start()
        return handle

    def run_in_process(self, title: str, job: Callable[..., Any], *args: Any,
                       on_done: Callable[[Any], None] | None = None,
                       on_error: Callable[[dict[str, Any]], None] | None = None,
                       on_cancel: Callable[[], None] | None = None,
                       **kwargs: Any) -> TaskHandle:
        handle = self._new(title, "process", on_done, on_error, on_cancel)
        ctx = mp_context()
        handle._mp_event = ctx.Event()

        def supervise() -> None:
            state, payload = FAILED, None
            parent, child = ctx.Pipe(duplex=False)
            proc = None
            started = False
            try:
                proc = ctx.Process(target=jobs.child_main, name=f"multiplan-job-{handle.id}",
                                   args=(child, handle._mp_event, job, args, kwargs),
                                   daemon=True)
                proc.start()
                started = True
                handle.process = proc
                child.close()
                if handle.cancel_requested:
                    handle._mp_event.set()
                while True:
                    try:
                        msg = parent.recv()
                    except EOFError:
                        proc.join(5)
                        state = FAILED
                        payload = {"code": "worker.died",
                                   "zh": f"后台进程意外退出（退出码 {proc.exitcode}）",
                                   "en": f"the worker process exited unexpectedly "
                                         f"(exit code {proc.exitcode})"}
                        break
                    if msg[0] == "progress":
                        handle._set_progress(msg[1], msg[2])
                    elif msg[0] == "done":
                        state, payload = DONE, msg[1]
                        break
                    elif msg[0] == "cancelled":
                        state = CANCELLED
                        break
                    else:
                        state, payload = FAILED, msg[1]
                        if "traceback" in payload:
                            log.error("job %r failed:\n%s", title, payload["traceback"])
                        break
            except BaseException as exc:  # noqa: BLE001
                state, payload = FAILED, jobs.error_payload(exc)
                log.error("job %r could not run:\n%s", title, payload.get("traceback"))
            finally:
                parent.close()
                if proc is not None and started:
                    proc.join(10)
                    if proc.is_alive():
                        proc.terminate()
            self._emit_finished(handle, state, payload)

        threading.Thread(target=supervise, name=f"multiplan-job-{handle.id}",
                         daemon=True).start()
        return handle

    def _emit_finished(self, handle: TaskHandle, state: str, payload: Any) -> None:
        """From a worker thread: hand the outcome to the UI thread (if it is still there)."""
        with contextlib.suppress(RuntimeError):  # the window was closed meanwhile
            self._bridge.finished.emit(handle, state, payload)

    # ------------------------------------------------------------------ state
    def running(self) -> list[TaskHandle]:
        return [t for t in self.tasks if t.is_running()]

    def cancel_all(self, wait: float = 0.0) -> None:
        """Cancel every running job; wait up to ``wait`` seconds for them, then stop
        worker processes that did not finish."""
        for t in self.running():
            t.cancel()
        deadline = time.monotonic() + wait
        for t in self.running():
            proc = t.process
            if proc is not None:
                proc.join(max(0.0, deadline - time.monotonic()))
                if proc.is_alive():
                    proc.terminate()

    def clear_finished(self) -> None:
        self.tasks = [t for t in self.tasks if t.is_running()]

    def _poll(self) -> None:
        running = False
        for t in self.tasks:
            if t.is_running():
                running = True
                t._poll()
        if not running:
            self._timer.stop()

    def _on_partial(self, handle: TaskHandle, item: Any) -> None:
        if handle.on_partial is not None and not handle.cancel_requested:
            try:
                handle.on_partial(item)
            except Exception:
                log.exception("partial result handler of %r failed", handle.title)

    def _on_finished(self, handle: TaskHandle, state: str, payload: Any) -> None:
        handle.state = state
        handle.ended = time.monotonic()
        if state == DONE:
            handle.fraction = 1.0
            handle.result = payload
        elif state == FAILED:
            handle.error = payload or {"zh": "未知错误", "en": "unknown error"}
        handle._poll()
        try:
            if state == DONE and handle.on_done is not None:
                handle.on_done(payload)
            elif state == FAILED:
                if handle.on_error is not None:
                    handle.on_error(handle.error)  # type: ignore[arg-type]
                elif self.error_handler is not None:
                    self.error_handler(handle)
            elif state == CANCELLED and handle.on_cancel is not None:
                handle.on_cancel()
        except Exception as exc:
            log.exception("completion handler of %r failed", handle.title)
            handle.state = FAILED
            handle.error = jobs.error_payload(exc)
            if self.error_handler is not None:
                self.error_handler(handle)
        handle.finished.emit(handle.state)
        self.taskFinished.emit(handle)


class TaskRow(QWidget):
    """One job in the task panel: title, progress bar, message, Cancel."""

    def __init__(self, handle: TaskHandle, lang: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.handle = handle
        self.lang = lang
        self.title = QLabel(handle.title)
        self.title.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(True)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #555;")
        self.cancel_button = QToolButton()
        self.cancel_button.setText(self.tr("取消"))
        self.cancel_button.clicked.connect(self._cancel)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.cancel_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.bar)
        lay.addWidget(self.status)
        handle.progressChanged.connect(self._progress)
        handle.finished.connect(self._finished)
        self._progress(handle.fraction, handle.message)
        if not handle.is_running():
            self._finished(handle.state)

    def _cancel(self) -> None:
        self.handle.cancel()
        self.cancel_button.setEnabled(False)
        self.status.setText(self.tr("正在取消…"))

    def _progress(self, fraction: float, message: str) -> None:
        self.bar.setValue(round(fraction * 1000))
        self.bar.setFormat(f"{fraction * 100:.0f}%")
        if self.handle.is_running() and not self.handle.cancel_requested:
            self.status.setText(message)

    def _finished(self, state: str) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.hide()
        secs = f"{self.handle.seconds():.1f} s"
        if state == DONE:
            self.bar.setValue(1000)
            self.bar.setFormat("100%")
            self.status.setText(self.tr("完成") + f" · {secs}")
        elif state == CANCELLED:
            self.status.setText(self.tr("已取消") + f" · {secs}")
        else:
            self.status.setText(self.tr("失败：") + self.handle.error_text(self.lang))


class TaskPanel(QWidget):
    """The task dock's content: a row per job, newest first."""

    def __init__(self, manager: TaskManager, lang: str = "zh",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.manager = manager
        self.lang = lang
        self.rows: dict[int, TaskRow] = {}
        self._inner = QWidget()
        self._list = QVBoxLayout(self._inner)
        self._list.setContentsMargins(0, 0, 0, 0)
        self._list.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._inner)
        self.empty = QLabel(self.tr("没有正在运行的任务"))
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet("color: #888;")
        self.clear_button = QPushButton(self.tr("清除已完成"))
        self.clear_button.clicked.connect(self.clear_finished)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.empty)
        lay.addWidget(scroll, 1)
        lay.addWidget(self.clear_button, 0, Qt.AlignmentFlag.AlignRight)
        manager.taskStarted.connect(self._add)
        manager.taskFinished.connect(self._finished)
        self._update_empty()

    def _add(self, handle: TaskHandle) -> None:
        row = TaskRow(handle, self.lang)
        self.rows[handle.id] = row
        self._list.insertWidget(0, row)
        self._update_empty()

    def row(self, handle: TaskHandle) -> TaskRow:
        return self.rows[handle.id]

    def clear_finished(self) -> None:
        for hid, row in list(self.rows.items()):
            if not row.handle.is_running():
                row.setParent(None)
                row.deleteLater()
                del self.rows[hid]
        self.manager.clear_finished()
        self._update_empty()

    def _finished(self, handle: TaskHandle) -> None:
        if handle.transient and handle.state == DONE and handle.id in self.rows:
            row = self.rows.pop(handle.id)
            row.setParent(None)
            row.deleteLater()
        self._update_empty()

    def _update_empty(self) -> None:
        self.empty.setVisible(not self.manager.running())
