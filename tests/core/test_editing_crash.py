"""Crash safety, proven with SIGKILL.

A child process (forked from a driver that runs this file as a script) opens a copy of the
长兴县 sample, makes a large edit set on 现状用地 (≈ 6,500 rows: 3,000 attribute changes,
2,000 moved parcels, 1,000 deletions, 500 pasted parcels, vertex moves, a split, a merge,
undo/redo) and saves it.
It is killed with SIGKILL

* from inside the save, through the progress callback: before the transaction starts, after
  the first chunk of deletions, in the middle of the updates, in the middle of the inserts,
  with every row written but before COMMIT, and right after COMMIT (before the journal is
  removed);
* from outside, by timing, some milliseconds after the save started;
* in the middle of editing, before any save (only the journal can hold the work).

After each kill the project must pass validate_gpkg and open, and the layer (rows and
R-tree, read with plain SQLite) must be exactly the previous state or exactly the new
state — never a mix — with the registry count, GDAL's feature count and the ``edit.save``
audit row agreeing. When the previous state is on disk the journal is offered and restores
the unsaved edits exactly; when the new state is on disk no journal is offered.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "changxing"
LAYER = "现状用地"
THIS = Path(__file__).resolve()


# --------------------------------------------------------------------------- the edit set


def edit_steps():
    """The edit set, one callable per command (shared by the child and the reference)."""
    from shapely.geometry import LineString

    def split(s):
        x0, y0, x1, y1 = s.feature(9100).geometry.bounds
        return s.split(LineString([(x0 - 1, (y0 + y1) / 2), (x1 + 1, (y0 + y1) / 2)]), [9100])

    def vertex(fid):
        def step(s):
            x, y = s.feature(fid).geometry.geoms[0].exterior.coords[0]
            return s.move_vertex(fid, (0, 0, 0), (x + 0.1, y + 0.1), reason="核对影像")
        return step

    steps = [
        lambda s: s.set_attributes(range(1, 3001), {"BZ": "崩溃测试"}, reason="批量备注"),
        lambda s: s.move_features(range(4001, 6001), 0.5, -0.25),
        lambda s: s.delete(range(7001, 8001)),
        lambda s: s.paste(s.copy(range(8001, 8501))),
        *[vertex(fid) for fid in range(9001, 9011)],
        split,
        lambda s: s.merge([9200, 9201], keep=9200),
        lambda s: s.undo(),
        lambda s: s.redo(),
    ]
    return steps


def open_session(project_dir: Path):
    from multiplan.core.editing import EditSession
    from multiplan.core.project import Project

    project = Project.open(project_dir)
    return project, EditSession.open(project, LAYER, actor="crash-test", topological=True,
                                     invalid_policy="warn")


# --------------------------------------------------------------------------- child


def child(project_dir: str, mode: str, saving_fd: int | None = None) -> None:
    """Make the edit set in ``project_dir`` and save it, killing this process as ``mode``
    says: ``save:progress:N`` (at the N-th progress report of the save), ``save:commit``
    (every row written, before COMMIT), ``save:saved`` (after COMMIT), ``save`` (no
    self-kill; ``saving_fd`` gets a byte when the save starts, for a kill by timing),
    ``edit:K`` (after K edit commands, without saving)."""
    from multiplan.core.tasks import Task

    _, s = open_session(Path(project_dir))
    steps = edit_steps()
    if mode.startswith("edit:"):
        stop = int(mode.split(":")[1])
        for k, step in enumerate(steps, 1):
            step(s)
            if k == stop:
                os.kill(os.getpid(), signal.SIGKILL)
        return
    for step in steps:
        step(s)
    kill = mode.split(":", 1)[1] if ":" in mode else "none"
    calls = 0

    def progress(frac: float, msg: str) -> None:
        nonlocal calls
        calls += 1
        if (kill == f"progress:{calls}" or (kill == "commit" and msg.startswith("提交"))
                or (kill == "saved" and msg.startswith("已保存"))):
            os.kill(os.getpid(), signal.SIGKILL)

    if saving_fd is not None:
        os.write(saving_fd, b"S")
    s.save(Task(progress))


def driver(root: str, kills: list[str]) -> None:
    """Run each kill in a process forked from this one (imports paid once), sequentially;
    a timed kill is sent from here. Prints one JSON line per kill: its exit code."""
    import shapely.ops  # noqa: F401

    import multiplan.core.editing  # noqa: F401 — import before forking

    for kill in kills:
        folder = Path(root) / kill_folder(kill)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into this loop
            code = 0
            try:
                os.close(r)
                mode = "save" if kill.startswith("timed") else kill
                child(str(folder), mode, w if kill.startswith("timed") else None)
            except BaseException:  # noqa: BLE001
                import traceback

                traceback.print_exc()
                code = 3
            finally:
                os._exit(code)
        os.close(w)
        if kill.startswith("timed:") and os.read(r, 1) == b"S":  # the save starts now
            time.sleep(float(kill.split(":")[1]))
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        os.close(r)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"kill": kill, "rc": os.waitstatus_to_exitcode(status)}), flush=True)


def kill_folder(kill: str) -> str:
    return kill.replace(":", "_").replace(".", "_")


# --------------------------------------------------------------------------- checks


def table_digest(gpkg: Path) -> str:
    """SHA-256 over every row of the layer table and of its R-tree, in fid order, read
    through a plain read-only SQLite connection."""
    h = hashlib.sha256()
    with contextlib.closing(sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True)) as conn:
        for table in (LAYER, f"rtree_{LAYER}_geom"):
            for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY 1'):
                h.update(repr(row).encode())
    return h.hexdigest()


def edits(s) -> dict:
    """The session's unsaved state over the touched fids (the loaded layer being the same,
    equal edits mean equal layers)."""
    import numpy as np
    import shapely

    p = s.buffer.pending()
    fids = sorted(p["added"] + p["changed"] + p["deleted"])
    feats = [s.feature(fid) for fid in fids]
    wkb = shapely.to_wkb(np.array([f.geometry if f else None for f in feats], dtype=object))
    return {fid: None if f is None else (w, tuple(sorted(f.attrs.items())))
            for fid, f, w in zip(fids, feats, wkb, strict=True)}


#: the first 8 bytes of a valid SQLite rollback journal header
SQLITE_JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")


def journal_state(path: Path) -> str:
    """"none"; "started" (a write transaction had begun: the journal exists, but its header
    is not yet valid because plan.gpkg itself was not written yet); "hot" (SQLite had
    begun overwriting pages of plan.gpkg: the next connection must roll them back)."""
    if not path.exists():
        return "none"
    with open(path, "rb") as fh:
        return "hot" if fh.read(8) == SQLITE_JOURNAL_MAGIC else "started"


def validate(path: Path) -> None:
    """GDAL's validate_gpkg (the structural checks of the GeoPackage requirements)."""
    from osgeo_utils.samples import validate_gpkg

    checker = validate_gpkg.GPKGChecker(str(path), abort_at_first_error=False,
                                        warning_msg=False, log_msg=False)
    checker.check()
    assert checker.errors == []


KILLS = ["save:progress:1", "save:progress:2", "save:progress:20", "save:commit", "save:saved",
         "timed:0.05", "edit:3"]


def make_reference(base: Path) -> dict:
    """The previous and the new state, made in this process: digests, the unsaved edits
    after each command, and the saved row count."""
    shutil.copytree(SAMPLE, base / "p")
    old = table_digest(base / "p" / "plan.gpkg")
    project, s = open_session(base / "p")
    after = {}
    steps = edit_steps()
    for k, step in enumerate(steps, 1):
        step(s)
        if k in (3, len(steps)):  # the states the restore checks compare with
            after[k] = edits(s)
    result = s.save()
    s.close()
    return {"old": old, "new": table_digest(base / "p" / "plan.gpkg"), "after": after,
            "count": project.layer(LAYER).feature_count, "commands": result.commands,
            "rows": result.rows}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    """Every kill on its own copy of plan.gpkg — two driver processes (one per core),
    each forking one child per kill — while this process makes the reference."""
    root = tmp_path_factory.mktemp("crash")
    for kill in KILLS:
        folder = root / kill_folder(kill)
        folder.mkdir()
        shutil.copy(SAMPLE / "plan.gpkg", folder / "plan.gpkg")  # the rasters are not needed
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    drivers = [subprocess.Popen([sys.executable, str(THIS), "driver", str(root), *half],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env) for half in (KILLS[0::2], KILLS[1::2])]
    reference = make_reference(tmp_path_factory.mktemp("crash-ref"))
    crashed: dict[str, dict] = {}
    for proc in drivers:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        for line in out.splitlines():
            rec = json.loads(line)
            folder = root / kill_folder(rec["kill"])
            crashed[rec["kill"]] = {"rc": rec["rc"], "folder": folder, "stderr": err,
                                    "journal": journal_state(folder / "plan.gpkg-journal")}
    assert set(crashed) == set(KILLS)
    return crashed, reference


@pytest.fixture(scope="module")
def crashed(runs: tuple[dict, dict]) -> dict:
    return runs[0]


@pytest.fixture(scope="module")
def reference(runs: tuple[dict, dict]) -> dict:
    return runs[1]


@pytest.mark.parametrize("kill", KILLS)
def test_killed_save_leaves_old_or_new_state(kill: str, crashed: dict, reference: dict) -> None:
    from multiplan.core.editing import EditSession, pending_journals
    from multiplan.core.project import Project

    run = crashed[kill]
    if kill.startswith("timed"):  # killed during the save, or (rarely) just after it
        assert run["rc"] in (-signal.SIGKILL, 0), run["stderr"]
    else:
        assert run["rc"] == -signal.SIGKILL, run["stderr"]
    gpkg = run["folder"] / "plan.gpkg"
    validate(gpkg)
    project = Project.open(run["folder"])  # a hot journal left by the kill is rolled back
    assert journal_state(run["folder"] / "plan.gpkg-journal") != "hot"
    digest = table_digest(gpkg)
    assert digest in (reference["old"], reference["new"]), "a mix of old and new rows"
    saved = digest == reference["new"]
    expect_saved = {"save:saved": True, "timed:0.05": None}.get(kill, False)
    if expect_saved is not None:
        assert saved == expect_saved
    with contextlib.closing(sqlite3.connect(gpkg)) as conn:
        count = conn.execute(f'SELECT count(*) FROM "{LAYER}"').fetchone()[0]
        ogr = conn.execute("SELECT feature_count FROM gpkg_ogr_contents WHERE table_name = ?",
                           (LAYER,)).fetchone()[0]
        saves = conn.execute("SELECT detail FROM mp_audit WHERE action = 'edit.save'"
                             ).fetchall()
        edit_rows = conn.execute("SELECT count(*) FROM mp_audit WHERE action LIKE 'edit.%' "
                                 "AND action != 'edit.save'").fetchone()[0]
    assert count == ogr == project.layer(LAYER).feature_count
    assert count == (reference["count"] if saved else 20006)
    assert len(saves) == int(saved)
    assert edit_rows == (reference["commands"] if saved else 0)

    journals = pending_journals(project)
    if saved:
        assert journals == []  # recognised as saved through its edit.save row, and removed
        assert not any((run["folder"] / ".multiplan-journal").glob("*.jsonl"))
        return
    k = int(kill.split(":")[1]) if kill.startswith("edit:") else len(edit_steps())
    n = k if kill.startswith("edit:") else reference["commands"]
    (info,) = journals
    assert info.commands == n and info.layer == LAYER and info.actor == "crash-test"
    if kill in ("save:commit", "edit:3"):
        s = EditSession.restore(project, info, topological=True, invalid_policy="warn")
        assert edits(s) == reference["after"][k]
        if kill == "save:commit":  # the restored edits save to exactly the new state
            s.save()
            assert table_digest(gpkg) == reference["new"]
            assert pending_journals(project) == []
        s.close()


def test_kills_hit_inside_the_transaction(crashed: dict, reference: dict) -> None:
    """The kills between BEGIN and COMMIT really interrupted a write: a rollback journal was
    left beside plan.gpkg, and in the later ones SQLite had already overwritten pages of
    plan.gpkg (a hot journal), which the next open rolled back. The save was large."""
    assert reference["rows"] > 6000
    states = {k: crashed[k]["journal"] for k in KILLS}
    assert states["save:progress:1"] == "none"  # killed before BEGIN
    for kill in ("save:progress:2", "save:progress:20", "save:commit"):
        assert states[kill] in ("started", "hot"), kill
    assert "hot" in (states["save:progress:20"], states["save:commit"])
    assert states["save:saved"] == "none"  # committed: the journal was deleted by COMMIT


if __name__ == "__main__":
    sys.path.insert(0, str(THIS.parents[2] / "src"))
    driver(sys.argv[2], sys.argv[3:])
