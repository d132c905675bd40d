"""Classification tables, crosswalks and the 三生 lookup, read from versioned data files.

The tables live in ``multiplan/resources/standards/*.json`` (package data). Each file has a
header (``id``, ``version``, ``title``, ``source``, ``confidence``, ``kind``) and its rows, and
is checked by :func:`validate_table` when it is loaded; a bad file raises
:class:`~multiplan.core.errors.StandardsError` naming the file and the row.

Schemes (``kind: "scheme"``): ``ydyh2023`` (用地用海 2023, the unified target), ``gbt21010_2017``,
``gbt21010_2007``, ``gb50137_2011``. Crosswalks (``kind: "crosswalk"``) map a legacy scheme onto
``ydyh2023``; a row is either ``ok`` with one target, or ``待定`` (pending) with candidate codes
for a human to choose from — the crosswalk never guesses.

Code normalisation (:meth:`Scheme.normalise`), applied everywhere a code is looked up:

* ``None``, NaN, pandas NA and blank strings are "no code" (``None``).
* Text is NFKC-normalised (full-width ``０１０１`` → ``0101``), stripped and upper-cased;
  a float-looking text ``"101.0"`` loses its ``.0``.
* ``ydyh2023`` and ``gbt21010_2017`` (even-length codes): an odd-length run of digits, as left
  by a numeric DBF/Excel column, gets one leading zero: ``101`` → ``"0101"``,
  ``60101`` → ``"060101"``, ``1`` → ``"01"``.
* ``gbt21010_2007`` (2-digit level 1, 3-digit level 2): a *numeric* value is read as the 3-digit
  code when that exists (``11`` → ``"011"`` 水田), else as a 2-digit code (``1`` → ``"01"``,
  ``10`` → ``"10"``); text is taken literally except that one digit gets a leading zero
  (``"11"`` stays level-1 水域及水利设施用地).
* ``gb50137_2011``: letters upper-cased (``"r21"`` → ``"R21"``).

Pure Python (pandas only inside :func:`unify`); no Qt. Loaded tables are cached; call
:func:`clear_cache` after editing a table in a running process.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from multiplan.core.errors import StandardsError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "FALLBACK_GREY",
    "STATUS_OK",
    "STATUS_PENDING",
    "STATUS_UNKNOWN",
    "TARGET_SCHEME",
    "ClassEntry",
    "Crosswalk",
    "Mapping",
    "Scheme",
    "available_crosswalks",
    "available_schemes",
    "clear_cache",
    "is_construction",
    "load_crosswalk",
    "load_scheme",
    "sansheng",
    "sansheng_classes",
    "sansheng_table_version",
    "unify",
    "validate_table",
    "validate_table_file",
]

TARGET_SCHEME = "ydyh2023"
STATUS_OK = "ok"
STATUS_PENDING = "待定"
STATUS_UNKNOWN = "unknown"
FALLBACK_GREY: tuple[int, int, int] = (128, 128, 128)

HEADER_KEYS = ("id", "version", "title", "source", "confidence", "kind")
CATEGORIES = ("农用地", "建设用地", "未利用地", "海洋", "非建设用地")
COLOUR_RULES = ("none", "name_walk", "code_prefix")

_DIGITS = re.compile(r"[0-9]+")
_FLOAT_TEXT = re.compile(r"([0-9]+)\.0*")


# --------------------------------------------------------------------------- code styles

def _style_level(style: str, code: str) -> int:
    if style == "digits_even":
        return len(code) // 2
    if style == "digits_2007":
        return 1 if len(code) == 2 else 2
    return len(code)  # gb50137: R, R1, R11


def _style_parent(style: str, code: str) -> str | None:
    if style == "digits_even":
        return code[:-2] or None
    if style == "digits_2007":
        return code[:2] if len(code) == 3 else None
    return code[:-1] or None


_STYLES = ("digits_even", "digits_2007", "gb50137")


# --------------------------------------------------------------------------- records

@dataclass(frozen=True)
class ClassEntry:
    """One class of a scheme. ``colour`` is the resolved RGB (fallback grey when none)."""

    code: str
    name: str
    level: int
    parent: str | None
    colour: tuple[int, int, int]
    sansheng: str | None = None
    category: str | None = None
    is_construction: bool = False
    aliases: tuple[str, ...] = ()
    part: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Mapping:
    """Result of mapping one source code.

    ``status`` is ``"ok"`` (``target`` set), ``"待定"`` (``target`` None, ``candidates`` listed
    for a human decision) or ``"unknown"`` (the code is not in the source table).
    ``row`` is the crosswalk row used (an ancestor of ``source`` when the source code is more
    detailed than the table); ``common_parent`` is the deepest 2023 class containing every
    candidate, when there is one (e.g. ``"02"`` for ``["0204", "0205"]``).
    """

    status: str
    target: str | None = None
    candidates: list[str] = field(default_factory=list)
    source: str | None = None
    row: str | None = None
    common_parent: str | None = None
    note: str | None = None


# --------------------------------------------------------------------------- files

def _standards_dir() -> Any:
    return resources.files("multiplan").joinpath("resources", "standards")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicate key {k!r}")
        d[k] = v
    return d


def _parse(text: str, path: str) -> dict[str, Any]:
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise StandardsError("standards.json", f"标准表不是有效的 JSON：{exc}",
                             f"standards table is not valid JSON: {exc}", path=path) from None
    if not isinstance(data, dict):
        raise StandardsError("standards.json", "标准表顶层必须是对象", "standards table must be a "
                             "JSON object at the top level", path=path)
    return data


def _read_packaged(name: str) -> tuple[dict[str, Any], str]:
    res = _standards_dir().joinpath(f"{name}.json")
    path = str(res)
    if not res.is_file():
        raise StandardsError("standards.missing", f"找不到标准表 {name}",
                             f"standards table {name!r} not found", path=path)
    return _parse(res.read_text(encoding="utf-8"), path), path


def validate_table_file(path: str | Path) -> dict[str, Any]:
    """Read a standards JSON file, check it (see :func:`validate_table`) and return it.

    Crosswalks are checked against the packaged source and target schemes.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StandardsError("standards.missing", f"无法读取标准表：{exc}",
                             f"cannot read standards table: {exc}", path=str(p)) from None
    data = _parse(text, str(p))
    validate_table(data, str(p))
    return data


# --------------------------------------------------------------------------- validation

def _fail(path: str | None, row: str | None, code: str, zh: str, en: str) -> StandardsError:
    return StandardsError(f"standards.{code}", zh, en, path=path, feature=row)


def _row_label(i: int, row: Any, key: str = "code") -> str:
    code = row.get(key) if isinstance(row, dict) else None
    return f"row {i + 1} ({key}={code!r})" if code is not None else f"row {i + 1}"


def _check_colour(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 3
            and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255
                    for c in value))


def _longest_prefix(prefixes: dict[str, Any], code: str) -> str | None:
    for n in range(len(code), 0, -1):
        if code[:n] in prefixes:
            return code[:n]
    return None


def validate_table(data: dict[str, Any], path: str | None = None) -> None:
    """Check one standards table; raise :class:`StandardsError` naming ``path`` and the row.

    Checks: header keys; for schemes unique codes of the right shape, level and parent
    consistent with the code, parents present, colours 3 ints 0–255 and equal to what the
    file's colour rule gives, 三生 and 三大类 values consistent with their prefix rules, unique
    names where the table says so; for crosswalks known source codes, statuses in
    {"ok", "待定"}, and every target / candidate present in the target scheme.
    """
    if not isinstance(data, dict):
        raise _fail(path, None, "header", "标准表顶层必须是对象", "table must be a JSON object")
    for key in HEADER_KEYS:
        if key not in data or data[key] in (None, ""):
            raise _fail(path, None, "header", f"标准表缺少表头字段 {key}",
                        f"table header lacks the key {key!r}")
    for key in ("id", "version", "title", "source", "kind"):
        if not isinstance(data[key], str):
            raise _fail(path, None, "header", f"表头字段 {key} 必须是字符串",
                        f"header key {key!r} must be a string")
    conf = data["confidence"]
    if not (isinstance(conf, str) or (isinstance(conf, dict)
                                      and all(isinstance(v, str) for v in conf.values()))):
        raise _fail(path, None, "header", "表头 confidence 必须是字符串或字符串字典",
                    "header 'confidence' must be a string or a dict of strings")
    if data["kind"] == "scheme":
        _validate_scheme(data, path)
    elif data["kind"] == "crosswalk":
        _validate_crosswalk(data, path)
    else:
        raise _fail(path, None, "header", f"未知的表类型 {data['kind']!r}",
                    f"unknown table kind {data['kind']!r} (expected 'scheme' or 'crosswalk')")


def _validate_scheme(data: dict[str, Any], path: str | None) -> None:
    style = data.get("code_style")
    if style not in _STYLES:
        raise _fail(path, None, "header", f"未知的编码样式 {style!r}",
                    f"unknown code_style {style!r}; expected one of {_STYLES}")
    try:
        pattern = re.compile(str(data.get("code_pattern", "")))
    except re.error as exc:
        raise _fail(path, None, "header", f"code_pattern 无效：{exc}",
                    f"invalid code_pattern: {exc}") from None
    if not data.get("code_pattern"):
        raise _fail(path, None, "header", "缺少 code_pattern", "header lacks 'code_pattern'")
    rule = data.get("colour_rule")
    if not isinstance(rule, dict) or rule.get("rule") not in COLOUR_RULES:
        raise _fail(path, None, "colour_rule", "colour_rule 缺失或规则未知",
                    f"colour_rule missing or its 'rule' not one of {COLOUR_RULES}")
    if not _check_colour(rule.get("fallback")):
        raise _fail(path, None, "bad_colour", "colour_rule.fallback 必须是 0–255 的 3 个整数",
                    "colour_rule.fallback must be 3 integers 0–255")
    table = rule.get("table", {})
    if rule["rule"] != "none":
        if not isinstance(table, dict) or not table:
            raise _fail(path, None, "colour_rule", "colour_rule.table 缺失",
                        "colour_rule.table missing")
        for k, v in table.items():
            if not _check_colour(v):
                raise _fail(path, f"colour_rule.table[{k!r}]", "bad_colour",
                            "颜色必须是 0–255 的 3 个整数", "colour must be 3 integers 0–255")
    aliases_c = rule.get("aliases", {}) or {}
    for k, v in aliases_c.items():
        if v not in table:
            raise _fail(path, f"colour_rule.aliases[{k!r}]", "colour_rule",
                        f"颜色别名指向不存在的类名 {v!r}",
                        f"colour alias points to {v!r}, which is not in colour_rule.table")

    entries = data.get("entries")
    if not isinstance(entries, list) or not entries:
        raise _fail(path, None, "entries", "表中没有 entries 行", "table has no 'entries' rows")
    codes: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(entries):
        label = _row_label(i, row)
        if not isinstance(row, dict):
            raise _fail(path, label, "row", "行必须是对象", "row must be a JSON object")
        code = row.get("code")
        if not isinstance(code, str) or not pattern.fullmatch(code):
            raise _fail(path, label, "bad_code", f"编码 {code!r} 不是规定格式的字符串",
                        f"code {code!r} is not a string of the expected shape "
                        f"({data['code_pattern']})")
        if code in codes:
            raise _fail(path, label, "duplicate_code", f"编码 {code} 重复",
                        f"code {code} appears twice")
        name = row.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _fail(path, label, "row", "名称缺失", "name missing")
        level = row.get("level")
        if level != _style_level(style, code) or isinstance(level, bool):
            raise _fail(path, label, "row", f"级别 {level!r} 与编码 {code} 不符",
                        f"level {level!r} does not fit code {code}")
        if row.get("parent") != _style_parent(style, code):
            raise _fail(path, label, "parent", f"上级编码 {row.get('parent')!r} 与编码 {code} 不符",
                        f"parent {row.get('parent')!r} does not fit code {code}")
        colour = row.get("colour")
        if colour is not None and not _check_colour(colour):
            raise _fail(path, label, "bad_colour", "颜色必须是 0–255 的 3 个整数",
                        "colour must be 3 integers 0–255")
        cat = row.get("category")
        if cat is not None and cat not in CATEGORIES:
            raise _fail(path, label, "row", f"三大类 {cat!r} 无效",
                        f"category {cat!r} not one of {CATEGORIES}")
        if not isinstance(row.get("is_construction", False), bool):
            raise _fail(path, label, "row", "is_construction 必须是布尔值",
                        "is_construction must be true or false")
        if bool(row.get("is_construction", False)) != (cat == "建设用地"):
            raise _fail(path, label, "row", "is_construction 与三大类不一致",
                        "is_construction disagrees with category")
        aliases = row.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
            raise _fail(path, label, "row", "aliases 必须是字符串列表",
                        "aliases must be a list of strings")
        codes[code] = row
    for i, row in enumerate(entries):
        parent = row["parent"]
        if parent is not None and parent not in codes:
            raise _fail(path, _row_label(i, row), "parent", f"上级编码 {parent} 不在表中",
                        f"parent {parent} is not in the table")

    if data.get("unique_names"):
        seen: dict[str, str] = {}
        for i, row in enumerate(entries):
            for nm in [row["name"], *row.get("aliases", [])]:
                if nm in seen and seen[nm] != row["code"]:
                    raise _fail(path, _row_label(i, row), "duplicate_name",
                                f"名称 {nm} 重复（{seen[nm]}）",
                                f"name {nm} also used by {seen[nm]}")
                seen[nm] = row["code"]

    # resolved colours must follow the file's own rule
    fallback = rule["fallback"]
    for i, row in enumerate(entries):
        expected = _resolve_colour(rule, codes, row["code"])
        got = row.get("colour")
        if rule["rule"] == "none":
            ok = got is None or got == fallback
        else:
            ok = got == expected
        if not ok:
            raise _fail(path, _row_label(i, row), "bad_colour",
                        f"颜色 {got} 与配色规则结果 {expected} 不符",
                        f"colour {got} differs from {expected} given by the colour rule")

    ss = data.get("sansheng")
    if ss is not None:
        _validate_prefix_block(ss, "sansheng", path, entries, need_version=True)
    cr = data.get("category_rule")
    if cr is not None:
        _validate_prefix_block(cr, "category", path, entries, need_version=False)


def _resolve_colour(rule: dict[str, Any], codes: dict[str, dict[str, Any]],
                    code: str) -> list[int]:
    kind = rule["rule"]
    table = rule.get("table", {})
    if kind == "name_walk":
        aliases = rule.get("aliases", {}) or {}
        c: str | None = code
        while c is not None and c in codes:
            nm = codes[c]["name"]
            if nm in table:
                return table[nm]
            if nm in aliases:
                return table[aliases[nm]]
            c = codes[c]["parent"]
    elif kind == "code_prefix":
        c = code
        while c is not None and c in codes:
            if c in table:
                return table[c]
            c = codes[c]["parent"]
    return rule["fallback"]


def _validate_prefix_block(block: Any, key: str, path: str | None,
                           entries: list[dict[str, Any]], *, need_version: bool) -> None:
    where = "sansheng" if key == "sansheng" else "category_rule"
    if not isinstance(block, dict) or not isinstance(block.get("prefixes"), dict):
        raise _fail(path, where, key, f"{where} 缺少 prefixes", f"{where} lacks 'prefixes'")
    if need_version and not isinstance(block.get("version"), str):
        raise _fail(path, where, key, f"{where} 缺少版本号", f"{where} lacks a 'version' id")
    classes = block.get("classes")
    if not isinstance(classes, list) or not classes:
        raise _fail(path, where, key, f"{where} 缺少 classes", f"{where} lacks 'classes'")
    prefixes = block["prefixes"]
    for p, v in prefixes.items():
        if not _DIGITS.fullmatch(p) or len(p) % 2:
            raise _fail(path, f"{where}.prefixes[{p!r}]", key, f"前缀 {p!r} 格式错误",
                        f"prefix {p!r} is not an even-length digit string")
        if v is not None and v not in classes:
            raise _fail(path, f"{where}.prefixes[{p!r}]", key, f"类别 {v!r} 不在 classes 中",
                        f"class {v!r} is not listed in {where}.classes")
        if key == "sansheng" and v is None:
            raise _fail(path, f"{where}.prefixes[{p!r}]", key, "三生类别不能为空",
                        "a 三生 class may not be null")
    for i, row in enumerate(entries):
        best = _longest_prefix(prefixes, row["code"])
        expected = prefixes[best] if best is not None else None
        if row.get(key) != expected:
            raise _fail(path, _row_label(i, row), key,
                        f"{key} 值 {row.get(key)!r} 与前缀规则结果 {expected!r} 不符",
                        f"{key} {row.get(key)!r} differs from {expected!r} given by the "
                        f"prefix rule")


def _validate_crosswalk(data: dict[str, Any], path: str | None) -> None:
    src_id, tgt_id = data.get("source_scheme"), data.get("target_scheme")
    for k, v in (("source_scheme", src_id), ("target_scheme", tgt_id)):
        if not isinstance(v, str) or not v:
            raise _fail(path, None, "header", f"对照表缺少 {k}", f"crosswalk lacks {k!r}")
    src = load_scheme(src_id)
    tgt = load_scheme(tgt_id)
    rows = data.get("rows")
    if not isinstance(rows, list) or not rows:
        raise _fail(path, None, "rows", "对照表没有 rows 行", "crosswalk has no 'rows'")
    seen: set[str] = set()
    for i, row in enumerate(rows):
        label = _row_label(i, row, "source")
        if not isinstance(row, dict):
            raise _fail(path, label, "row", "行必须是对象", "row must be a JSON object")
        s = row.get("source")
        if not isinstance(s, str) or s not in src.entries:
            raise _fail(path, label, "xwalk_source", f"来源编码 {s!r} 不在 {src_id} 中",
                        f"source code {s!r} is not in {src_id}")
        if s in seen:
            raise _fail(path, label, "duplicate_code", f"来源编码 {s} 重复",
                        f"source code {s} appears twice")
        seen.add(s)
        status = row.get("status")
        if status not in (STATUS_OK, STATUS_PENDING):
            raise _fail(path, label, "bad_status", f"状态 {status!r} 无效（应为 ok 或 待定）",
                        f"status {status!r} is not 'ok' or '待定'")
        target, cands = row.get("target"), row.get("candidates")
        if status == STATUS_OK:
            if not isinstance(target, str) or target not in tgt.entries:
                raise _fail(path, label, "xwalk_target", f"目标编码 {target!r} 不在 {tgt_id} 中",
                            f"target {target!r} is not in {tgt_id}")
            if cands:
                raise _fail(path, label, "xwalk_target", "ok 行不能有候选编码",
                            "an 'ok' row may not list candidates")
        else:
            if target is not None:
                raise _fail(path, label, "xwalk_target", "待定行不能有唯一目标",
                            "a '待定' row may not have a target")
            if (not isinstance(cands, list) or len(cands) < 2
                    or len(set(map(str, cands))) != len(cands)):
                raise _fail(path, label, "xwalk_target", "待定行需要至少两个不重复的候选编码",
                            "a '待定' row needs at least two distinct candidates")
            for c in cands:
                if not isinstance(c, str) or c not in tgt.entries:
                    raise _fail(path, label, "xwalk_target", f"候选编码 {c!r} 不在 {tgt_id} 中",
                                f"candidate {c!r} is not in {tgt_id}")


# --------------------------------------------------------------------------- Scheme

def _is_missing(value: Any) -> bool:
    # NaN floats are caught where numbers are handled; here: None, pandas NA and NaT
    return value is None or type(value).__name__ in ("NAType", "NaTType")


class Scheme:
    """A loaded, validated classification scheme."""

    def __init__(self, data: dict[str, Any], path: str | None = None) -> None:
        self.id: str = data["id"]
        self.version: str = data["version"]
        self.title: str = data["title"]
        self.source: str = data["source"]
        self.confidence: Any = data["confidence"]
        self.path = path
        self.notes: list[str] = list(data.get("notes", []))
        self._style: str = data["code_style"]
        rule = data["colour_rule"]
        self.fallback_colour: tuple[int, int, int] = tuple(rule["fallback"])  # type: ignore[assignment]
        self.colour_rule: dict[str, Any] = rule
        self.entries: dict[str, ClassEntry] = {}
        for row in data["entries"]:
            colour = row.get("colour") or rule["fallback"]
            self.entries[row["code"]] = ClassEntry(
                code=row["code"], name=row["name"], level=row["level"], parent=row["parent"],
                colour=tuple(colour),  # type: ignore[arg-type]
                sansheng=row.get("sansheng"), category=row.get("category"),
                is_construction=bool(row.get("is_construction", False)),
                aliases=tuple(row.get("aliases", ())), part=row.get("part"),
                note=row.get("note"))
        names: dict[str, str | None] = {}
        for e in self.entries.values():
            for nm in (e.name, *e.aliases):
                nm = unicodedata.normalize("NFKC", nm).strip()
                names[nm] = e.code if names.get(nm, e.code) == e.code else None
        self._names = names
        ss = data.get("sansheng")
        self.sansheng_rule: dict[str, Any] | None = ss

    @property
    def version_id(self) -> str:
        """``"<id>/<version>"``, printed on outputs."""
        return f"{self.id}/{self.version}"

    def __repr__(self) -> str:
        return f"Scheme({self.version_id!r}, {len(self.entries)} classes)"

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.entries.values())

    def __contains__(self, code: Any) -> bool:
        return self.is_valid(code)

    def normalise(self, value: Any) -> str | None:
        """Turn a raw attribute value into a code string of this scheme (see module doc).

        Returns None for missing values. The result is not necessarily a valid code.
        """
        if _is_missing(value) or isinstance(value, bool):
            return None
        numeric = False
        if isinstance(value, numbers.Integral):
            s, numeric = str(int(value)), True
        elif isinstance(value, numbers.Real):
            f = float(value)
            if not math.isfinite(f):
                return None
            if not f.is_integer():
                return str(value)
            s, numeric = str(int(f)), True
        else:
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            s = unicodedata.normalize("NFKC", str(value)).strip().upper()
            if not s:
                return None
            m = _FLOAT_TEXT.fullmatch(s)
            if m:
                s = m.group(1)
        if self._style == "digits_even":
            if _DIGITS.fullmatch(s) and len(s) % 2:
                s = "0" + s
        elif self._style == "digits_2007" and _DIGITS.fullmatch(s):
            if numeric and len(s) <= 3:
                three = s.zfill(3)
                s = three if three in self.entries else s.zfill(2)
            elif len(s) == 1:
                s = "0" + s
        return s

    def get(self, code: Any) -> ClassEntry | None:
        c = self.normalise(code)
        return self.entries.get(c) if c is not None else None

    def is_valid(self, code: Any) -> bool:
        """True when the (normalised) code is a class of this table."""
        return self.get(code) is not None

    def name(self, code: Any) -> str | None:
        e = self.get(code)
        return e.name if e else None

    def level1(self, code: Any) -> str | None:
        """The level-1 code above ``code`` (itself for a level-1 code); None if unknown."""
        e = self.get(code)
        while e is not None and e.parent is not None:
            e = self.entries[e.parent]
        return e.code if e else None

    def colour(self, code: Any) -> tuple[int, int, int]:
        """RGB by the table's colour rule (for ydyh2023: exact level-2 name, then level-1
        name, then grey); an unknown code gets the fallback grey."""
        e = self.get(code)
        return e.colour if e else self.fallback_colour

    def code_for_name(self, name: str) -> str | None:
        """Code for a class name or listed alias; None if unknown or ambiguous."""
        if not isinstance(name, str):
            return None
        return self._names.get(unicodedata.normalize("NFKC", name).strip())

    def codes(self, level: int | None = None) -> list[str]:
        return [c for c, e in self.entries.items() if level is None or e.level == level]

    def children(self, code: Any) -> list[str]:
        c = self.normalise(code)
        return [k for k, e in self.entries.items() if e.parent == c]


# --------------------------------------------------------------------------- Crosswalk

class Crosswalk:
    """Maps codes of ``source_id`` onto ``target_id`` (see :class:`Mapping`)."""

    def __init__(self, source: Scheme, target: Scheme, data: dict[str, Any] | None,
                 path: str | None = None) -> None:
        self.source_scheme = source
        self.target_scheme = target
        self.source_id = source.id
        self.target_id = target.id
        self.path = path
        self.identity = data is None
        if data is None:
            self.id = f"identity_{target.id}"
            self.version = target.version
            self.title = f"{target.title}（原样校验）"
            self.rows: dict[str, Mapping] = {}
        else:
            self.id = data["id"]
            self.version = data["version"]
            self.title = data["title"]
            self.rows = {}
            for row in data["rows"]:
                cands = list(row.get("candidates") or [])
                self.rows[row["source"]] = Mapping(
                    status=row["status"], target=row.get("target"), candidates=cands,
                    row=row["source"], common_parent=self._common_parent(cands),
                    note=row.get("note"))

    @property
    def version_id(self) -> str:
        return f"{self.id}/{self.version}"

    def __repr__(self) -> str:
        return f"Crosswalk({self.source_id!r} -> {self.target_id!r}, {self.version_id!r})"

    def _common_parent(self, cands: list[str]) -> str | None:
        if not cands:
            return None
        chains = []
        for c in cands:
            chain, e = [], self.target_scheme.entries.get(c)
            while e is not None:
                chain.append(e.code)
                e = self.target_scheme.entries.get(e.parent) if e.parent else None
            chains.append(chain)
        common = set(chains[0]).intersection(*map(set, chains[1:]))
        for c in chains[0]:  # deepest first
            if c in common:
                return c
        return None

    def map(self, code: Any) -> Mapping:
        src = self.source_scheme.normalise(code)
        if src is None or src not in self.source_scheme.entries:
            return Mapping(STATUS_UNKNOWN, source=src)
        if self.identity:
            return Mapping(STATUS_OK, target=src, source=src, row=src)
        c: str | None = src
        while c is not None:
            m = self.rows.get(c)
            if m is not None:
                return Mapping(m.status, m.target, list(m.candidates), src, m.row,
                               m.common_parent, m.note)
            c = self.source_scheme.entries[c].parent
        return Mapping(STATUS_UNKNOWN, source=src)


# --------------------------------------------------------------------------- loading

def _norm_id(scheme_id: str) -> str:
    return str(scheme_id).strip().lower()


def _packaged_names() -> list[str]:
    return sorted(r.name[:-5] for r in _standards_dir().iterdir()
                  if r.name.endswith(".json"))


@cache
def _load_scheme(scheme_id: str) -> Scheme:
    if scheme_id.startswith("xwalk_") or not re.fullmatch(r"[a-z0-9_]+", scheme_id):
        raise StandardsError("standards.unknown_scheme", f"未知的分类标准 {scheme_id!r}",
                             f"unknown classification scheme {scheme_id!r}")
    data, path = _read_packaged(scheme_id)
    validate_table(data, path)
    if data["kind"] != "scheme" or data["id"] != scheme_id:
        raise _fail(path, None, "header", f"文件 id {data['id']!r} 与文件名不符",
                    f"table id {data['id']!r} does not match its file name / kind")
    return Scheme(data, path)


def load_scheme(scheme_id: str) -> Scheme:
    """Load (once) and return a validated scheme: ``ydyh2023``, ``gbt21010_2017``,
    ``gbt21010_2007`` or ``gb50137_2011``."""
    return _load_scheme(_norm_id(scheme_id))


@cache
def _load_crosswalk(source_id: str, target_id: str) -> Crosswalk:
    source, target = _load_scheme(source_id), _load_scheme(target_id)
    if source_id == target_id:
        return Crosswalk(source, target, None)
    name = f"xwalk_{source_id}_to_{target_id}"
    if name not in _packaged_names():
        raise StandardsError("standards.unknown_crosswalk",
                             f"没有从 {source_id} 到 {target_id} 的对照表",
                             f"no crosswalk from {source_id} to {target_id}")
    data, path = _read_packaged(name)
    validate_table(data, path)
    if (data["kind"] != "crosswalk" or data["id"] != name
            or data["source_scheme"] != source_id or data["target_scheme"] != target_id):
        raise _fail(path, None, "header", "对照表表头与文件名不符",
                    "crosswalk header does not match its file name")
    return Crosswalk(source, target, data, path)


def load_crosswalk(source_id: str, target_id: str = TARGET_SCHEME) -> Crosswalk:
    """Load (once) the crosswalk ``source_id`` → ``target_id``; identity when they are equal."""
    return _load_crosswalk(_norm_id(source_id), _norm_id(target_id))


def clear_cache() -> None:
    """Forget loaded tables (they are re-read and re-validated on next use)."""
    _load_scheme.cache_clear()
    _load_crosswalk.cache_clear()
    _sansheng_prefixes.cache_clear()


def available_schemes() -> list[dict[str, str]]:
    """Packaged schemes: ``[{"id", "version", "title", "version_id"}, ...]``, ydyh2023 first."""
    out = []
    for name in _packaged_names():
        if name.startswith("xwalk_"):
            continue
        # resources/standards also holds other tables (conflict rules, 双评价 parameters…)
        if _read_packaged(name)[0].get("kind") != "scheme":
            continue
        s = _load_scheme(name)
        out.append({"id": s.id, "version": s.version, "title": s.title,
                    "version_id": s.version_id})
    out.sort(key=lambda d: (d["id"] != TARGET_SCHEME, d["id"]))
    return out


def available_crosswalks() -> list[dict[str, str]]:
    """Packaged crosswalks: ``[{"id", "source", "target", "version", "version_id"}, ...]``."""
    out = []
    for name in _packaged_names():
        m = re.fullmatch(r"xwalk_(.+)_to_(.+)", name)
        if m:
            x = _load_crosswalk(m.group(1), m.group(2))
            out.append({"id": x.id, "source": x.source_id, "target": x.target_id,
                        "version": x.version, "version_id": x.version_id})
    return out


# --------------------------------------------------------------------------- unify

def unify(codes: pd.Series, scheme_id: str, target_id: str = TARGET_SCHEME) -> pd.DataFrame:
    """Map a column of ``scheme_id`` codes onto ``target_id`` (default 用地用海 2023).

    Returns a DataFrame on the same index with ``mp_code`` (target code, None unless ok),
    ``mp_name``, ``mp_status`` ("ok" / "待定" / "unknown") and ``mp_candidates``
    (comma-joined candidate codes, "" when none). Work is done once per distinct value.
    """
    import numpy as np
    import pandas as pd

    xw = load_crosswalk(scheme_id, target_id)
    tgt = xw.target_scheme
    s = codes if isinstance(codes, pd.Series) else pd.Series(codes)
    idx, uniques = pd.factorize(s, use_na_sentinel=True)
    n = len(uniques)
    out_code = np.empty(n + 1, dtype=object)
    out_name = np.empty(n + 1, dtype=object)
    out_status = np.empty(n + 1, dtype=object)
    out_cands = np.empty(n + 1, dtype=object)
    for i, value in enumerate(list(uniques)):
        m = xw.map(value)
        out_code[i] = m.target
        out_name[i] = tgt.entries[m.target].name if m.target else None
        out_status[i] = m.status
        out_cands[i] = ",".join(m.candidates)
    out_code[n], out_name[n], out_status[n], out_cands[n] = None, None, STATUS_UNKNOWN, ""
    take = np.where(idx < 0, n, idx)
    # build each column on the few distinct values, then expand with a positional take
    cols = {}
    for key, arr in (("mp_code", out_code), ("mp_name", out_name),
                     ("mp_status", out_status), ("mp_candidates", out_cands)):
        cols[key] = pd.Series(arr).take(take).set_axis(s.index)
    return pd.DataFrame(cols, index=s.index)


# --------------------------------------------------------------------------- 三生 / 三大类

def sansheng_classes() -> list[str]:
    """The 三生 classes of the default table (生产, 生活, 生态, 混合)."""
    rule = load_scheme(TARGET_SCHEME).sansheng_rule or {}
    return list(rule.get("classes", []))


def _canon_overrides(overrides: dict[Any, str] | None) -> tuple[tuple[str, str], ...]:
    if not overrides:
        return ()
    classes = sansheng_classes()
    scheme = load_scheme(TARGET_SCHEME)
    out = {}
    for k, v in overrides.items():
        p = scheme.normalise(k)
        if p is None or not _DIGITS.fullmatch(p) or len(p) > 6:
            raise StandardsError("standards.sansheng_override", f"三生覆盖的编码前缀 {k!r} 无效",
                                 f"三生 override prefix {k!r} is not a code prefix", feature=k)
        if v not in classes:
            raise StandardsError("standards.sansheng_override",
                                 f"三生类别 {v!r} 无效，应为 {'、'.join(classes)}",
                                 f"三生 class {v!r} is not one of {classes}", feature=k)
        out[p] = v
    return tuple(sorted(out.items()))


@lru_cache(maxsize=64)
def _sansheng_prefixes(overrides: tuple[tuple[str, str], ...]) -> dict[str, str]:
    rule = load_scheme(TARGET_SCHEME).sansheng_rule or {}
    merged = dict(rule.get("prefixes", {}))
    merged.update(dict(overrides))
    return merged


def sansheng(code: Any, overrides: dict[str, str] | None = None) -> str:
    """三生 class (生产/生活/生态/混合) of a 2023 code.

    ``overrides`` (a project setting) maps code prefixes to classes and is merged over the
    default table; the longest matching prefix wins (an override replaces the default at
    the same prefix; a longer default prefix such as 1402 still beats an override of 14).
    Returns "" when no prefix matches (no code, or not a 2023 code).
    """
    c = load_scheme(TARGET_SCHEME).normalise(code)
    if c is None:
        return ""
    table = _sansheng_prefixes(_canon_overrides(overrides))
    best = _longest_prefix(table, c)
    return table[best] if best is not None else ""


def sansheng_table_version(overrides: dict[str, str] | None = None) -> str:
    """Version id of the 三生 table in use, e.g. ``"sansheng-default/1.0"``; with project
    overrides ``"sansheng-default/1.0+override-<8 hex>"`` (a hash of the overrides)."""
    rule = load_scheme(TARGET_SCHEME).sansheng_rule or {}
    base = str(rule.get("version", "sansheng-default/unknown"))
    canon = _canon_overrides(overrides)
    if not canon:
        return base
    digest = hashlib.sha1(json.dumps(canon, ensure_ascii=False).encode("utf-8")).hexdigest()
    return f"{base}+override-{digest[:8]}"


def is_construction(code: Any) -> bool:
    """True when a 2023 code's 三大类 is 建设用地 (07–16 and 060101 村道用地, per domain.md §1.1);
    False for other and unknown codes."""
    e = load_scheme(TARGET_SCHEME).get(code)
    return bool(e and e.is_construction)
