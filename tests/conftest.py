"""Test configuration shared by the whole suite.

* GUI tests run headless: ``QT_QPA_PLATFORM=offscreen`` is set here, before any QApplication
  exists (set MULTIPLAN_TEST_QPA to use another platform, e.g. ``xcb`` under Xvfb).
* Tests never write the real user profile: ``XDG_CONFIG_HOME`` points to a temporary folder
  for the whole session, so QSettings (and anything else that keeps per-user config) writes
  there. Subprocesses inherit both.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ["QT_QPA_PLATFORM"] = os.environ.get("MULTIPLAN_TEST_QPA", "offscreen")

_CONFIG_HOME = tempfile.mkdtemp(prefix="multiplan-test-config-")
os.environ["XDG_CONFIG_HOME"] = _CONFIG_HOME

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_CONFIG_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's top folder (where pyproject.toml is)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data(repo_root: Path) -> Path:
    """``../shared/data`` beside the checkout: small real data with licences (read-only)."""
    path = repo_root.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path}")
    return path
