"""Tamper-evident audit trail: a hash chain over ``mp_audit`` (issue 8 part 4).

Every audit entry of a project is written by :func:`append` (through
:meth:`Project._audit <multiplan.core.project.Project._audit>`) inside the caller's SQLite
transaction, so work that is rolled back leaves no audit row and committed work always
has its row. An entry stores

``seq``        1, 2, 3 … in the order of writing (a unique index keeps it unique);
``time``       UTC, ISO 8601 (``2026-11-29T08:00:00+00:00``);
``actor``      who did it (the project's user, else the OS login name);
``action``     a stable id such as ``edit.save``, ``layer.unlock``, ``review.decide``;
``target``     what it was done to (a layer name, a conflict id …), may be NULL;
``detail``     canonical JSON text (keys sorted, no spaces, UTF-8 unescaped);
``prev_hash``  the ``hash`` of entry ``seq - 1`` (:data:`GENESIS` for the first entry);
``hash``       ``sha256(canonical encoding)`` as 64 lowercase hex digits.

**The canonical encoding** hashed for an entry is the UTF-8 bytes of the JSON array
``[seq, time, actor, action, target, detail, prev_hash]`` written with
``json.dumps(..., ensure_ascii=False, separators=(",", ":"))``; ``detail`` is the stored text
(a JSON string inside the array, not re-parsed), NULLs are ``null``. Anyone can re-check a
project with ten lines of Python and ``sqlite3`` from this description.

A second table, ``mp_audit_head`` (one row), holds the ``seq`` and ``hash`` of the last
entry and is updated in the same transaction as each append, so cutting entries off the
end of the log is detected too.

:func:`verify` re-computes the chain (read-only) and reports, naming the entry (seq and
fid): content changed after writing, an entry deleted (a gap in ``seq``), entries reordered
(stored order differs from ``seq`` order), entries inserted (rows without a chain position,
duplicate positions, rows after the recorded head), a broken link (``prev_hash`` not the
previous entry's hash) and a missing or disagreeing head.

What this protects against — and what not
------------------------------------------
It makes *casual or partial* tampering visible: changing, deleting, inserting or
reordering rows with a SQLite tool, a GIS program or a script that does not also
re-compute every later hash and the head. It does **not** stop a person who can write the
file and knows this (published) algorithm from re-writing the whole chain consistently,
head included: there is no secret key, because a desktop program has nowhere to keep one
its users cannot read. Replacing ``plan.gpkg`` with an older copy also leaves a consistent
(shorter) chain. The defence against both is an *anchor* kept outside the file: the head
hash printed by ``multiplan audit verify`` (and by :func:`verify`) can be written into the
committee minutes, a submission letter or the export manifest; ``verify(anchor=...)`` /
``multiplan audit verify --anchor HASH`` then checks that the entry with that hash is still
in the chain. Entries written before the chain existed (projects of schema 1–2) were hashed
when the project was migrated (the ``audit.chain_start`` entry says how many); nothing
vouches for what happened to them before that moment.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ProjectError

AUDIT_TABLE = "mp_audit"
HEAD_TABLE = "mp_audit_head"
SEQ_INDEX = "mp_audit_seq"
#: ``prev_hash`` of the first entry of every chain.
GENESIS = "0" * 64
#: Schema version from which projects carry the chain.
CHAIN_SCHEMA = 3

CHAIN_COLUMNS = [("seq", "INTEGER"), ("prev_hash", "TEXT"), ("hash", "TEXT")]
COLUMNS = ("seq", "time", "actor", "action", "target", "detail", "prev_hash", "hash")

#: problem kinds reported by :func:`verify`
PROBLEM_KINDS = ("changed", "deleted", "reordered", "inserted", "broken_link", "broken_head",
                 "anchor")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def canonical_json(value: Any) -> str:
    """JSON text with sorted keys, no spaces, Chinese unescaped (``default=str``)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      default=str)


def entry_hash(seq: Any, time: Any, actor: Any, action: Any, target: Any, detail: Any,
               prev_hash: Any) -> str:
    """The SHA-256 (hex) of an entry's canonical encoding (see the module docstring)."""
    payload = json.dumps([seq, time, actor, action, target, detail, prev_hash],
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# =========================================================================== schema


def _register(conn: sqlite3.Connection, table: str, description: str) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO gpkg_contents (table_name, data_type, identifier, description)"
        " VALUES (?, 'attributes', ?, ?)", (table, table, description))


def _table_exists(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                        (table,)).fetchone() is not None


def _create_head(conn: sqlite3.Connection) -> None:
    conn.execute(f'CREATE TABLE IF NOT EXISTS "{HEAD_TABLE}" ('
                 '"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, '
                 '"seq" INTEGER NOT NULL, "hash" TEXT NOT NULL, "time" TEXT)')
    _register(conn, HEAD_TABLE, "multiplan audit chain head (last seq and hash)")


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the chained audit table and its head (a new project, schema 3)."""
    conn.execute(f'CREATE TABLE IF NOT EXISTS "{AUDIT_TABLE}" ('
                 '"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "seq" INTEGER, '
                 '"time" TEXT NOT NULL, "actor" TEXT, "action" TEXT NOT NULL, '
                 '"target" TEXT, "detail" TEXT, "prev_hash" TEXT, "hash" TEXT)')
    conn.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS "{SEQ_INDEX}" ON "{AUDIT_TABLE}" ("seq")')
    _register(conn, AUDIT_TABLE, "multiplan audit log (hash chain)")
    _create_head(conn)
    if conn.execute(f'SELECT count(*) FROM "{HEAD_TABLE}"').fetchone()[0] == 0:
        conn.execute(f'INSERT INTO "{HEAD_TABLE}" ("fid", "seq", "hash", "time") '
                     'VALUES (1, 0, ?, ?)', (GENESIS, _now()))


def start_chain(conn: sqlite3.Connection, actor: str | None = None) -> int:
    """Migration 2 → 3: add the chain columns to an existing ``mp_audit``, hash its rows in
    stored order (seq 1…n) and write the head, then append ``audit.chain_start``.

    Returns the number of existing entries hashed. Runs inside the caller's transaction.
    """
    if not _table_exists(conn, AUDIT_TABLE):
        create_tables(conn)
        existing: list[tuple[Any, ...]] = []
    else:
        have = {r[1] for r in conn.execute(f'PRAGMA table_info("{AUDIT_TABLE}")')}
        for name, decl in CHAIN_COLUMNS:
            if name not in have:
                conn.execute(f'ALTER TABLE "{AUDIT_TABLE}" ADD COLUMN "{name}" {decl}')
        conn.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS "{SEQ_INDEX}" '
                     f'ON "{AUDIT_TABLE}" ("seq")')
        _register(conn, AUDIT_TABLE, "multiplan audit log (hash chain)")
        _create_head(conn)
        existing = conn.execute(f'SELECT "fid", "time", "actor", "action", "target", "detail" '
                                f'FROM "{AUDIT_TABLE}" WHERE "hash" IS NULL '
                                f'ORDER BY "fid"').fetchall()
    prev = GENESIS
    seq = 0
    row = conn.execute(f'SELECT "seq", "hash" FROM "{HEAD_TABLE}" WHERE "fid" = 1').fetchone()
    if row is not None:  # already chained (should not happen on a v2 project)
        seq, prev = int(row[0]), str(row[1])
    for fid, time, who, action, target, detail in existing:
        seq += 1
        h = entry_hash(seq, time, who, action, target, detail, prev)
        conn.execute(f'UPDATE "{AUDIT_TABLE}" SET "seq" = ?, "prev_hash" = ?, "hash" = ? '
                     'WHERE "fid" = ?', (seq, prev, h, fid))
        prev = h
    conn.execute(f'INSERT OR REPLACE INTO "{HEAD_TABLE}" ("fid", "seq", "hash", "time") '
                 'VALUES (1, ?, ?, ?)', (seq, prev, _now()))
    detail: dict[str, Any] = {
        "entries_hashed": len(existing),
        "note": "entries before this one were written without a hash chain; they are "
                "protected from this moment on, not before",
    }
    if existing:
        detail.update(first_fid=existing[0][0], last_fid=existing[-1][0])
    append(conn, "audit.chain_start", None, detail, actor)
    return len(existing)


# =========================================================================== append


def append(conn: sqlite3.Connection, action: str, target: str | None, detail: Any = None,
           actor: str | None = None) -> int:
    """Append one entry to the chain inside the caller's transaction; returns its seq.

    The connection's transaction holds the database write lock from the first read of the
    head to the commit (a transaction is begun with ``BEGIN IMMEDIATE`` if none is open),
    so two programs appending at once cannot fork the chain. On a connection in autocommit
    mode with no open transaction the entry is committed here.
    """
    own = False
    if not conn.in_transaction:
        conn.execute("BEGIN IMMEDIATE")
        own = conn.isolation_level is None
    try:
        seq = _append(conn, action, target, detail, actor)
        if own:
            conn.execute("COMMIT")
    except BaseException:
        if own:
            conn.execute("ROLLBACK")
        raise
    return seq


def _append(conn: sqlite3.Connection, action: str, target: str | None, detail: Any,
            actor: str | None) -> int:
    head = conn.execute(f'SELECT "seq", "hash" FROM "{HEAD_TABLE}" WHERE "fid" = 1').fetchone()
    top = conn.execute(f'SELECT max("seq") FROM "{AUDIT_TABLE}"').fetchone()[0]
    if head is None:
        # the head row was deleted: rebuild it from the last stored entry and say so in the
        # chain itself, so the loss stays visible after the next write
        last = conn.execute(f'SELECT "seq", "hash" FROM "{AUDIT_TABLE}" WHERE "hash" IS NOT '
                            f'NULL ORDER BY "seq" DESC LIMIT 1').fetchone()
        seq0, prev0 = (int(last[0]), str(last[1])) if last else (0, GENESIS)
        conn.execute(f'INSERT OR REPLACE INTO "{HEAD_TABLE}" ("fid", "seq", "hash", "time") '
                     'VALUES (1, ?, ?, ?)', (seq0, prev0, _now()))
        _append(conn, "audit.head_missing", None,
                {"rebuilt_from_seq": seq0,
                 "note": "the chain head record was missing and was rebuilt"}, actor)
        head = conn.execute(f'SELECT "seq", "hash" FROM "{HEAD_TABLE}" WHERE "fid" = 1'
                            ).fetchone()
        top = conn.execute(f'SELECT max("seq") FROM "{AUDIT_TABLE}"').fetchone()[0]
    head_seq, prev = int(head[0]), str(head[1])
    # rows after the head (forged, or left by a foreign program) keep their seq: never
    # collide with them; verify reports them
    seq = max(head_seq, int(top) if isinstance(top, int) else head_seq) + 1
    time = _now()
    text = None if detail is None else canonical_json(detail)
    h = entry_hash(seq, time, actor, action, target, text, prev)
    conn.execute(f'INSERT INTO "{AUDIT_TABLE}" ("seq", "time", "actor", "action", "target", '
                 '"detail", "prev_hash", "hash") VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                 (seq, time, actor, action, target, text, prev, h))
    conn.execute(f'UPDATE "{HEAD_TABLE}" SET "seq" = ?, "hash" = ?, "time" = ? '
                 'WHERE "fid" = 1', (seq, h, time))
    return seq


# =========================================================================== verify


@dataclass
class AuditProblem:
    """One thing wrong with the chain, naming the entry (``seq`` and/or ``fid``)."""

    kind: str  # one of PROBLEM_KINDS
    seq: int | None
    fid: int | None
    zh: str
    en: str

    def where(self, lang: str = "zh") -> str:
        parts = []
        if self.seq is not None:
            parts.append(f"seq {self.seq}")
        if self.fid is not None:
            parts.append(f"fid {self.fid}")
        return ", ".join(parts) or ("整体" if lang.startswith("zh") else "chain")

    def text(self, lang: str = "zh") -> str:
        return f"[{self.where(lang)}] " + (self.zh if lang.startswith("zh") else self.en)

    def __str__(self) -> str:
        return f"{self.text('zh')} / {self.en}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "seq": self.seq, "fid": self.fid, "zh": self.zh,
                "en": self.en}


@dataclass
class AuditReport:
    """Result of :func:`verify`. ``ok`` is True only when no problem was found."""

    path: str
    entries: int
    problems: list[AuditProblem] = field(default_factory=list)
    head_seq: int | None = None
    head_hash: str | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    anchor: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "entries": self.entries,
                "head": {"seq": self.head_seq, "hash": self.head_hash},
                "last": {"seq": self.last_seq, "hash": self.last_hash},
                "anchor": self.anchor,
                "problems": [p.to_dict() for p in self.problems]}


def _gpkg_of(project_or_folder: Any) -> Path:
    gpkg = getattr(project_or_folder, "gpkg", None)
    if gpkg is not None:
        return Path(gpkg)
    path = Path(project_or_folder)
    if path.is_file():
        return path
    return path / "plan.gpkg"


def _connect_ro(gpkg: Path) -> sqlite3.Connection:
    if not gpkg.is_file():
        raise ProjectError("project.not_found", "找不到项目文件 plan.gpkg",
                           "no plan.gpkg in this folder; not a multiplan project",
                           path=gpkg.parent)
    try:
        conn = sqlite3.connect(f"{gpkg.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        tables = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise ProjectError("project.corrupt", "项目文件已损坏或不是 GeoPackage",
                           f"the project file is corrupt or not a GeoPackage ({exc})",
                           path=gpkg) from None
    if "mp_schema" not in tables:
        conn.close()
        raise ProjectError("project.not_multiplan",
                           "该 GeoPackage 不是 multiplan 项目（缺少 mp_schema 表）",
                           "this GeoPackage is not a multiplan project (no mp_schema table)",
                           path=gpkg)
    return conn


def _schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute('SELECT "version" FROM "mp_schema" LIMIT 1').fetchone()
    return int(row[0]) if row else 0


def _require_chain(conn: sqlite3.Connection, gpkg: Path) -> None:
    version = _schema_version(conn)
    have = {r[1] for r in conn.execute(f'PRAGMA table_info("{AUDIT_TABLE}")')}
    if version < CHAIN_SCHEMA or "hash" not in have:
        raise ProjectError(
            "audit.no_chain",
            f"该项目（结构版本 {version}）的审计日志还没有哈希链；用本版 multiplan 打开一次项目"
            f"即可建立（迁移时对已有条目计算哈希）",
            f"this project (schema {version}) has no audit hash chain yet; open it once with "
            f"this multiplan to start one (migration hashes the existing entries)", path=gpkg)


def verify(project_or_folder: Any, anchor: str | None = None) -> AuditReport:
    """Re-compute the audit chain of a project (a :class:`Project`, its folder or its
    ``plan.gpkg``) without writing to it.

    ``anchor``: a hash recorded outside the project earlier (e.g. the head printed at
    publication); it must still be the hash of an entry of the chain.
    """
    gpkg = _gpkg_of(project_or_folder)
    with contextlib.closing(_connect_ro(gpkg)) as conn:
        _require_chain(conn, gpkg)
        rows = conn.execute('SELECT "fid", "seq", "time", "actor", "action", "target", '
                            '"detail", "prev_hash", "hash" '
                            f'FROM "{AUDIT_TABLE}" ORDER BY "fid"').fetchall()
        head: tuple[Any, ...] | None = None
        head_rows = 0
        if _table_exists(conn, HEAD_TABLE):
            hs = conn.execute(f'SELECT "seq", "hash" FROM "{HEAD_TABLE}" ORDER BY "fid"'
                              ).fetchall()
            head_rows = len(hs)
            head = hs[-1] if hs else None
    return _check(str(gpkg), rows, head, head_rows, anchor)


def _check(path: str, rows: list[tuple[Any, ...]], head: tuple[Any, ...] | None,
           head_rows: int, anchor: str | None) -> AuditReport:
    report = AuditReport(path=path, entries=len(rows), anchor=anchor)
    add = report.problems.append

    chained = []
    for r in rows:
        fid, seq, _t, _a, action, _tg, _d, prev_hash, h = r
        if not isinstance(seq, int) or prev_hash is None or h is None:
            add(AuditProblem(
                "inserted", seq if isinstance(seq, int) else None, fid,
                f"条目（动作 {action}）没有链位置或哈希：不是由 multiplan 写入的，是后来插入的",
                f"entry (action {action}) has no chain position or hash: it was not written "
                f"by multiplan but inserted afterwards"))
        else:
            chained.append(r)

    # stored order (fid, i.e. order of writing) must equal chain order (seq)
    by_seq = sorted(chained, key=lambda r: (r[1], r[0]))
    for pos, (stored, ordered) in enumerate(zip(chained, by_seq, strict=True)):
        if stored[0] != ordered[0]:
            add(AuditProblem(
                "reordered", stored[1], stored[0],
                f"条目顺序被改动：该条目按写入顺序是第 {pos + 1} 条，但其 seq 为 {stored[1]}",
                f"entries were reordered: this entry is number {pos + 1} in the order of "
                f"writing but carries seq {stored[1]}"))

    expected, prev, last = 1, GENESIS, None
    seen_hashes: set[str] = set()
    seq_of_hash: dict[str, int] = {GENESIS: 0}
    for r in by_seq:
        fid, seq, time, actor, action, target, detail, prev_hash, h = r
        if last is not None and seq == last[1]:
            add(AuditProblem(
                "inserted", seq, fid,
                f"seq {seq} 出现两次：后一条（动作 {action}）是插入的",
                f"seq {seq} occurs twice: the second entry (action {action}) was inserted"))
            continue
        gap = False
        if seq > expected:
            gap = True
            missing = (f"seq {expected}" if seq - expected == 1
                       else f"seq {expected}–{seq - 1}")
            add(AuditProblem(
                "deleted", expected, None,
                f"缺少条目 {missing}（在 seq {seq} 之前被删除）",
                f"entr{'y' if seq - expected == 1 else 'ies'} {missing} missing (deleted "
                f"before seq {seq})"))
        elif seq < expected:
            add(AuditProblem(
                "inserted", seq, fid,
                f"seq {seq} 不在链的有效范围内（应从 {expected} 起）：条目是插入的",
                f"seq {seq} is outside the chain (next valid position is {expected}): the "
                f"entry was inserted"))
        valid = entry_hash(seq, time, actor, action, target, detail, prev_hash) == h
        if not valid:
            tz = f"，目标 {target}" if target is not None else ""
            te = f", target {target}" if target is not None else ""
            add(AuditProblem(
                "changed", seq, fid,
                f"条目（动作 {action}{tz}）的内容与其哈希不符：写入后被修改",
                f"the content of this entry (action {action}{te}) does not match its hash: "
                f"it was changed after it was written"))
        if not gap and seq >= expected and prev_hash != prev:
            # an intact entry linking to an intact earlier one skips the entries between
            links_to = seq_of_hash.get(str(prev_hash)) if valid else None
            if links_to is not None and links_to < seq - 1:
                # the entry links past its predecessors: those were slipped in
                for x in by_seq:
                    if links_to < x[1] < seq:
                        add(AuditProblem(
                            "inserted", x[1], x[0],
                            f"条目（动作 {x[4]}）不在链中：其后的 seq {seq} 直接链接到 seq "
                            f"{links_to}，该条目是插入的",
                            f"entry (action {x[4]}) is not part of the chain: seq {seq} "
                            f"links straight to seq {links_to}, so it was inserted"))
            else:
                add(AuditProblem(
                    "broken_link", seq, fid,
                    f"条目的前一哈希与 seq {seq - 1} 的哈希不符：前面的条目被改写、删除或插入",
                    f"the entry's prev_hash does not match the hash of seq {seq - 1}: an "
                    f"earlier entry was rewritten, removed or inserted"))
        seen_hashes.add(str(h))
        if valid:
            seq_of_hash.setdefault(str(h), seq)
        prev, expected, last = h, seq + 1, r

    report.last_seq = last[1] if last else 0
    report.last_hash = last[8] if last else GENESIS
    if head is None:
        add(AuditProblem(
            "broken_head", None, None,
            "链头记录（mp_audit_head）缺失，无法判断末尾的条目是否被删除",
            "the chain head record (mp_audit_head) is missing, so entries cut off the end "
            "cannot be ruled out"))
    else:
        hseq, hhash = head
        report.head_seq, report.head_hash = hseq, hhash
        if head_rows > 1:
            add(AuditProblem("broken_head", None, None,
                             f"链头表有 {head_rows} 行（应为 1 行）",
                             f"the chain head table has {head_rows} rows (should be 1)"))
        if not isinstance(hseq, int):
            add(AuditProblem("broken_head", None, None, "链头记录的 seq 无效",
                             "the chain head record has an invalid seq"))
        elif hseq > report.last_seq:
            missing = (f"seq {hseq}" if hseq == report.last_seq + 1
                       else f"seq {report.last_seq + 1}–{hseq}")
            add(AuditProblem(
                "deleted", report.last_seq + 1, None,
                f"末尾缺少条目 {missing}：链头记录到 seq {hseq}，日志被截断",
                f"entr{'y' if hseq == report.last_seq + 1 else 'ies'} {missing} missing at the "
                f"end: the head records seq {hseq}, the log was truncated"))
        elif hseq < report.last_seq:
            extra = [r for r in by_seq if r[1] > hseq]
            for r in extra:
                add(AuditProblem(
                    "inserted", r[1], r[0],
                    f"条目（动作 {r[4]}）在链头记录的最后一条 seq {hseq} 之后：是后来插入的",
                    f"entry (action {r[4]}) comes after the last entry the head records "
                    f"(seq {hseq}): it was inserted afterwards"))
            at = next((r for r in by_seq if r[1] == hseq), None)
            if hseq > 0 and (at is None or at[8] != hhash):
                add(AuditProblem(
                    "broken_head", hseq, at[0] if at else None,
                    f"链头哈希与 seq {hseq} 的哈希不符",
                    f"the head hash does not match the hash of seq {hseq}"))
        elif hhash != report.last_hash:
            add(AuditProblem(
                "broken_head", hseq, last[0] if last else None,
                f"链头哈希与最后一条（seq {hseq}）的哈希不符：最后的条目被改写",
                f"the head hash does not match the last entry (seq {hseq}): the last entry "
                f"was rewritten"))
    if anchor is not None and anchor.strip().lower() not in seen_hashes:
        add(AuditProblem(
            "anchor", None, None,
            f"外部记录的哈希 {anchor[:16]}… 不在链中：日志在记录该哈希之后被整体改写或替换",
            f"the externally recorded hash {anchor[:16]}… is not in the chain: the log was "
            f"rewritten or replaced after that hash was recorded"))
    return report


# =========================================================================== reading


def read_log(project_or_folder: Any, limit: int | None = None) -> list[dict[str, Any]]:
    """The audit entries in chain order (the last ``limit`` if given), read-only; ``detail``
    parsed from JSON where it parses."""
    gpkg = _gpkg_of(project_or_folder)
    with contextlib.closing(_connect_ro(gpkg)) as conn:
        conn.row_factory = sqlite3.Row
        have = {r[1] for r in conn.execute(f'PRAGMA table_info("{AUDIT_TABLE}")')}
        if not have:
            return []
        order = '"seq", "fid"' if "seq" in have else '"fid"'
        sql = f'SELECT * FROM "{AUDIT_TABLE}" ORDER BY {order}'
        if limit is not None:
            desc = order.replace('"seq"', '"seq" DESC').replace('"fid"', '"fid" DESC')
            sql = (f'SELECT * FROM (SELECT * FROM "{AUDIT_TABLE}" ORDER BY {desc} LIMIT ?) '
                   f'ORDER BY {order}')
            rows = conn.execute(sql, (max(int(limit), 0),)).fetchall()
        else:
            rows = conn.execute(sql).fetchall()
    out = []
    for r in rows:
        d = dict(r)
        text = d.get("detail")
        if isinstance(text, str):
            with contextlib.suppress(ValueError):
                d["detail"] = json.loads(text)
        out.append(d)
    return out
