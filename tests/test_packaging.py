"""The built package carries its resources (standards tables) as package data.

A wheel is built from a copy of the source (so the checkout is not touched), then unpacked
and imported in a fresh interpreter that sees only the unpacked wheel for ``multiplan``:
``importlib.resources.files("multiplan") / "resources" / "standards"`` must hold the JSON
standards tables.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        if (repo_root / name).exists():
            shutil.copy2(repo_root / name, src / name)
    shutil.copytree(repo_root / "src", src / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                           "--disable-pip-version-check", "-w", str(out), str(src)],
                          check=False, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheels = list(out.glob("multiplan-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_lists_standards_json(wheel: Path, repo_root: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n for n in names
               if n.startswith("multiplan/resources/standards/") and n.endswith(".json")}
    assert shipped, f"no standards JSON in {wheel.name}: {names}"
    on_disk = {f"multiplan/resources/standards/{p.name}"
               for p in (repo_root / "src/multiplan/resources/standards").glob("*.json")}
    assert on_disk <= shipped, f"missing from the wheel: {sorted(on_disk - shipped)}"


def test_installed_copy_finds_standards(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = (
        "import importlib.resources, json, multiplan, sys\n"
        "d = importlib.resources.files('multiplan') / 'resources' / 'standards'\n"
        "files = sorted(p.name for p in d.iterdir() if p.name.endswith('.json'))\n"
        "for name in files:\n"
        "    json.loads((d / name).read_text(encoding='utf-8'))\n"
        "print(json.dumps({'origin': multiplan.__file__, 'files': files}))\n"
    )
    # -I: isolated (ignores PYTHONPATH and the user site; the editable install's path hook
    # still exists, so the unpacked wheel goes first on sys.path)
    proc = subprocess.run([sys.executable, "-I", "-c",
                           f"import sys; sys.path.insert(0, {str(target)!r}); exec({code!r})"],
                          check=False, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert Path(result["origin"]).is_relative_to(target), result["origin"]
    assert result["files"], "no *.json under multiplan/resources/standards in the wheel"
