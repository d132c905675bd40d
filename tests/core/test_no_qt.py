"""multiplan.core must work with no Qt at all (design principle 1).

A subprocess installs a meta-path finder that refuses PySide6, shiboken6 and PyQt*, then
imports multiplan.core and every module under src/multiplan/core/ (found with
pkgutil.walk_packages, so new modules are covered without editing this test).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

BLOCKER = textwrap.dedent("""
    import importlib.abc, sys

    BLOCKED = ("PySide6", "PySide2", "shiboken6", "shiboken2", "PyQt5", "PyQt6", "sip")

    class NoQt(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"Qt is blocked in this test: {name}")
            return None

    sys.meta_path.insert(0, NoQt())
""")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env_code = BLOCKER + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", env_code], check=False, capture_output=True,
                          text=True, timeout=300)


def test_blocker_refuses_qt() -> None:
    proc = _run("""
        for name in ("PySide6", "PySide6.QtCore", "shiboken6", "PyQt5"):
            try:
                __import__(name)
            except ImportError:
                continue
            raise SystemExit(f"{name} was importable")
        print("blocked")
    """)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert proc.stdout.strip() == "blocked"


def test_every_core_module_imports_without_qt() -> None:
    proc = _run("""
        import json, pkgutil, importlib, traceback
        import multiplan.core
        done, failed = [], {}
        for info in pkgutil.walk_packages(multiplan.core.__path__, "multiplan.core."):
            try:
                importlib.import_module(info.name)
                done.append(info.name)
            except Exception:
                failed[info.name] = traceback.format_exc(limit=3)
        qt = sorted(m for m in sys.modules
                    if m.split(".")[0] in ("PySide6", "shiboken6", "PyQt5", "PyQt6"))
        print(json.dumps({"done": done, "failed": failed, "qt": qt}))
    """)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not result["failed"], "\n".join(f"{k}:\n{v}" for k, v in result["failed"].items())
    assert not result["qt"]
    # the walk found the modules that exist on disk
    assert "multiplan.core.project" in result["done"]
    assert "multiplan.core.errors" in result["done"]
