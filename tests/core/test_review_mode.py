"""Roles and review mode: planners and reviewers recorded and audited; a project opened in
review mode refuses every plan-changing path before touching the file (plan.gpkg stays
byte-identical), still lets decisions, comments and non-plan settings through, and each
plan write in edit mode passes through the workflow hook."""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import MultiPolygon, box

from multiplan.core import audit, workflow
from multiplan.core.editing import EditSession, lock_layer, pending_journals, unlock_layer
from multiplan.core.errors import ProjectError
from multiplan.core.io import import_layer
from multiplan.core.layers import LayerRecord
from multiplan.core.project import Project

GOOD = Path(__file__).resolve().parents[1] / "data" / "good"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def squares(n: int) -> gpd.GeoDataFrame:
    geoms = [MultiPolygon([box(490_000 + 100 * k, 3_430_000, 490_100 + 100 * k, 3_430_100)])
             for k in range(n)]
    return gpd.GeoDataFrame({"DLBM": ["0101"] * n, "DLMC": ["水田"] * n}, geometry=geoms,
                            crs=4549)


def record(name: str, role: str = "current_use") -> LayerRecord:
    return LayerRecord(name=name, kind="vector", level="county", role=role,
                       geometry_type="MultiPolygon", source_path="/src/x.gpkg",
                       code_field="DLBM", scheme="gbt21010_2017")


def audit_rows(gpkg: Path) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(gpkg)) as conn:
        return conn.execute("SELECT seq, actor, action, target, detail FROM mp_audit "
                            "ORDER BY seq").fetchall()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("review") / "p"
    p = Project.create(folder, county="测试县", crs=4549, user="王工")
    p.write_vector_layer(squares(3), record("parcels"))
    p.write_vector_layer(squares(2), record("红线", role="eco_redline"))
    import_layer(p, GOOD / "landcover_4490.tif", name="dem")
    p.set_roles(planners=["王工", "赵工"], reviewers=["李委员", "张委员"])
    return folder


@pytest.fixture
def folder(template: Path, tmp_path: Path) -> Path:
    shutil.copytree(template, tmp_path / "p")
    return tmp_path / "p"


# ---------------------------------------------------------------------- roles
def test_roles_are_stored_and_audited(folder: Path) -> None:
    p = Project.open(folder, user="王工")
    assert p.roles() == {"planners": ["王工", "赵工"], "reviewers": ["李委员", "张委员"]}
    got = p.set_roles(reviewers=[" 李委员 ", "陈委员", "李委员"])  # trimmed, de-duplicated
    assert got == {"planners": ["王工", "赵工"], "reviewers": ["李委员", "陈委员"]}
    assert Project.open(folder).roles() == got
    _seq, actor, action, target, detail = audit_rows(p.gpkg)[-1]
    assert (actor, action, target) == ("王工", "roles.set", None)
    d = json.loads(detail)
    assert d["reviewers"] == ["李委员", "陈委员"] and d["before"]["reviewers"] == ["李委员",
                                                                                "张委员"]
    with contextlib.closing(sqlite3.connect(p.gpkg)) as conn:  # stored as a setting
        raw = conn.execute("SELECT value FROM mp_settings WHERE key = 'roles'").fetchone()[0]
    assert json.loads(raw) == got
    with pytest.raises(ProjectError) as info:
        p.set_roles(planners=["", "王工"])
    assert info.value.code == "project.roles_invalid"
    assert audit.verify(p).ok


def test_a_new_project_has_no_roles(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "n", county="县", crs=4549)
    assert p.roles() == {"planners": [], "reviewers": []}
    assert not p.can_decide("李委员")


def test_who_may_decide_and_who_gets_a_warning(folder: Path) -> None:
    reviewer = Project.open(folder, mode="review", user="李委员")
    assert reviewer.mode == "review" and reviewer.user == "李委员"
    assert reviewer.warnings == [] and reviewer.can_decide() and reviewer.can_decide("张委员")
    planner = Project.open(folder, mode="review", user="赵工")
    assert planner.warnings == [] and not planner.can_decide()
    stranger = Project.open(folder, mode="review", user="路人甲")  # allowed, with a warning
    assert [w.code for w in stranger.warnings] == ["project.review_user_unlisted"]
    assert "路人甲" in stranger.warnings[0].zh and "路人甲" in stranger.warnings[0].en
    assert not stranger.can_decide()
    assert stranger.read_layer("parcels").shape[0] == 3  # reading works
    editor = Project.open(folder, user="路人甲")  # edit mode gives no such warning
    assert editor.mode == "edit" and editor.warnings == []
    with pytest.raises(ProjectError) as info:
        Project.open(folder, mode="publish")
    assert info.value.code == "project.mode_invalid"


def test_the_default_actor_is_the_user_else_the_os_user(folder: Path) -> None:
    Project.open(folder, user="赵工").set_settings(note="a")
    Project.open(folder).set_settings(note="b")
    rows = audit_rows(folder / "plan.gpkg")
    assert [r[1] for r in rows[-2:]] == ["赵工", getpass.getuser()]


# ---------------------------------------------------------------------- refusals
def _refused(folder: Path, call) -> ProjectError:  # type: ignore[no-untyped-def]
    gpkg = folder / "plan.gpkg"
    before = sha(gpkg)
    rasters = sorted(p.name for p in (folder / "rasters").iterdir())
    with pytest.raises(ProjectError) as info:
        call()
    assert info.value.code == "project.review_mode"
    assert "评议模式" in info.value.zh and "review mode" in info.value.en
    assert sha(gpkg) == before, "a refused write changed plan.gpkg"
    assert sorted(p.name for p in (folder / "rasters").iterdir()) == rasters
    return info.value


def test_review_mode_refuses_every_layer_write(folder: Path) -> None:
    p = Project.open(folder, mode="review", user="李委员")
    err = _refused(folder, lambda: p.write_vector_layer(squares(1), record("new")))
    assert "new" in err.zh and "new" in err.en
    _refused(folder, lambda: p.write_vector_layer(squares(1), record("parcels"), replace=True))
    _refused(folder, lambda: p.remove_layer("parcels"))
    _refused(folder, lambda: p.remove_layer("dem"))
    _refused(folder, lambda: p.register_raster(p.layer("dem")))
    _refused(folder, lambda: import_layer(p, GOOD / "parcels_4528.shp"))
    _refused(folder, lambda: import_layer(p, GOOD / "landcover_4490.tif", name="dem2"))
    assert (folder / "rasters" / "dem.tif").is_file()
    # replacing an existing raster would have overwritten rasters/dem.tif before registering
    _refused(folder, lambda: import_layer(p, GOOD / "landcover_4490.tif", name="dem",
                                          replace=True))


def test_review_mode_refuses_plan_settings_and_roles(folder: Path) -> None:
    p = Project.open(folder, mode="review", user="李委员")
    _refused(folder, lambda: p.set_settings(sliver_max_area_m2=1.0))
    # one plan key among allowed ones refuses the whole call
    _refused(folder, lambda: p.set_settings(gui_view={"x": 1}, min_fragment_m2={}))
    _refused(folder, lambda: p.set_roles(reviewers=["李委员"]))
    _refused(folder, lambda: lock_layer(p, "parcels", reason="x"))
    _refused(folder, lambda: unlock_layer(p, "parcels", "x"))


def test_review_mode_refuses_editing_saves_and_unlocks(folder: Path) -> None:
    p = Project.open(folder, mode="review", user="李委员")
    _refused(folder, lambda: EditSession.open(p, "红线", unlock_reason="核查"))
    s = EditSession.open(p, "parcels")
    s.delete([s.fids()[0]])
    _refused(folder, s.save)
    assert s.dirty  # the edit is kept (and journalled), nothing written
    s.close()
    assert [j.layer for j in pending_journals(p)] == ["parcels"]
    assert len(p.read_layer("parcels")) == 3


def test_review_mode_lets_decisions_comments_and_view_settings_through(folder: Path) -> None:
    p = Project.open(folder, mode="review", user="李委员")
    p.set_settings(gui_view={"order": ["parcels"]}, review_filter={"status": "待定"})
    assert Project.open(folder).setting("gui_view") == {"order": ["parcels"]}
    # what review.py / workflow.py do: their own SQL inside project.transaction()
    with p.transaction() as conn:
        conn.execute('CREATE TABLE IF NOT EXISTS "mp_test_decisions" ('
                     '"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "conflict" TEXT, '
                     '"status" TEXT, "comment" TEXT)')
        conn.execute('INSERT INTO "mp_test_decisions" ("conflict", "status", "comment") '
                     "VALUES ('C-1', '认可例外', '同意')")
        p._audit(conn, "review.decide", "C-1", {"status": "认可例外"})
    _seq, actor, action, target, _ = audit_rows(p.gpkg)[-1]
    assert (actor, action, target) == ("李委员", "review.decide", "C-1")
    assert audit.verify(folder).ok


# ---------------------------------------------------------------------- workflow hook
@pytest.fixture
def hook_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, str]]:
    calls: list[tuple[object, str]] = []
    monkeypatch.setattr(workflow, "before_plan_write",
                        lambda project, target: calls.append((project, target)))
    return calls


def test_plan_writes_call_the_workflow_hook_first(folder: Path,
                                                  hook_calls: list[tuple[object, str]]) -> None:
    p = Project.open(folder, user="王工")
    p.write_vector_layer(squares(1), record("new"))
    p.set_settings(sliver_max_area_m2=400.0)
    p.set_settings(gui_view={"v": 1})  # not plan content: no hook
    with EditSession.open(p, "parcels") as s:
        s.delete([s.fids()[0]])
        s.save()
    p.remove_layer("new")
    assert [(c[0] is p, c[1]) for c in hook_calls] == [
        (True, "layer:new"), (True, "settings:sliver_max_area_m2"), (True, "layer:parcels"),
        (True, "layer:new")]


def test_a_hook_that_refuses_stops_the_write_before_it_starts(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(project: Project, target: str) -> None:
        raise ProjectError("workflow.frozen", "已公布，冻结", "published, frozen")
    monkeypatch.setattr(workflow, "before_plan_write", refuse)
    p = Project.open(folder)
    before = sha(p.gpkg)
    with pytest.raises(ProjectError) as info:
        p.write_vector_layer(squares(1), record("new"))
    assert info.value.code == "workflow.frozen"
    assert sha(p.gpkg) == before


def test_review_mode_refuses_before_the_hook_runs(folder: Path,
                                                  hook_calls: list[tuple[object, str]]) -> None:
    p = Project.open(folder, mode="review", user="李委员")
    with pytest.raises(ProjectError):
        p.remove_layer("parcels")
    assert hook_calls == []


# ------------------------------------------------------------- analyses that write
def test_analyses_that_write_results_are_refused_in_review_mode(folder: Path) -> None:
    """Conflict detection, re-check, the merged map, 质检 (which also writes the
    mp_sansheng column into a plan layer), 三生 marking and 双评价 rewrite what the committee
    is reviewing: refused up front, file byte-identical; the read-only variants still run."""
    from multiplan.core import conflicts, qa, sansheng
    from multiplan.core.assessment import run_assessment

    p = Project.open(folder, mode="review", user="李委员")
    before = sha(p.gpkg)
    attempts = {
        "detect_conflicts": lambda: conflicts.detect_conflicts(p, "parcels", "红线"),
        "detect_all": lambda: conflicts.detect_all(p),
        "recheck": lambda: conflicts.recheck(p, "parcels", changed=[1]),
        "build_merged_map": lambda: conflicts.build_merged_map(p),
        "run_checks": lambda: qa.run_checks(p),
        "mark_sansheng": lambda: sansheng.mark_sansheng(p, "parcels"),
        "run_assessment": lambda: run_assessment(p),
    }
    for name, call in attempts.items():
        with pytest.raises(ProjectError) as exc:
            call()
        assert exc.value.code == "project.review_mode", name
        assert "评议模式" in exc.value.zh and "review mode" in exc.value.en, name
        assert sha(p.gpkg) == before, name
    # computing without storing is reading: allowed
    run = conflicts.detect_conflicts(p, "parcels", "红线", write=False)
    assert run is not None and sha(p.gpkg) == before
