"""Progress/cancel protocol: nested ranges map onto the parent's bar; cancel stops work."""

from __future__ import annotations

import pytest

from multiplan.core.tasks import Cancelled, CancelToken, Task, ensure_task


def test_sub_tasks_map_onto_parent_range():
    seen: list[float] = []
    task = Task(lambda f, m: seen.append(round(f, 6)))
    task.progress(0.0)
    sub = task.sub(0.5, 1.0)
    sub.progress(0.0)
    sub.progress(0.5)
    subsub = sub.sub(0.5, 1.0)  # = parent range 0.75 .. 1.0
    subsub.progress(0.5)
    subsub.progress(1.0)
    assert seen == [0.0, 0.5, 0.75, 0.875, 1.0]


def test_progress_is_clamped():
    seen: list[float] = []
    Task(lambda f, m: seen.append(f)).progress(1.7)
    Task(lambda f, m: seen.append(f)).progress(-0.2)
    assert seen == [1.0, 0.0]


def test_cancel_raises_at_next_check_and_progress():
    token = CancelToken()
    task = Task(None, token)
    task.check()  # not cancelled yet
    token.cancel()
    with pytest.raises(Cancelled):
        task.check()
    with pytest.raises(Cancelled):
        task.progress(0.3)
    with pytest.raises(Cancelled):
        task.sub(0.1, 0.2).check()  # sub-tasks share the token


def test_ensure_task_gives_silent_noop():
    t = ensure_task(None)
    t.progress(0.5, "nothing happens")
    t.check()
    existing = Task()
    assert ensure_task(existing) is existing
