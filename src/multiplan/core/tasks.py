"""Progress and cancel protocol shared by every long core operation.

A long function takes ``task: Task | None = None``. It reports progress with
``task.progress(fraction, message)`` and calls ``task.check()`` once per chunk, which raises
:class:`Cancelled` when the user asked to stop. ``task.sub(a, b)`` maps a sub-step onto
the fraction range [a, b] of its parent, so nested operations report one coherent bar.
The GUI wires this to a worker thread; the CLI to a terminal progress bar.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

ProgressCallback = Callable[[float, str], None]


class Cancelled(Exception):
    """Raised inside a long operation when its cancel token was set."""


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class Task:
    """Progress reporter + cancel check. ``Task()`` with no arguments is a silent no-op."""

    def __init__(self, progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None, *, start: float = 0.0,
                 end: float = 1.0) -> None:
        self._cb = progress
        self.token = cancel or CancelToken()
        self._start = start
        self._end = end

    def progress(self, fraction: float, message: str = "") -> None:
        self.check()
        if self._cb is not None:
            f = min(max(fraction, 0.0), 1.0)
            self._cb(self._start + (self._end - self._start) * f, message)

    def check(self) -> None:
        if self.token.cancelled:
            raise Cancelled("已取消 / cancelled")

    def sub(self, a: float, b: float) -> Task:
        span = self._end - self._start
        return Task(self._cb, self.token, start=self._start + span * a,
                    end=self._start + span * b)


def ensure_task(task: Task | None) -> Task:
    return task if task is not None else Task()
