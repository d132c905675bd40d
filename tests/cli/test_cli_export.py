"""``multiplan export`` and ``multiplan verify-export`` on a copy of the sample county:
the public gate (exit 6, nothing written), an internal export with one A4 sheet at low dpi,
the --json summary, the progress bar on a terminal, and verify-export's exit codes."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from multiplan.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "changxing"


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("cli_export") / "changxing"
    shutil.copytree(SAMPLE, dst)
    return dst


@pytest.fixture(scope="module")
def exported(sample: Path, tmp_path_factory) -> tuple[Path, str, str]:
    """An internal export with one A4 sheet at 40 dpi, run as on a terminal."""
    out = tmp_path_factory.mktemp("cli_out") / "内部版"
    err = TTY()
    buf = io.StringIO()
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = buf, err
    try:
        code = main(["export", str(sample), "--out", str(out), "--internal", "--sheets",
                     "landuse", "--format", "pdf,png", "--paper", "A4", "--dpi", "40"])
    finally:
        sys.stdout, sys.stderr = old_out, old_err
    assert code == 0, buf.getvalue() + err.getvalue()
    return out, buf.getvalue(), err.getvalue()


def run(*argv: str) -> tuple[int, str]:
    buf = io.StringIO()
    old = sys.stdout
    sys.stdout = buf
    try:
        code = main(list(argv))
    finally:
        sys.stdout = old
    return code, buf.getvalue()


def test_public_export_of_a_draft_plan_is_refused(sample: Path, tmp_path: Path) -> None:
    code, out = run("export", str(sample), "--out", str(tmp_path / "pub"), "--public",
                    "--sheets", "landuse", "--json")
    assert code == 6
    err = json.loads(out)["error"]
    assert err["code"] == "export.gate_failed" and "编制中" in err["zh"]
    assert not (tmp_path / "pub").exists() and list(tmp_path.iterdir()) == []


def test_public_and_internal_are_required_and_exclusive(sample: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["export", str(sample), "--out", "x"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["export", str(sample), "--public", "--internal"])


def test_internal_export_report_and_files(exported) -> None:
    out, text, _ = exported
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    pdf = next(f for f in files if f.startswith("maps/") and f.endswith(".pdf"))
    assert any(f.startswith("maps/") and f.endswith(".png") for f in files)
    assert {"data/规划数据包.gpkg", "tables/统计表.xlsx", "manifest.json",
            "manifest.sha256"} <= files
    assert "内部版" in text and "internal" in text and pdf in text
    assert hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest() in text
    assert f"multiplan verify-export {out}" in text


def test_progress_bar_on_a_terminal(exported) -> None:
    _, _, err = exported
    assert "█" in err and "100.0%" in err


def test_json_summary(sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "json"
    code, text = run("export", str(sample), "--out", str(out), "--internal", "--sheets",
                     "none", "--json")
    s = json.loads(text)
    assert code == 0 and s["exit_code"] == 0 and s["edition"] == "internal"
    assert s["state"] == "编制中" and s["watermark"] is None and s["sheets"] == []
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert s["files"] == len(files) - 2  # the manifest and its hash are not listed in it
    assert not any(f.startswith("maps/") for f in files)
    assert s["manifest_sha256"] == hashlib.sha256((out / "manifest.json").read_bytes()
                                                  ).hexdigest()
    assert s["bytes"] == sum((out / f).stat().st_size for f in files
                             if f not in ("manifest.json", "manifest.sha256"))


def test_verify_export_exit_codes_and_names(exported, tmp_path: Path) -> None:
    out, _, _ = exported
    code, text = run("verify-export", str(out), "--json")
    rep = json.loads(text)
    assert code == 0 and rep["ok"] and rep["exit_code"] == 0 and rep["checked"] > 5
    dst = tmp_path / "copy"
    shutil.copytree(out, dst)
    pdf = next((dst / "maps").glob("*.pdf"))
    data = bytearray(pdf.read_bytes())
    data[len(data) // 3] ^= 0x20
    pdf.write_bytes(bytes(data))
    code, text = run("verify-export", str(dst))
    assert code == 6
    assert f"maps/{pdf.name}" in text and "已改动" in text and "changed" in text
    code, text = run("verify-export", str(dst), "--json")
    assert code == 6 and json.loads(text)["changed"] == [f"maps/{pdf.name}"]


def test_verify_export_as_a_separate_process(exported) -> None:
    out, _, _ = exported
    r = subprocess.run([sys.executable, "-m", "multiplan", "verify-export", str(out)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "完好" in r.stdout and "intact" in r.stdout
