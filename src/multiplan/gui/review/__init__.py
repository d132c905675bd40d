"""The review committee's tools in the desktop app (issue 8).

``install_review(window)`` adds to a :class:`~multiplan.gui.main_window.MainWindow`:

* the 审查 panel (a dock): the review items — conflict register plus 质检 / 三区三线 /
  assessment findings — with filters, sorting, next/previous undecided (N / P, Ctrl+] /
  Ctrl+[) and the decision form; selecting a row zooms the map to the piece and outlines it;
* 两规对比: the two source plans of the selected conflict side by side on two synchronised
  canvases, each in its own classification colours;
* review mode (审查 → 进入评审模式, or ``multiplan gui PROJECT --review --user NAME``): the
  project reopened read-only for plan data, a banner, decisions and comments still allowed;
* 规划流程状态: the workflow state, its gates (✔/✘ with the reason) and the advance button.
"""

from __future__ import annotations

from typing import Any

from .controller import ReviewController


def install_review(window: Any) -> ReviewController:
    """Add the review tools to a main window (idempotent); returns the controller."""
    ctl = getattr(window, "review", None)
    if isinstance(ctl, ReviewController):
        return ctl
    ctl = ReviewController(window)
    window.review = ctl
    return ctl


__all__ = ["ReviewController", "install_review"]
