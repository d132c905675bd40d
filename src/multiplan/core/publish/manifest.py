"""``manifest.json`` of an export and :func:`verify_export` (issue 9 part 6).

The manifest lists every exported file (relative path, size, SHA-256), the hashes of the
project content the export was made from, the rule and parameter versions, the project
state and plan version, public or internal, the generator and the time. The manifest itself
is protected by ``manifest.sha256`` (one line in ``sha256sum`` format, so
``sha256sum -c manifest.sha256`` also checks it).

Input hashes are computed here (the workflow's content hashing was not available when this
was written): a vector layer or ``mp_*`` table is hashed over its rows in rowid order, each
value encoded with its SQLite type (so 1, 1.0, '1' and NULL differ and geometry blobs are
hashed as stored); a raster over its file bytes. The method is named in the manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..project import Project

__all__ = ["MANIFEST", "MANIFEST_HASH", "VerifyReport", "file_sha256", "input_hashes",
           "table_sha256", "verify_export", "write_manifest"]

MANIFEST = "manifest.json"
MANIFEST_HASH = "manifest.sha256"
FORMAT = "multiplan-export/1"
INPUT_HASH_METHOD = ("sha256 over the rows of each table in rowid order, every value tagged "
                     "with its SQLite type (geometry blobs as stored); rasters: sha256 of the "
                     "file")
#: mp_* tables whose content an export depends on (those present are hashed).
INPUT_TABLES = ("mp_settings", "mp_conflicts", "mp_conflict_rules", "mp_assessment_runs",
                "mp_sansheng_stats", "mp_indicator_results", "mp_workflow")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _encode(v: Any) -> bytes:
    if v is None:
        return b"N"
    if isinstance(v, bool | int):
        return b"I" + str(int(v)).encode() + b";"
    if isinstance(v, float):
        return b"R" + struct.pack("<d", v)
    if isinstance(v, bytes | bytearray | memoryview):
        b = bytes(v)
        return b"B" + str(len(b)).encode() + b":" + b
    s = str(v).encode("utf-8")
    return b"T" + str(len(s)).encode() + b":" + s


def table_sha256(conn: Any, table: str) -> tuple[str, int]:
    """(sha256, rows) of a table's content (see the module docstring)."""
    h = hashlib.sha256()
    cur = conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid')
    h.update(("|".join(d[0] for d in cur.description)).encode("utf-8") + b"\n")
    n = 0
    for row in cur:
        h.update(b"".join(_encode(v) for v in row) + b"\n")
        n += 1
    return h.hexdigest(), n


def input_hashes(project: Project) -> tuple[str, list[dict[str, Any]], str | None]:
    """``(method, hashes, combined)``: content hashes of the project's layers and tables.

    With the workflow's :func:`multiplan.core.versions.content_hashes` (the hashing of the
    published snapshots) those are used, so the inputs compare directly with the
    ``mp_plan_versions`` record of a published version (``combined`` is its
    ``content_sha256``); otherwise :func:`own_input_hashes`."""
    try:
        from .. import versions
        hashes = versions.content_hashes(project.gpkg, project.folder)
    except (ImportError, AttributeError):
        return INPUT_HASH_METHOD, own_input_hashes(project), None
    rows = [{"name": k, **v} for k, v in sorted(hashes.items())]
    roll_up = getattr(versions, "combined_sha256", None) or getattr(versions, "_combined", None)
    combined = roll_up(hashes) if roll_up is not None else None
    return ("multiplan.core.versions.content_hashes (the hashing of published plan "
            "versions; combined = content_sha256 of mp_plan_versions)"), rows, combined


def own_input_hashes(project: Project) -> list[dict[str, Any]]:
    """Content hashes of every registered layer and of the mp_* tables the export reads."""
    import sqlite3

    out: list[dict[str, Any]] = []
    conn = sqlite3.connect(project.gpkg)
    with contextlib.closing(conn):
        tables = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}
        for rec in project.layers():
            if rec.kind == "vector" and rec.name in tables:
                sha, n = table_sha256(conn, rec.name)
                out.append({"name": rec.name, "kind": "layer", "role": rec.role,
                            "rows": n, "sha256": sha})
            elif rec.kind == "raster" and rec.raster_path:
                p = project.folder / rec.raster_path
                out.append({"name": rec.name, "kind": "raster", "role": rec.role,
                            "path": rec.raster_path,
                            "sha256": file_sha256(p) if p.is_file() else None})
        for t in INPUT_TABLES:
            if t in tables:
                sha, n = table_sha256(conn, t)
                out.append({"name": t, "kind": "table", "rows": n, "sha256": sha})
    return out


def _kind(rel: str) -> str:
    ext = rel.rsplit(".", 1)[-1].lower()
    return {"pdf": "map_pdf", "png": "map_png", "svg": "map_svg", "gpkg": "geopackage",
            "qml": "qgis_style", "xlsx": "table_xlsx", "csv": "table_csv"}.get(ext, ext)


def list_files(folder: Path) -> list[dict[str, Any]]:
    files = []
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(folder).as_posix()
        if rel in (MANIFEST, MANIFEST_HASH):
            continue
        files.append({"path": rel, "kind": _kind(rel), "size": p.stat().st_size,
                      "sha256": file_sha256(p)})
    return files


def write_manifest(folder: Path, body: dict[str, Any]) -> dict[str, Any]:
    """Hash every file under ``folder``, write ``manifest.json`` and ``manifest.sha256``."""
    manifest = {"format": FORMAT, **body, "files": list_files(folder)}
    text = json.dumps(manifest, ensure_ascii=False, indent=2, default=str) + "\n"
    data = text.encode("utf-8")
    (folder / MANIFEST).write_bytes(data)
    (folder / MANIFEST_HASH).write_text(f"{hashlib.sha256(data).hexdigest()}  {MANIFEST}\n",
                                        encoding="ascii")
    return manifest


# --------------------------------------------------------------------------- verify

@dataclass
class VerifyReport:
    folder: str
    ok: bool = True
    manifest_ok: bool = True
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    checked: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    manifest: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"folder": self.folder, "ok": self.ok, "manifest_ok": self.manifest_ok,
                "checked": self.checked, "missing": self.missing, "extra": self.extra,
                "changed": self.changed, "errors": self.errors,
                "edition": (self.manifest or {}).get("edition"),
                "created_at": (self.manifest or {}).get("created_at")}

    def lines(self, lang: str = "zh") -> list[str]:
        zh = lang.startswith("zh")
        out = []
        if self.ok:
            out.append(f"完好：{self.checked} 个文件与清单一致" if zh else
                       f"intact: {self.checked} files match the manifest")
        for e in self.errors:
            out.append(e["zh"] if zh else e["en"])
        for name in self.changed:
            out.append(f"已改动 changed: {name}" if zh else f"changed: {name}")
        for name in self.missing:
            out.append(f"缺失 missing: {name}" if zh else f"missing: {name}")
        for name in self.extra:
            out.append(f"多出 extra: {name}" if zh else f"extra (not in the manifest): {name}")
        return out


def verify_export(folder: str | Path) -> VerifyReport:
    """Recompute every hash of an export folder; report missing, extra and changed files
    by name (the manifest itself included)."""
    folder = Path(folder)
    rep = VerifyReport(str(folder))

    def err(code: str, zh: str, en: str) -> None:
        rep.errors.append({"code": code, "zh": zh, "en": en})

    mpath, hpath = folder / MANIFEST, folder / MANIFEST_HASH
    if not folder.is_dir():
        err("verify.no_folder", f"文件夹不存在：{folder}", f"no such folder: {folder}")
        rep.ok = rep.manifest_ok = False
        return rep
    if not mpath.is_file():
        rep.missing.append(MANIFEST)
        rep.ok = rep.manifest_ok = False
        err("verify.no_manifest", "缺少 manifest.json，无法核验", "manifest.json is missing; "
            "nothing can be verified")
        return rep
    data = mpath.read_bytes()
    if not hpath.is_file():
        rep.missing.append(MANIFEST_HASH)
        rep.manifest_ok = False
    else:
        want = hpath.read_text(encoding="ascii", errors="replace").split()
        if not want or want[0] != hashlib.sha256(data).hexdigest():
            rep.changed.append(MANIFEST)
            rep.manifest_ok = False
    try:
        manifest = json.loads(data.decode("utf-8"))
        files = manifest["files"]
        rep.manifest = manifest
    except (ValueError, KeyError, TypeError):
        if MANIFEST not in rep.changed:
            rep.changed.append(MANIFEST)
        err("verify.bad_manifest", "manifest.json 无法解析", "manifest.json cannot be read")
        rep.ok = rep.manifest_ok = False
        return rep
    listed = {}
    for f in files:
        listed[str(f.get("path"))] = f
    for rel, f in sorted(listed.items()):
        p = folder / rel
        rep.checked += 1
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            err("verify.bad_path", f"清单中的路径指向导出文件夹之外：{rel}",
                f"a manifest path points outside the export folder: {rel}")
            continue
        if not p.is_file():
            rep.missing.append(rel)
        elif p.stat().st_size != f.get("size") or file_sha256(p) != f.get("sha256"):
            rep.changed.append(rel)
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            rel = p.relative_to(folder).as_posix()
            if rel not in listed and rel not in (MANIFEST, MANIFEST_HASH):
                rep.extra.append(rel)
    rep.ok = rep.manifest_ok and not (rep.missing or rep.extra or rep.changed or rep.errors)
    return rep
