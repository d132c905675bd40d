"""Sub-commands of ``multiplan`` that live outside ``cli.py``.

Each module in this package defines ``register(sub)`` which adds its sub-parsers to the
``argparse`` sub-parser action of :func:`multiplan.cli.build_parser` and sets ``func`` on them.
Modules are imported in name order, so the help lists them in a stable order. A module that
fails to import is a programming error and is not hidden.
"""
from __future__ import annotations

import importlib
import pkgutil


def register_all(sub) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
