"""The tamper-evident audit trail: every entry hash-chained, the head kept in its own table,
appends inside the caller's transaction, and verify() naming each kind of tampering done
directly to the SQLite tables.

Expected hashes are re-computed here with hashlib + json from the encoding the audit
module documents (not with multiplan's own entry_hash), and tampering is done with plain
sqlite3.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sqlite3
import threading
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import MultiPolygon, box

from multiplan.core import audit
from multiplan.core.editing import EditSession, lock_layer, unlock_layer
from multiplan.core.errors import ProjectError
from multiplan.core.layers import LayerRecord
from multiplan.core.project import Project

DATA = Path(__file__).resolve().parents[1] / "data"
V2_PROJECT = DATA / "projects" / "schema_v2"
ZERO = "0" * 64


# ---------------------------------------------------------------------- helpers
def my_hash(seq, time, actor, action, target, detail, prev) -> str:
    """sha256 of the UTF-8 JSON array [seq, time, actor, action, target, detail, prev_hash]
    with separators (",", ":") and ensure_ascii=False — as the module docstring says."""
    text = json.dumps([seq, time, actor, action, target, detail, prev], ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rows(gpkg: Path) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(gpkg)) as conn:
        return conn.execute('SELECT fid, seq, time, actor, action, target, detail, prev_hash, '
                            'hash FROM mp_audit ORDER BY fid').fetchall()


def head(gpkg: Path) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(gpkg)) as conn:
        return conn.execute("SELECT seq, hash FROM mp_audit_head").fetchall()


def sql(gpkg: Path, *statements: tuple) -> None:
    with contextlib.closing(sqlite3.connect(gpkg)) as conn, conn:
        for st in statements:
            conn.execute(*st) if isinstance(st, tuple) else conn.execute(st)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_chain_by_hand(gpkg: Path) -> None:
    rs = rows(gpkg)
    prev = ZERO
    for i, (_fid, seq, time, actor, action, target, detail, prev_hash, h) in enumerate(rs):
        assert seq == i + 1
        assert prev_hash == prev
        assert h == my_hash(seq, time, actor, action, target, detail, prev_hash)
        prev = h
    assert head(gpkg) == [(len(rs), prev)]


def squares(n: int) -> gpd.GeoDataFrame:
    geoms = [MultiPolygon([box(490_000 + 100 * k, 3_430_000, 490_100 + 100 * k, 3_430_100)])
             for k in range(n)]
    return gpd.GeoDataFrame({"DLBM": ["0101"] * n, "DLMC": ["水田"] * n}, geometry=geoms,
                            crs=4549)


def record(name: str) -> LayerRecord:
    return LayerRecord(name=name, kind="vector", level="county", role="current_use",
                       geometry_type="MultiPolygon", source_path="/src/x.gpkg",
                       code_field="DLBM", scheme="gbt21010_2017")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with a history: create, layer, settings, lock/unlock, an edit save."""
    folder = tmp_path_factory.mktemp("history") / "p"
    p = Project.create(folder, county="测试县", crs=4549, user="王工")
    p.write_vector_layer(squares(3), record("parcels"))
    p.set_settings(sliver_max_area_m2=500.0, note="按省厅意见")
    lock_layer(p, "parcels", reason="报批冻结")
    unlock_layer(p, "parcels", "批复已下达")
    with EditSession.open(p, "parcels") as s:
        s.delete([s.fids()[0]])
        s.save()
    return folder


@pytest.fixture
def project(history: Path, tmp_path: Path) -> Project:
    shutil.copytree(history, tmp_path / "p")
    return Project.open(tmp_path / "p", user="王工")


# ---------------------------------------------------------------------- intact chains
def test_an_intact_history_verifies_and_matches_a_hand_computed_chain(project: Project
                                                                     ) -> None:
    actions = [r[4] for r in rows(project.gpkg)]
    assert actions == ["project.create", "layer.add", "settings.update", "layer.lock",
                       "layer.unlock", "edit.delete_features", "edit.save"]
    assert_chain_by_hand(project.gpkg)
    report = audit.verify(project.folder)
    assert report.ok and report.problems == []
    assert report.entries == 7 and report.head_seq == 7
    assert report.head_hash == rows(project.gpkg)[-1][8]
    # the plan.gpkg path and the Project object work as well
    assert audit.verify(project.gpkg).ok and project.verify_audit().ok


def test_control_line_unlock_sessions_and_discards_keep_the_chain_intact(tmp_path: Path
                                                                         ) -> None:
    p = Project.create(tmp_path / "c", county="测试县", crs=4549)
    rec = record("永久基本农田")
    rec.role = "basic_farmland"
    p.write_vector_layer(squares(2), rec)
    with EditSession.open(p, "永久基本农田", unlock_reason="落实省厅核查意见", actor="李工") as s:
        s.set_attributes(s.fids()[0], {"DLMC": "旱地"})
        s.save()
        s.delete([s.fids()[1]])
        s.discard()
    acts = [r[4] for r in rows(p.gpkg)]
    assert acts == ["project.create", "layer.add", "layer.unlock", "edit.change_attributes",
                    "edit.save", "edit.discard"]
    assert [r[3] for r in rows(p.gpkg)][2:] == ["李工"] * 4
    assert_chain_by_hand(p.gpkg)
    assert audit.verify(p).ok


def test_entries_carry_utc_time_actor_and_canonical_json(project: Project) -> None:
    r = rows(project.gpkg)
    _fid, _seq, time, actor, action, _target, detail, _prev, _h = r[2]
    assert action == "settings.update"
    assert time.endswith("+00:00")
    assert actor == "王工"  # the project's user is the default actor
    assert detail == '{"note":"按省厅意见","sliver_max_area_m2":500.0}'
    assert json.loads(r[0][6]) == {"crs_epsg": 4549}
    # an explicit actor wins
    with project.transaction() as conn:
        project._audit(conn, "x.test", "t", {"b": 1, "a": [1, 2]}, actor="李委员")
    last = rows(project.gpkg)[-1]
    assert last[3] == "李委员" and last[6] == '{"a":[1,2],"b":1}'


def test_default_actor_is_the_os_user(tmp_path: Path) -> None:
    import getpass
    p = Project.create(tmp_path / "p", county="县", crs=4549)
    assert rows(p.gpkg)[0][3] == getpass.getuser()


def test_a_rolled_back_transaction_leaves_no_audit_row(project: Project) -> None:
    before_rows, before_head = rows(project.gpkg), head(project.gpkg)
    with pytest.raises(RuntimeError), project.transaction() as conn:
        conn.execute('INSERT INTO mp_settings ("key", "value") VALUES (?, ?)', ("k", '"v"'))
        project._audit(conn, "half.done", None, {"n": 1})
        raise RuntimeError("crash in the middle")
    assert rows(project.gpkg) == before_rows and head(project.gpkg) == before_head
    # a refused layer write (GDAL fails) leaves none either
    bad = squares(2)
    bad["geom"] = ["clashes with", "the geometry column"]
    with pytest.raises(ProjectError):
        project.write_vector_layer(bad, record("other"))
    assert rows(project.gpkg) == before_rows and head(project.gpkg) == before_head
    assert audit.verify(project).ok


def test_append_on_an_autocommit_connection_commits(project: Project) -> None:
    n = len(rows(project.gpkg))
    conn = sqlite3.connect(project.gpkg, isolation_level=None)
    try:
        seq = audit.append(conn, "x.autocommit", None, None, "tester")
        assert not conn.in_transaction
    finally:
        conn.close()
    assert seq == n + 1 and len(rows(project.gpkg)) == n + 1
    assert rows(project.gpkg)[-1][6] is None
    assert_chain_by_hand(project.gpkg)


def test_concurrent_writers_do_not_fork_the_chain(project: Project) -> None:
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            other = Project.open(project.folder, user=name)
            for i in range(15):
                with other.transaction() as conn:
                    other._audit(conn, "x.concurrent", name, {"i": i})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("甲", "乙")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(rows(project.gpkg)) == 7 + 30
    assert_chain_by_hand(project.gpkg)


# ---------------------------------------------------------------------- tampering
def kinds(report: audit.AuditReport) -> set[tuple[str, int | None]]:
    return {(p.kind, p.seq) for p in report.problems}


def test_a_changed_detail_is_detected_and_named(project: Project) -> None:
    sql(project.gpkg, ("UPDATE mp_audit SET detail = ? WHERE seq = 5", ('{"reason":"随便"}',)))
    before = sha(project.gpkg)
    report = audit.verify(project.folder)
    assert not report.ok
    assert kinds(report) == {("changed", 5)}
    p = report.problems[0]
    assert p.fid == 5 and "layer.unlock" in p.zh and "changed" in p.en
    assert sha(project.gpkg) == before  # verify wrote nothing


def test_a_changed_actor_or_time_is_detected(project: Project) -> None:
    sql(project.gpkg, "UPDATE mp_audit SET actor = '张三' WHERE seq = 2",
        "UPDATE mp_audit SET time = '2020-01-01T00:00:00+00:00' WHERE seq = 6")
    assert kinds(audit.verify(project)) == {("changed", 2), ("changed", 6)}


def test_a_rewritten_entry_with_a_recomputed_hash_breaks_the_next_link(project: Project
                                                                       ) -> None:
    fid, seq, time, actor, action, target, _d, prev, _h = rows(project.gpkg)[3]
    forged = '{"reason":"没有原因"}'
    h = my_hash(seq, time, actor, action, target, forged, prev)
    sql(project.gpkg, ("UPDATE mp_audit SET detail = ?, hash = ? WHERE fid = ?",
                       (forged, h, fid)))
    report = audit.verify(project)
    assert kinds(report) == {("broken_link", 5)}
    assert "seq 4" in report.problems[0].en


def test_a_deleted_middle_entry_is_detected_and_named(project: Project) -> None:
    sql(project.gpkg, "DELETE FROM mp_audit WHERE seq = 3")
    report = audit.verify(project)
    assert kinds(report) == {("deleted", 3)}
    assert "seq 3" in report.problems[0].zh and "deleted" in report.problems[0].en


def test_deleting_the_last_entry_is_detected_by_the_head(project: Project) -> None:
    sql(project.gpkg, "DELETE FROM mp_audit WHERE seq = 7")
    report = audit.verify(project)
    assert kinds(report) == {("deleted", 7)}
    assert "truncated" in report.problems[0].en


def test_deleting_the_tail_and_the_head_is_detected(project: Project) -> None:
    sql(project.gpkg, "DELETE FROM mp_audit WHERE seq >= 6", "DELETE FROM mp_audit_head")
    report = audit.verify(project)
    assert [p.kind for p in report.problems] == ["broken_head"]


def test_swapping_two_entries_seq_is_detected_as_reordering(project: Project) -> None:
    sql(project.gpkg, "UPDATE mp_audit SET seq = -1 WHERE seq = 2",
        "UPDATE mp_audit SET seq = 2 WHERE seq = 4",
        "UPDATE mp_audit SET seq = 4 WHERE seq = -1")
    report = audit.verify(project)
    reordered = {(p.fid, p.seq) for p in report.problems if p.kind == "reordered"}
    assert reordered == {(2, 4), (4, 2)}
    changed = {p.fid for p in report.problems if p.kind == "changed"}
    assert changed == {2, 4}


def test_swapping_two_rows_contents_is_detected(project: Project) -> None:
    r2, r3 = rows(project.gpkg)[1], rows(project.gpkg)[2]
    cols = "seq = ?, time = ?, actor = ?, action = ?, target = ?, detail = ?, prev_hash = ?, " \
           "hash = ?"
    sql(project.gpkg, "DROP INDEX mp_audit_seq",
        (f"UPDATE mp_audit SET {cols} WHERE fid = ?", (*r3[1:], r2[0])),
        (f"UPDATE mp_audit SET {cols} WHERE fid = ?", (*r2[1:], r3[0])))
    report = audit.verify(project)
    assert {(p.kind, p.fid) for p in report.problems} == {("reordered", 2), ("reordered", 3)}


def test_a_forged_row_appended_with_a_valid_hash_is_caught_by_the_head(project: Project
                                                                       ) -> None:
    last = rows(project.gpkg)[-1]
    t, detail = "2026-01-01T00:00:00+00:00", '{"status":"认可例外"}'
    h = my_hash(8, t, "李委员", "review.decide", "C-0001", detail, last[8])
    forge = ("INSERT INTO mp_audit (seq, time, actor, action, target, detail, prev_hash, "
             "hash) VALUES (8, ?, '李委员', 'review.decide', 'C-0001', ?, ?, ?)")
    sql(project.gpkg, (forge, (t, detail, last[8], h)))
    report = audit.verify(project)
    assert kinds(report) == {("inserted", 8)}
    assert "review.decide" in report.problems[0].en
    # multiplan keeps working, and the forged row stays reported
    project.set_settings(note="之后的修改")
    report = audit.verify(project)
    assert kinds(report) == {("inserted", 8)}
    assert "seq 9" in report.problems[0].en


def test_a_forged_row_without_a_chain_position_is_detected(project: Project) -> None:
    sql(project.gpkg, "INSERT INTO mp_audit (time, action, target) VALUES "
                      "('2026-01-01T00:00:00+00:00', 'edit.save', 'parcels')")
    report = audit.verify(project)
    assert [(p.kind, p.fid) for p in report.problems] == [("inserted", 8)]


def test_a_forged_row_in_the_middle_is_detected(project: Project) -> None:
    # renumber seq 4… up by one and slip an entry in at 4: the links no longer hold
    forge = ("INSERT INTO mp_audit (seq, time, action, prev_hash, hash) VALUES "
             "(4, '2026-01-01T00:00:00+00:00', 'layer.unlock', ?, ?)")
    sql(project.gpkg, "DROP INDEX mp_audit_seq",
        "UPDATE mp_audit SET seq = seq + 1 WHERE seq >= 4", (forge, ("x" * 64, "y" * 64)))
    report = audit.verify(project)
    assert not report.ok
    assert ("changed", 4) in kinds(report) and ("reordered", 4) in kinds(report)


def test_a_wholesale_consistent_rewrite_passes_unless_an_anchor_was_kept(project: Project
                                                                         ) -> None:
    """The documented limit: without a secret, a full consistent rewrite (head included)
    verifies; a head hash kept outside the project exposes it."""
    anchor = audit.verify(project).head_hash
    assert audit.verify(project, anchor=anchor).ok
    rs = rows(project.gpkg)
    prev = ZERO
    with contextlib.closing(sqlite3.connect(project.gpkg)) as conn, conn:
        for fid, seq, time, actor, action, target, detail, _p, _h in rs:
            if seq == 5:
                detail = '{"reason":"改写后的原因"}'
            h = my_hash(seq, time, actor, action, target, detail, prev)
            conn.execute("UPDATE mp_audit SET detail = ?, prev_hash = ?, hash = ? "
                         "WHERE fid = ?", (detail, prev, h, fid))
            prev = h
        conn.execute("UPDATE mp_audit_head SET hash = ?", (prev,))
    assert audit.verify(project).ok  # not detectable from inside the file
    report = audit.verify(project, anchor=anchor)
    assert [p.kind for p in report.problems] == ["anchor"]


def test_a_missing_head_row_is_rebuilt_on_the_next_write_and_stays_visible(
        project: Project) -> None:
    sql(project.gpkg, "DELETE FROM mp_audit_head")
    assert [p.kind for p in audit.verify(project).problems] == ["broken_head"]
    project.set_settings(note="继续工作")
    acts = [r[4] for r in rows(project.gpkg)]
    assert acts[-2:] == ["audit.head_missing", "settings.update"]
    assert audit.verify(project).ok
    assert_chain_by_hand(project.gpkg)


# ---------------------------------------------------------------------- migration
def test_a_v2_project_gets_its_existing_entries_hashed(tmp_path: Path) -> None:
    folder = tmp_path / "v2"
    shutil.copytree(V2_PROJECT, folder)
    old = [r[1:] for r in sqlite3.connect(folder / "plan.gpkg").execute(
        "SELECT fid, time, actor, action, target, detail FROM mp_audit ORDER BY fid")]
    assert len(old) == 4
    fixture_hash = sha(V2_PROJECT / "plan.gpkg")
    with pytest.raises(ProjectError) as info:  # verify never migrates
        audit.verify(folder)
    assert info.value.code == "audit.no_chain"
    assert sha(folder / "plan.gpkg") == fixture_hash

    project = Project.open(folder, user="迁移人")
    assert project.schema_version == 3
    rs = rows(project.gpkg)
    # the old entries keep their content, in their order, as seq 1–4
    assert [r[2:7] for r in rs[:4]] == old
    assert [r[4] for r in rs[4:]] == ["audit.chain_start", "project.migrate"]
    start = json.loads(rs[4][6])
    assert start["entries_hashed"] == 4 and start["first_fid"] == 1 and start["last_fid"] == 4
    assert json.loads(rs[5][6]) == {"from": 2, "to": 3}
    assert rs[4][3] == rs[5][3] == "迁移人"
    assert_chain_by_hand(project.gpkg)
    assert audit.verify(project).ok
    assert project.layer("parcels").feature_count == 3
    # a second open migrates nothing more; tampering with a pre-chain row is now detected
    Project.open(folder)
    assert len(rows(project.gpkg)) == 6
    sql(project.gpkg, "UPDATE mp_audit SET detail = '{}' WHERE seq = 4")
    assert kinds(audit.verify(folder)) == {("changed", 4)}
    assert sha(V2_PROJECT / "plan.gpkg") == fixture_hash


def test_the_v2_fixture_is_a_v2_project() -> None:
    with contextlib.closing(sqlite3.connect(f"file:{V2_PROJECT / 'plan.gpkg'}?mode=ro",
                                            uri=True)) as conn:
        assert conn.execute("SELECT version FROM mp_schema").fetchall() == [(2,)]
        cols = [r[1] for r in conn.execute('PRAGMA table_info("mp_audit")')]
        assert cols == ["fid", "time", "actor", "action", "target", "detail"]
        assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'mp_audit_head'"
                            ).fetchone() is None


def test_read_log_returns_the_last_entries_in_order(project: Project) -> None:
    log = audit.read_log(project.folder, limit=2)
    assert [e["seq"] for e in log] == [6, 7]
    assert log[-1]["action"] == "edit.save" and log[-1]["detail"]["commands"] == 1
    assert len(audit.read_log(project)) == 7
    assert audit.read_log(project, limit=0) == []


def test_verify_refuses_what_is_not_a_project(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as info:
        audit.verify(tmp_path)
    assert info.value.code == "project.not_found"
