"""Editing tools of the desktop app over :mod:`multiplan.core.editing`.

``install_editing(window)`` adds an 编辑 toolbar and menu to a
:class:`~multiplan.gui.main_window.MainWindow` and returns the
:class:`~multiplan.gui.editing.controller.EditingController`: start/stop editing a layer
(locked control lines ask for an unlock reason), draw/vertex/reshape/split tools on the map
canvas with snapping, merge/delete/copy/paste of the selection, an attribute form with a
用地用海 code picker (single and batch), save/discard, core commands mirrored into the
window's Undo/Redo, and the offer to restore unsaved edits after a crash.
"""

from __future__ import annotations

from typing import Any

from .controller import EditingController


def install_editing(window: Any) -> EditingController:
    """Add editing to a main window (idempotent); returns its controller."""
    ctl = getattr(window, "editing", None)
    if isinstance(ctl, EditingController):
        return ctl
    ctl = EditingController(window)
    window.editing = ctl
    return ctl


__all__ = ["EditingController", "install_editing"]
