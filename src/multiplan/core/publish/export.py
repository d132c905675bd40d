"""One call from a project to a finished export folder (issue 9 parts 4–6).

``export_package`` checks the gates first (:func:`~.gating.plan_export`; a failure raises
:class:`~.gating.ExportRefused`, exit code 6, before anything is written), then renders the
chosen map sheets (:mod:`multiplan.core.sheets`), writes the statistics tables, the data
package and the manifest into a temporary folder beside ``out_dir`` and renames it into
place at the end. On an error or a cancel the temporary folder is removed, so there is never
a half package under the final name.

Layout of the folder::

    maps/       the sheets (PDF, PNG …) as the composer names them
    tables/     统计表.xlsx and one CSV per table
    data/       规划数据包.gpkg and a .qml per layer
    manifest.json, manifest.sha256
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..project import Project
from ..tasks import Task, ensure_task
from . import manifest as mf
from .gating import ExportPlan, ExportRefused, plan_export
from .package import PACKAGE_NAME, write_package
from .stats import area_method_text, build_tables, versions, write_tables

__all__ = ["ExportResult", "available_sheet_keys", "export_job", "export_package"]

MAPS, TABLES, DATA = "maps", "tables", "data"
DEFAULT_FORMATS = ("pdf", "png")
PAPERS = ("A4", "A3", "A2", "A1", "A0")


@dataclass
class ExportResult:
    folder: Path
    plan: ExportPlan
    manifest: dict[str, Any]
    sheets: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[dict[str, Any]]:
        return self.manifest.get("files", [])

    def summary(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "edition": self.manifest.get("edition"),
                "edition_zh": self.plan.edition_zh, "state": self.plan.state,
                "watermark": self.plan.watermark, "review_no": self.plan.review_no,
                "generalise_m": self.plan.generalise_m,
                "sheets": self.sheets, "files": len(self.files),
                "bytes": sum(int(f["size"]) for f in self.files),
                "manifest_sha256": self.manifest.get("_sha256"), "notes": self.notes}


def available_sheet_keys(project: Project) -> list[str]:
    """Keys of the sheets the project can make (:func:`multiplan.core.sheets.available_sheets`)."""
    from ..sheets import available_sheets

    return available_sheets(project)


def sheet_title(key: str) -> str:
    """The sheet's name (e.g. 国土空间用地用海规划图); the key itself if it is unknown."""
    from ..sheets import SHEETS

    spec = SHEETS.get(key)
    return spec.zh if spec is not None else key


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and \
            (not overwrite or not (out_dir / mf.MANIFEST).is_file()):
        raise ExportRefused(
            "export.out_exists",
            f"输出文件夹已存在且不为空：{out_dir}（只可覆盖以前的导出结果，须指定覆盖）",
            f"the output folder exists and is not empty: {out_dir} (only an earlier "
            "export can be replaced, and only when asked to overwrite)", path=out_dir)


def export_package(project: Project, out_dir: str | Path, *, sheets: list[str] | None = None,
                   formats: tuple[str, ...] | list[str] = DEFAULT_FORMATS, public: bool,
                   review_no: str | None = None, generalise_m: float | None = None,
                   paper: str = "A3", orientation: str | None = None,
                   scale: float | None = None, dpi: int = 300, area_method: str | None = None,
                   overwrite: bool = False, now: Any = None,
                   task: Task | None = None) -> ExportResult:
    """Export the plan: sheets, statistics, data package and manifest (see the module doc).
    ``sheets=None`` means every available sheet; ``[]`` none."""
    task = ensure_task(task)
    out_dir = Path(out_dir)
    formats = tuple(f.lower().lstrip(".") for f in formats)
    avail = available_sheet_keys(project) if sheets != [] else []
    if sheets is None:
        chosen = list(avail)
    else:
        chosen = [s for s in sheets if s]
        unknown = [s for s in chosen if s not in avail]
        if unknown:
            raise ExportRefused(
                "export.sheet_unavailable",
                f"以下图幅不可用（项目缺少所需图层或制图模块）：{'、'.join(unknown)}；可用：{'、'.join(avail) or '无'}",
                f"these sheets are not available (the project lacks their layers, or the sheet "
                f"composer is missing): {', '.join(unknown)}; available: "
                f"{', '.join(avail) or 'none'}")
    plan = plan_export(project, public=public, sheets=chosen, review_no=review_no,
                       generalise_m=generalise_m, now=now)
    if not plan.ok:
        raise plan.refusal()
    if paper.upper() not in PAPERS:
        raise ExportRefused("export.paper", f"图纸幅面须为 {'/'.join(PAPERS)}，而不是 {paper}",
                            f"paper must be one of {'/'.join(PAPERS)}, not {paper}")
    _check_out_dir(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    tmp = out_dir.parent / f".{out_dir.name}.part-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        result = _write(project, tmp, plan, chosen, formats, paper, orientation, scale, dpi,
                        area_method, when, task)
        task.check()
        _move_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.folder = out_dir
    with contextlib.suppress(Exception), project.transaction() as conn:
        project._audit(conn, "export.package", str(out_dir),
                       {"edition": result.manifest.get("edition"), "sheets": chosen,
                        "manifest_sha256": result.manifest.get("_sha256"),
                        "state": plan.state})
    task.progress(1.0, "完成 / done")
    return result


def _move_into_place(tmp: Path, out_dir: Path) -> None:
    if out_dir.exists():
        if out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        else:  # an earlier export, replacement asked for (checked before starting)
            old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
            return
    tmp.rename(out_dir)


def _write(project: Project, tmp: Path, plan: ExportPlan, chosen: list[str],
           formats: tuple[str, ...], paper: str, orientation: str | None, scale: float | None,
           dpi: int, area_method: str | None, when: str, task: Task) -> ExportResult:
    notes: list[str] = []
    sheet_rows: list[dict[str, Any]] = []
    n = max(len(chosen), 1)
    if chosen:
        from .. import sheets

        (tmp / MAPS).mkdir()
        for i, key in enumerate(chosen):
            sub = task.sub(0.02 + 0.6 * i / n, 0.02 + 0.6 * (i + 1) / n)
            sub.progress(0.0, f"{sheet_title(key)}")
            res = sheets.render_sheet(project, key, paper=paper.upper(),
                                      orientation=orientation, scale=scale,
                                      public=plan.public, watermark=plan.watermark,
                                      generalise_m=plan.generalise_m,
                                      review_no=plan.review_no, formats=formats, dpi=dpi,
                                      out_dir=tmp / MAPS, task=sub)
            paths = [Path(p) for p in res.paths.values()]
            sheet_rows.append({"key": key, "title": res.title, "scale": res.scale,
                               "paper": res.paper, "dpi": res.dpi,
                               "files": [p.resolve().relative_to(tmp.resolve()).as_posix()
                                         if p.resolve().is_relative_to(tmp.resolve())
                                         else p.name for p in paths]})
    task.progress(0.63, "统计表 / statistics")
    vers = versions(project)
    tables = build_tables(project, area_method=area_method, task=task.sub(0.63, 0.75))
    from multiplan import __version__

    write_tables(tables, tmp / TABLES, common_versions=[f"multiplan {__version__}"])
    task.progress(0.76, "数据包 / data package")
    (tmp / DATA).mkdir()
    layers, pkg_notes = write_package(project, tmp / DATA / PACKAGE_NAME, public=plan.public,
                                      generalise_m=plan.generalise_m, when=when,
                                      task=task.sub(0.76, 0.92))
    notes.extend(pkg_notes)
    task.progress(0.93, "清单 / manifest")

    hash_method, inputs, combined = mf.input_hashes(project)
    body = {
        "generator": {"name": "multiplan", "version": __version__},
        "created_at": when,
        "edition": "public" if plan.public else "internal",
        "edition_zh": plan.edition_zh, "edition_en": plan.edition_en,
        "internal_mark": None if plan.public else "内部",
        "project": {"county": project.county, "project_id": project.setting("project_id"),
                    "admin_code": project.setting("admin_code"),
                    "crs": f"EPSG:{project.epsg}", "state": plan.state,
                    "plan_version": plan.plan_version},
        "plan": plan.to_dict(),
        "area_method": area_method_text(project, area_method),
        "versions": vers,
        "inputs_hash_method": hash_method,
        "inputs_combined_sha256": combined,
        "inputs": inputs,
        "sheets": sheet_rows,
        "statistics": [{"key": t.key, "title": t.title, "area_method": t.area_method,
                        "versions": t.versions, "rows": len(t.frame)} for t in tables],
        "package": {"path": f"{DATA}/{PACKAGE_NAME}", "gpkg_version": "1.3",
                    "layers": [{"table": li.table, "title": li.title, "features": li.features,
                                "source": li.source, "style": li.style,
                                "classes": li.classes} for li in layers]},
        "notes": notes,
    }
    manifest = mf.write_manifest(tmp, body)
    manifest["_sha256"] = (tmp / mf.MANIFEST_HASH).read_text().split()[0]
    return ExportResult(tmp, plan, manifest, sheet_rows, notes)


def export_job(task: Task, folder: str, out_dir: str, options: dict[str, Any]
               ) -> dict[str, Any]:
    """The export as a GUI job (picklable in and out; runs in a worker process)."""
    res = export_package(Project.open(folder), out_dir, task=task, **options)
    return res.summary()
