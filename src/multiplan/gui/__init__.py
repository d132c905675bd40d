"""multiplan.gui — the PySide6 desktop app: views and tools over multiplan.core.

Start it with :func:`multiplan.gui.app.run` (``multiplan gui`` on the command line).
Qt is imported only under this package; ``multiplan.core`` never imports it.
"""
