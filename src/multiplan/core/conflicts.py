"""Conflict detection (差异图斑): rules as data, the conflict register, pivots, exports,
incremental re-check and the merged 一张图.

Rules
    ``resources/standards/conflict_rules.json`` (versioned, checked by
    :func:`validate_rules` on load; no eval). Class groups are defined by 2023 code prefixes,
    the construction flag of 三大类, or ``any``; a rule maps (role/level, group) of parent A ×
    (role/level, group) of parent B → conflict type, severity, bilingual message, basis and
    resolution (``precedence`` or ``待定``). Matching order, as stated in the table's notes:

    1. a rule matches when its side ``a`` matches one parent and side ``b`` the other, in
       either orientation (rules are symmetric; the register keeps the user's A/B order);
    2. the most specific matching rule wins — per side 2 points if roles are listed, 1 if
       levels are listed, plus the group's weight (any 0, construction flag 1, code prefixes
       2, ``any_of`` its weakest member), plus 1 for a ``level_relation``;
    3. ties go to the rule listed first; no match gives type ``X0`` (severity 提示).

Register
    ``mp_conflicts`` is a GeoPackage feature table (MultiPolygon, project CRS; QGIS shows it)
    with one row per overlay piece; ``mp_conflict_runs`` (one row per layer pair: rule
    version, thresholds, counts, layer fingerprints) and ``mp_conflict_rules`` (messages and
    basis of the rule-table version in use) are GeoPackage attribute tables. A piece's id
    ``CF-<8 hex of the sorted layer names>-<fid>-<fid>`` is derived from the parents' layer
    names and fids only, so a rerun on unchanged data gives the same ids. Township: the
    乡镇界 feature containing the piece's representative point (``point_on_surface``, always
    inside the piece). Slivers: a piece is a sliver when every polygon part has area ≤
    ``sliver_max_area_m2`` or mean width 2A/P ≤ ``sliver_max_mean_width_m`` (project
    settings), or when its rule type is a boundary mismatch (``B1``: a reference boundary such
    as the county line against a lake). Slivers stay in the register, flagged, and out of the
    headline statistics and pivots.

    Entries of other origins share the register with their own conflict types and an id
    prefix of their own: :func:`replace_external_entries` replaces one source's rows (the
    双评价 plan check writes ``AS-…`` rows, types A1–A4, ``layer_b`` = the result raster),
    inside the caller's transaction. Pair detection and re-checks delete by layer pair and
    so never touch them; :func:`read_register` reads one source with ``source=``.

Incremental re-check
    :func:`recheck` recomputes only the pieces of edited features: the edited geometries are
    read by fid, their candidates in the other layer come from the GeoPackage R-tree, the
    overlay kernel runs on just those pairs, and the register rows of the edited fids are
    replaced in one transaction. The result equals a full rerun (same ids, types, areas).

Merged 一张图
    :func:`build_merged_map` unions the class-bearing plan layers, the control lines and 现状
    into one layer (``mp_merged``) where each piece takes its class from the highest-precedence
    parent whose class every pairwise rule decision upholds, flagged 待定 where a matching
    rule says a human must decide (or where no class survives).

Pure Python over shapely/numpy/pandas; no Qt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import sqlite3
import struct
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .errors import MultiplanError, ProjectError, StandardsError
from .layers import CONTROL_LINE_ROLES, LEVELS, ROLES, LayerRecord
from .project import (
    Project,
    _now,
    drop_gpkg_table,
    register_attributes_table,
    rename_gpkg_table,
    table_exists,
)
from .tasks import Task, ensure_task

__all__ = [
    "MU_M2",
    "REGISTER_TABLE",
    "RUNS_TABLE",
    "ConflictRun",
    "MergedMap",
    "RuleTable",
    "build_merged_map",
    "detect_all",
    "detect_conflicts",
    "ensure_register",
    "export_register",
    "load_rules",
    "meaningful_pairs",
    "pivot_tables",
    "read_register",
    "read_runs",
    "recheck",
    "register_summary",
    "replace_external_entries",
    "validate_rules",
    "validate_rules_file",
]

REGISTER_TABLE = "mp_conflicts"
RUNS_TABLE = "mp_conflict_runs"
RULES_TABLE = "mp_conflict_rules"
MERGED_TABLE = "mp_merged"

#: 1 亩 = 10000/15 m².
MU_M2 = 10_000.0 / 15.0

RESOLUTIONS = ("precedence", "待定")
LEVEL_RELATIONS = ("a_above_b", "same")
_TYPE_CODE = re.compile(r"[A-Z][A-Z0-9]{0,5}")
_PREFIX = re.compile(r"(?:[0-9]{2}){1,3}")


class ConflictError(MultiplanError):
    """Conflict detection cannot run on the given layers (wrong kind, same layer …)."""

    exit_code = 4


# =========================================================================== rule table

@dataclass(frozen=True)
class Group:
    name: str
    en: str
    any: bool = False
    construction: bool | None = None
    prefixes: tuple[str, ...] = ()
    exclude_prefixes: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    weight: int = 0


@dataclass(frozen=True)
class Side:
    roles: frozenset[str] | None  # None: any role
    levels: frozenset[str] | None  # None: any level
    group: str
    specificity: int


@dataclass(frozen=True)
class Rule:
    id: str
    type: str
    severity: str
    a: Side
    b: Side
    resolution: str
    winner: str | None
    level_relation: str | None
    message_zh: str
    message_en: str
    basis: str
    specificity: int
    order: int


@dataclass(frozen=True)
class ClassInfo:
    """What the rules see of one feature: its 2023 code(s) and labels."""

    codes: tuple[str, ...]  # (code,) when definite; candidates when 待定; () when none
    definite: str | None  # the 2023 code when status ok
    status: str  # "ok" | "待定" | "unknown" | "none" (layer has no codes)
    name: str  # class name (2023 name, source name, or the layer's role label)
    src_code: str | None  # the code as the source layer wrote it
    class_l1: str  # level-1 class name, or the role label for a layer without codes


@dataclass(frozen=True)
class Parent:
    layer: str
    role: str
    level: str
    cls: ClassInfo


@dataclass(frozen=True)
class Decision:
    """The outcome of the rules for one (parent A, parent B) class combination."""

    rule_id: str
    type: str
    type_name: str
    severity: str
    resolution: str
    boundary_mismatch: bool
    winner: str | None  # "a" | "b"
    proposed_code: str | None
    proposed_name: str | None
    pending: bool
    pending_reason: str | None


class RuleTable:
    """A loaded, validated conflict rule table (see the module docstring)."""

    def __init__(self, data: dict[str, Any], path: str | None = None) -> None:
        self.path = path
        self.id: str = data["id"]
        self.version: str = data["version"]
        self.title: str = data["title"]
        self.source: str = data["source"]
        self.scheme: str = data["scheme"]
        self.notes: list[str] = list(data.get("notes", []))
        self.severities: dict[str, dict[str, Any]] = data["severities"]
        self.types: dict[str, dict[str, Any]] = data["types"]
        self.role_sets: dict[str, list[str]] = data["role_sets"]
        prec = data["precedence"]
        self.control_rank: dict[str, int] = dict(prec["control_lines"])
        self.level_rank: dict[str, int] = dict(prec["levels"])
        self.role_rank: dict[str, int] = dict(prec["roles"])
        self.implied_class: dict[str, str] = dict(prec.get("implied_class", {}))
        self.precedence_basis: str = prec.get("basis", "")
        self.groups: dict[str, Group] = {}
        raw_groups = data["groups"]
        for name in raw_groups:
            self.groups[name] = self._group(name, raw_groups)
        self.rules: list[Rule] = []
        for order, r in enumerate(data["rules"]):
            a, b = self._side(r["a"]), self._side(r["b"])
            spec = a.specificity + b.specificity + (1 if r.get("level_relation") else 0)
            self.rules.append(Rule(
                id=r["id"], type=r["type"], severity=r["severity"], a=a, b=b,
                resolution=r["resolution"], winner=r.get("winner"),
                level_relation=r.get("level_relation"), message_zh=r["message"]["zh"],
                message_en=r["message"]["en"], basis=r.get("basis", ""), specificity=spec,
                order=order))
        self._by_priority = sorted(self.rules, key=lambda r: (-r.specificity, r.order))
        self.pairs: list[dict[str, Any]] = list(data.get("pairs", []))
        self._decisions: dict[tuple, Decision] = {}

    # ------------------------------------------------------------------ basics
    @property
    def version_id(self) -> str:
        """``"<id>/<version>"``, printed on every output."""
        return f"{self.id}/{self.version}"

    def __repr__(self) -> str:
        return f"RuleTable({self.version_id!r}, {len(self.rules)} rules)"

    def expand_roles(self, refs: Iterable[str]) -> frozenset[str] | None:
        out: set[str] = set()
        for ref in refs:
            if ref == "*":
                return None
            if ref.startswith("@"):
                out.update(self.role_sets[ref[1:]])
            else:
                out.add(ref)
        return frozenset(out)

    def _group(self, name: str, raw: dict[str, Any], seen: tuple[str, ...] = ()) -> Group:
        g = raw[name]
        any_of = tuple(g.get("any_of", ()))
        if any_of:
            weight = min(self._group(m, raw, (*seen, name)).weight for m in any_of)
        elif g.get("any"):
            weight = 0
        elif g.get("prefixes") or g.get("exclude_prefixes"):
            weight = 2
        else:
            weight = 1
        return Group(name=name, en=g.get("en", ""), any=bool(g.get("any", False)),
                     construction=g.get("construction"), prefixes=tuple(g.get("prefixes", ())),
                     exclude_prefixes=tuple(g.get("exclude_prefixes", ())), any_of=any_of,
                     weight=weight)

    def _side(self, s: dict[str, Any]) -> Side:
        roles = self.expand_roles(s.get("roles", ["*"]))
        levels = frozenset(s["levels"]) if s.get("levels") else None
        group = s.get("group", "任意")
        spec = (2 if roles is not None else 0) + (1 if levels is not None else 0)
        spec += self.groups[group].weight
        return Side(roles, levels, group, spec)

    # ------------------------------------------------------------------ groups
    def _code_in(self, group: Group, code: str) -> bool:
        from .classification import is_construction

        if group.any:
            return True
        if group.any_of:
            return any(self._code_in(self.groups[m], code) for m in group.any_of)
        if group.construction is not None and is_construction(code) != group.construction:
            return False
        if group.prefixes and not code.startswith(group.prefixes):
            return False
        return not (group.exclude_prefixes and code.startswith(group.exclude_prefixes))

    def in_group(self, group: str, cls: ClassInfo) -> bool:
        """A feature is in a group when its definite code is, or (待定) every candidate is;
        a feature without codes is only in ``any`` groups."""
        g = self.groups[group]
        if g.any:
            return True
        if not cls.codes:
            return False
        return all(self._code_in(g, c) for c in cls.codes)

    # ------------------------------------------------------------------ matching
    def _side_matches(self, side: Side, p: Parent) -> bool:
        return ((side.roles is None or p.role in side.roles)
                and (side.levels is None or p.level in side.levels)
                and self.in_group(side.group, p.cls))

    def _relation_ok(self, rule: Rule, pa: Parent, pb: Parent) -> bool:
        if rule.level_relation is None:
            return True
        la, lb = self.level_rank.get(pa.level, 0), self.level_rank.get(pb.level, 0)
        return la > lb if rule.level_relation == "a_above_b" else la == lb

    def match(self, x: Parent, y: Parent) -> tuple[Rule | None, bool]:
        """The winning rule for parents (x, y) and whether it matched swapped (rule side a
        = y). ``(None, False)`` when no rule matches."""
        for rule in self._by_priority:
            if (self._side_matches(rule.a, x) and self._side_matches(rule.b, y)
                    and self._relation_ok(rule, x, y)):
                return rule, False
            if (self._side_matches(rule.a, y) and self._side_matches(rule.b, x)
                    and self._relation_ok(rule, y, x)):
                return rule, True
        return None, False

    # ------------------------------------------------------------------ precedence
    def rank(self, role: str, level: str) -> tuple[int, int, int]:
        """Precedence key (higher wins): control line rank, level rank, role rank."""
        return (self.control_rank.get(role, 0), self.level_rank.get(level, 0),
                self.role_rank.get(role, 0))

    def class_of(self, p: Parent) -> str | None:
        """The land class a parent stands for: its definite code, else a control line's
        implied class (永久基本农田 → 01), else None."""
        if p.cls.definite:
            return p.cls.definite
        if not p.cls.codes:
            return self.implied_class.get(p.role)
        return None

    def decide(self, x: Parent, y: Parent) -> Decision:
        """Rule, type, severity and the resolved class for one pair of parents (cached)."""
        key = (x.role, x.level, x.cls, y.role, y.level, y.cls)
        d = self._decisions.get(key)
        if d is None:
            d = self._decide(x, y)
            self._decisions[key] = d
        return d

    def _decide(self, x: Parent, y: Parent) -> Decision:
        from .classification import load_scheme

        rule, swapped = self.match(x, y)
        if rule is None:
            type_code, severity, resolution, rule_id, fixed = "X0", "提示", "precedence", "", None
        else:
            type_code, severity, resolution, rule_id = (rule.type, rule.severity,
                                                        rule.resolution, rule.id)
            fixed = rule.winner
            if fixed is not None and swapped:
                fixed = "b" if fixed == "a" else "a"
        tinfo = self.types.get(type_code, {"zh": type_code, "en": type_code})
        if fixed is not None:
            winner = fixed
        else:
            winner = "a" if self.rank(x.role, x.level) >= self.rank(y.role, y.level) else "b"
        w, loser = (x, y) if winner == "a" else (y, x)
        proposed = self.class_of(w)
        reason = None
        headline = bool(self.severities[severity]["headline"])
        if proposed is None and w.cls.status == "待定":
            # the winner's own code awaits a crosswalk decision; that is a classification
            # matter, a register decision only where the pair is a conflict
            if headline:
                reason = "winner_code_pending"
        elif proposed is None and not w.cls.codes:
            # a control line without an implied class: the other side's class stands when
            # the rule finds no conflict; otherwise nobody knows yet what the land becomes
            if not headline:
                proposed = self.class_of(loser)
            elif self.class_of(loser) is not None:
                reason = "winner_has_no_class"
        pending = resolution == "待定" or reason is not None
        if resolution == "待定":
            reason = "rule"
        scheme = load_scheme(self.scheme)
        return Decision(
            rule_id=rule_id, type=type_code, type_name=tinfo["zh"], severity=severity,
            resolution=resolution, boundary_mismatch=bool(tinfo.get("boundary_mismatch")),
            winner=winner, proposed_code=proposed,
            proposed_name=scheme.name(proposed) if proposed else None, pending=pending,
            pending_reason=reason)

    def message(self, rule_id: str) -> tuple[str, str]:
        for r in self.rules:
            if r.id == rule_id:
                return r.message_zh, r.message_en
        return "未匹配任何规则", "no rule matched"

    def headline(self, severity: str) -> bool:
        return bool(self.severities.get(severity, {}).get("headline"))


# --------------------------------------------------------------------------- validation

def _fail(path: str | None, row: str | None, code: str, zh: str, en: str) -> StandardsError:
    return StandardsError(f"standards.rules.{code}", zh, en, path=path, feature=row)


def _no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicate key {k!r}")
        d[k] = v
    return d


def _parse_rules(text: str, path: str | None) -> dict[str, Any]:
    try:
        data = json.loads(text, object_pairs_hook=_no_dupes)
    except ValueError as exc:
        raise _fail(path, None, "json", f"规则表不是有效的 JSON：{exc}",
                    f"the rule table is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _fail(path, None, "json", "规则表顶层必须是对象",
                    "the rule table must be a JSON object")
    return data


_TOP_KEYS = {"id", "version", "kind", "title", "source", "confidence", "scheme", "notes",
             "severities", "types", "role_sets", "groups", "precedence", "pairs", "rules"}
_GROUP_KEYS = {"en", "any", "construction", "prefixes", "exclude_prefixes", "any_of", "note"}
_RULE_KEYS = {"id", "type", "severity", "a", "b", "resolution", "winner", "level_relation",
              "message", "basis", "note"}
_SIDE_KEYS = {"roles", "levels", "group"}


def _is_str(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def validate_rules(data: dict[str, Any], path: str | None = None) -> None:
    """Check a conflict rule table; raise :class:`StandardsError` naming the file and row.

    Checks: header keys (``kind`` must be ``conflict_rules``); no unknown keys anywhere (a
    typo is an error, not a silently ignored rule); severities with ``en``/``rank``/
    ``headline``; type codes like ``C5`` with zh/en names; role sets, precedence tables and
    pair families naming known roles and levels; groups with at least one criterion,
    2/4/6-digit code prefixes, ``any_of`` members that exist (no cycles); implied classes
    that are codes of the scheme; rules with unique ids, known type/severity/group/roles/
    levels, resolution ``precedence`` or ``待定``, winner ``a``/``b``, bilingual messages; and
    no two rules with the same sides (they could never both apply).
    """
    if not isinstance(data, dict):
        raise _fail(path, None, "header", "规则表顶层必须是对象", "the rule table must be an object")
    for key in ("id", "version", "kind", "title", "source", "scheme"):
        if not _is_str(data.get(key)):
            raise _fail(path, None, "header", f"规则表缺少表头字段 {key}",
                        f"the rule table header lacks {key!r}")
    if data["kind"] != "conflict_rules":
        raise _fail(path, None, "header", f"表类型应为 conflict_rules，而不是 {data['kind']!r}",
                    f"table kind must be 'conflict_rules', not {data['kind']!r}")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise _fail(path, None, "header", f"规则表有未知字段：{sorted(unknown)}",
                    f"unknown top-level keys: {sorted(unknown)}")
    for key in ("severities", "types", "role_sets", "groups", "precedence"):
        if not isinstance(data.get(key), dict) or not data[key]:
            raise _fail(path, None, "header", f"规则表缺少 {key}", f"the rule table lacks {key!r}")
    if not isinstance(data.get("rules"), list) or not data["rules"]:
        raise _fail(path, None, "header", "规则表没有规则", "the rule table has no rules")
    from .classification import load_scheme
    try:
        scheme = load_scheme(data["scheme"])
    except StandardsError:
        raise _fail(path, None, "scheme", f"未知的分类标准 {data['scheme']!r}",
                    f"unknown classification scheme {data['scheme']!r}") from None

    for sev, info in data["severities"].items():
        if not (isinstance(info, dict) and _is_str(info.get("en"))
                and isinstance(info.get("rank"), int) and isinstance(info.get("headline"), bool)):
            raise _fail(path, f"severity {sev}", "severity",
                        f"严重程度 {sev} 需要 en、rank（整数）和 headline（布尔）",
                        f"severity {sev!r} needs en, rank (int) and headline (bool)")
    for code, info in data["types"].items():
        if not _TYPE_CODE.fullmatch(code):
            raise _fail(path, f"type {code}", "type", f"冲突类型代码 {code!r} 无效（如 C5）",
                        f"conflict type code {code!r} is invalid (like C5)")
        if not (isinstance(info, dict) and _is_str(info.get("zh")) and _is_str(info.get("en"))):
            raise _fail(path, f"type {code}", "type", f"冲突类型 {code} 需要中英文名称",
                        f"conflict type {code} needs zh and en names")
        if "boundary_mismatch" in info and not isinstance(info["boundary_mismatch"], bool):
            raise _fail(path, f"type {code}", "type", "boundary_mismatch 必须是布尔值",
                        "boundary_mismatch must be a boolean")
    if "X0" not in data["types"]:
        raise _fail(path, None, "type", "规则表须定义 X0（未匹配规则）",
                    "the table must define type X0 (no rule matched)")

    def check_role(ref: Any, where: str, allow_any: bool = True) -> None:
        if not isinstance(ref, str):
            raise _fail(path, where, "role", f"图层用途引用 {ref!r} 必须是字符串",
                        f"role reference {ref!r} must be a string")
        if ref == "*" and allow_any:
            return
        if ref.startswith("@"):
            if ref[1:] not in data["role_sets"]:
                raise _fail(path, where, "role", f"未知的用途集合 {ref}",
                            f"unknown role set {ref}")
        elif ref not in ROLES:
            raise _fail(path, where, "role", f"未知的图层用途 {ref!r}", f"unknown role {ref!r}")

    for name, roles in data["role_sets"].items():
        if not isinstance(roles, list) or not roles:
            raise _fail(path, f"role_set {name}", "role", "用途集合必须是非空列表",
                        "a role set must be a non-empty list")
        for r in roles:
            if r not in ROLES:
                raise _fail(path, f"role_set {name}", "role", f"未知的图层用途 {r!r}",
                            f"unknown role {r!r}")

    groups = data["groups"]
    for name, g in groups.items():
        where = f"group {name}"
        if not isinstance(g, dict):
            raise _fail(path, where, "group", "类组必须是对象", "a group must be an object")
        extra = set(g) - _GROUP_KEYS
        if extra:
            raise _fail(path, where, "group", f"类组有未知字段 {sorted(extra)}",
                        f"unknown group keys {sorted(extra)}")
        criteria = [k for k in ("any", "construction", "prefixes", "exclude_prefixes", "any_of")
                    if k in g]
        if not criteria:
            raise _fail(path, where, "group", "类组没有任何判定条件",
                        "a group needs a criterion (any, construction, prefixes, any_of)")
        if "any" in g and g["any"] is not True:
            raise _fail(path, where, "group", "any 只能为 true", "'any' can only be true")
        if "any" in g and len(criteria) > 1 or "any_of" in g and len(criteria) > 1:
            raise _fail(path, where, "group", "any 与 any_of 不能与其他条件组合",
                        "'any' and 'any_of' cannot be combined with other criteria")
        if "construction" in g and not isinstance(g["construction"], bool):
            raise _fail(path, where, "group", "construction 必须是布尔值",
                        "'construction' must be a boolean")
        for key in ("prefixes", "exclude_prefixes"):
            if key in g:
                vals = g[key]
                if not isinstance(vals, list) or not vals or not all(
                        isinstance(p, str) and _PREFIX.fullmatch(p) for p in vals):
                    raise _fail(path, where, "group", f"{key} 必须是 2/4/6 位代码前缀列表",
                                f"{key} must be a list of 2/4/6-digit code prefixes")
                for p in vals:
                    if p not in scheme.entries:
                        raise _fail(path, where, "group", f"代码前缀 {p} 不是 {scheme.id} 的类",
                                    f"code prefix {p} is not a class of {scheme.id}")
        if "any_of" in g:
            if not isinstance(g["any_of"], list) or not g["any_of"]:
                raise _fail(path, where, "group", "any_of 必须是非空列表",
                            "'any_of' must be a non-empty list")
            for m in g["any_of"]:
                if m not in groups:
                    raise _fail(path, where, "group", f"any_of 引用了不存在的类组 {m!r}",
                                f"'any_of' names an unknown group {m!r}")
    # any_of cycles
    def walk(name: str, stack: tuple[str, ...]) -> None:
        if name in stack:
            raise _fail(path, f"group {name}", "group", "类组 any_of 存在循环引用",
                        "groups refer to each other in a cycle via any_of")
        for m in groups[name].get("any_of", ()):
            walk(m, (*stack, name))
    for name in groups:
        walk(name, ())

    prec = data["precedence"]
    extra = set(prec) - {"control_lines", "levels", "roles", "implied_class", "basis"}
    if extra:
        raise _fail(path, "precedence", "precedence", f"precedence 有未知字段 {sorted(extra)}",
                    f"unknown precedence keys {sorted(extra)}")
    for key, known in (("control_lines", CONTROL_LINE_ROLES), ("levels", tuple(LEVELS)),
                       ("roles", tuple(ROLES))):
        table = prec.get(key)
        if not isinstance(table, dict) or not table:
            raise _fail(path, "precedence", "precedence", f"precedence 缺少 {key}",
                        f"precedence lacks {key!r}")
        for k, v in table.items():
            if k not in known:
                raise _fail(path, f"precedence.{key}", "precedence", f"未知的 {key} 项 {k!r}",
                            f"unknown {key} entry {k!r}")
            if not isinstance(v, int) or isinstance(v, bool):
                raise _fail(path, f"precedence.{key}", "precedence", f"{k} 的优先级必须是整数",
                            f"the rank of {k} must be an integer")
    for role, code in prec.get("implied_class", {}).items():
        if role not in ROLES or not isinstance(code, str) or code not in scheme.entries:
            raise _fail(path, "precedence.implied_class", "precedence",
                        f"隐含地类 {role} → {code!r} 无效", f"implied class {role} → {code!r} "
                        f"is invalid (unknown role or code)")

    for i, pair in enumerate(data.get("pairs", [])):
        where = f"pair {i + 1}"
        if not isinstance(pair, dict) or set(pair) - {"a", "b", "different_level", "note"}:
            raise _fail(path, where, "pair", "图层组合定义无效", "invalid pair family")
        for side in ("a", "b"):
            if not isinstance(pair.get(side), list) or not pair[side]:
                raise _fail(path, where, "pair", f"图层组合缺少 {side}", f"pair lacks {side!r}")
            for ref in pair[side]:
                check_role(ref, where, allow_any=False)

    ids: set[str] = set()
    shapes: dict[str, str] = {}
    for i, r in enumerate(data["rules"]):
        rid = r.get("id") if isinstance(r, dict) else None
        where = f"rule {i + 1} (id={rid!r})"
        if not isinstance(r, dict):
            raise _fail(path, where, "rule", "规则必须是对象", "a rule must be an object")
        extra = set(r) - _RULE_KEYS
        if extra:
            raise _fail(path, where, "rule", f"规则有未知字段 {sorted(extra)}",
                        f"unknown rule keys {sorted(extra)}")
        if not _is_str(rid) or rid in ids:
            raise _fail(path, where, "rule", "规则 id 缺失或重复", "rule id missing or duplicated")
        ids.add(rid)
        if r.get("type") not in data["types"]:
            raise _fail(path, where, "rule", f"未知的冲突类型 {r.get('type')!r}",
                        f"unknown conflict type {r.get('type')!r}")
        if r.get("severity") not in data["severities"]:
            raise _fail(path, where, "rule", f"未知的严重程度 {r.get('severity')!r}",
                        f"unknown severity {r.get('severity')!r}")
        if r.get("resolution") not in RESOLUTIONS:
            raise _fail(path, where, "rule", f"处理方式须为 {RESOLUTIONS}",
                        f"resolution must be one of {RESOLUTIONS}")
        if r.get("winner") not in (None, "a", "b"):
            raise _fail(path, where, "rule", "winner 须为 a 或 b", "winner must be 'a' or 'b'")
        if r.get("level_relation") not in (None, *LEVEL_RELATIONS):
            raise _fail(path, where, "rule", f"level_relation 须为 {LEVEL_RELATIONS}",
                        f"level_relation must be one of {LEVEL_RELATIONS}")
        msg = r.get("message")
        if not (isinstance(msg, dict) and _is_str(msg.get("zh")) and _is_str(msg.get("en"))):
            raise _fail(path, where, "rule", "规则需要中英文说明 message.zh / message.en",
                        "a rule needs message.zh and message.en")
        for side in ("a", "b"):
            s = r.get(side)
            if not isinstance(s, dict) or set(s) - _SIDE_KEYS:
                raise _fail(path, where, "rule", f"规则的 {side} 侧定义无效",
                            f"rule side {side!r} is invalid")
            roles = s.get("roles", ["*"])
            if not isinstance(roles, list) or not roles:
                raise _fail(path, where, "rule", "roles 必须是非空列表",
                            "roles must be a non-empty list")
            for ref in roles:
                check_role(ref, where)
            levels = s.get("levels")
            if levels is not None and (not isinstance(levels, list)
                                       or not all(lv in LEVELS for lv in levels)):
                raise _fail(path, where, "rule", f"未知的规划级别 {levels!r}",
                            f"unknown levels {levels!r}")
            if s.get("group", "任意") not in groups:
                raise _fail(path, where, "rule", f"未知的类组 {s.get('group')!r}",
                            f"unknown group {s.get('group')!r}")
        def canon(s: dict[str, Any]) -> str:
            return json.dumps([sorted(s.get("roles", ["*"])), sorted(s.get("levels") or []),
                               s.get("group", "任意")], ensure_ascii=False)
        sides = sorted([canon(r["a"]), canon(r["b"])])
        shape = json.dumps([sides, r.get("level_relation")], ensure_ascii=False)
        if r.get("level_relation") is None and shape in shapes:
            raise _fail(path, where, "rule", f"与规则 {shapes[shape]} 的条件完全相同",
                        f"same sides as rule {shapes[shape]}; one of them could never apply")
        shapes[shape] = rid


def _rules_resource() -> Any:
    return resources.files("multiplan").joinpath("resources", "standards",
                                                  "conflict_rules.json")


def validate_rules_file(path: str | Path) -> RuleTable:
    """Read, check and load a rule table from a file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(str(p), None, "missing", f"无法读取规则表：{exc}",
                    f"cannot read the rule table: {exc}") from None
    data = _parse_rules(text, str(p))
    validate_rules(data, str(p))
    return RuleTable(data, str(p))


@cache
def _packaged_rules() -> RuleTable:
    res = _rules_resource()
    data = _parse_rules(res.read_text(encoding="utf-8"), str(res))
    validate_rules(data, str(res))
    return RuleTable(data, str(res))


def load_rules(path: str | Path | None = None) -> RuleTable:
    """The packaged rule table (validated once and cached), or the one at ``path``."""
    return _packaged_rules() if path is None else validate_rules_file(path)


def meaningful_pairs(project: Project, rules: RuleTable | None = None) -> list[tuple[str, str]]:
    """The layer pairs :func:`detect_all` checks, from the rule table's ``pairs`` families:
    土规 vs 城规, plans at different levels, plans vs each control line, control lines
    pairwise, 现状 vs plans, the forest plan vs 现状 and plans. Order: as the families are
    listed, then layer registry order; each unordered pair once."""
    rules = rules or load_rules()
    layers = [r for r in project.layers() if r.kind == "vector" and _polygonal(r)]
    seen: set[frozenset[str]] = set()
    out: list[tuple[str, str]] = []
    for fam in rules.pairs:
        ra = rules.expand_roles(fam["a"]) or frozenset()
        rb = rules.expand_roles(fam["b"]) or frozenset()
        for la in layers:
            if la.role not in ra:
                continue
            for lb in layers:
                if lb.name == la.name or lb.role not in rb:
                    continue
                if fam.get("different_level") and la.level == lb.level:
                    continue
                key = frozenset((la.name, lb.name))
                if key in seen:
                    continue
                seen.add(key)
                out.append((la.name, lb.name))
    return out


def _polygonal(rec: LayerRecord) -> bool:
    return (rec.geometry_type or "").replace("Multi", "") in ("Polygon", "")


# =========================================================================== layer data

_CODE_COLUMNS = ("mp_code", "mp_name", "mp_status", "mp_candidates")


@dataclass
class LayerData:
    """The parts of a layer conflict detection needs, positionally aligned."""

    record: LayerRecord
    fid: np.ndarray  # int64
    geometry: np.ndarray  # shapely geometries
    key: np.ndarray  # int index into ``classes``
    classes: list[ClassInfo]

    @property
    def name(self) -> str:
        return self.record.name

    def parent(self, k: int) -> Parent:
        return Parent(self.record.name, self.record.role, self.record.level, self.classes[k])

    def __len__(self) -> int:
        return len(self.fid)


def _layer_columns(project: Project, rec: LayerRecord) -> list[str]:
    with contextlib.closing(project.connect()) as conn:
        have = [r[1] for r in conn.execute(f'PRAGMA table_info("{rec.name}")')]
    want = list(_CODE_COLUMNS)
    for f in (rec.code_field, rec.name_field):
        if f and f not in want:
            want.append(f)
    return [c for c in want if c in have]


def _text(v: Any) -> str | None:
    """An attribute value as text; None for missing; 101.0 → "101"."""
    if v is None:
        return None
    if isinstance(v, float):
        if math.isnan(v):
            return None
        if v.is_integer():
            return str(int(v))
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    t = str(v)
    return t if t.strip() else None


def _class_infos(rec: LayerRecord, df: pd.DataFrame) -> tuple[np.ndarray, list[ClassInfo]]:
    """Factorise the class columns of a layer into distinct :class:`ClassInfo` values."""
    from .classification import load_scheme

    n = len(df)
    role_label = rec.role_label
    names: list[str] = []
    cols: list[list[Any]] = []
    for c in (*_CODE_COLUMNS, rec.code_field, rec.name_field):
        if c and c in df.columns and c not in names:
            names.append(c)
            col = df[c].astype(object)
            cols.append(col.where(col.notna(), None).tolist())
    if not cols:
        return np.zeros(n, dtype=np.int64), [ClassInfo((), None, "none", role_label, None,
                                                       role_label)]
    index: dict[tuple, int] = {}
    codes = np.fromiter((index.setdefault(t, len(index)) for t in zip(*cols)),
                        dtype=np.int64, count=n)
    scheme = load_scheme("ydyh2023")
    infos: list[ClassInfo] = []
    for tup in index:
        row = {k: _text(v) for k, v in zip(names, tup, strict=True)}
        status = row.get("mp_status") or ("none" if "mp_status" not in row else "unknown")
        code = row.get("mp_code") if status == "ok" else None
        cands = tuple(c for c in (row.get("mp_candidates") or "").split(",") if c)
        if status == "ok" and code:
            codes_t: tuple[str, ...] = (code,)
        elif status == "待定" and cands:
            codes_t = cands
        else:
            codes_t = ()
        src = row.get(rec.code_field) if rec.code_field else None
        name = (row.get("mp_name") or (row.get(rec.name_field) if rec.name_field else None)
                or (src if src else None) or role_label)
        if code:
            l1 = scheme.level1(code)
            class_l1 = scheme.name(l1) or code
        elif status == "待定":
            class_l1 = "待定"
        elif status == "none":
            class_l1 = role_label
        else:
            class_l1 = "未知"
        infos.append(ClassInfo(codes_t, code, status, str(name), src, class_l1))
    return np.asarray(codes, dtype=np.int64), infos


def load_layer_data(project: Project, name: str) -> LayerData:
    """Read a polygon layer's geometries, fids and class columns for conflict detection."""
    rec = project.layer(name)
    if rec.kind != "vector" or not _polygonal(rec):
        raise ConflictError("conflicts.not_polygon", f"图层 {name} 不是面图层，无法做冲突检测",
                            f"layer {name} is not a polygon layer; conflicts need polygons",
                            path=project.gpkg)
    cols = _layer_columns(project, rec)
    gdf = project.read_layer(name, columns=cols)
    key, classes = _class_infos(rec, gdf)
    return LayerData(rec, gdf.index.to_numpy(dtype=np.int64), gdf.geometry.to_numpy(),
                     key, classes)


def _layer_data_by_fid(project: Project, conn: sqlite3.Connection, rec: LayerRecord,
                       fids: np.ndarray) -> LayerData:
    """Read just the features ``fids`` of a layer straight from SQLite (incremental path)."""
    geom_col = _geometry_column(conn, rec.name)
    have = [r[1] for r in conn.execute(f'PRAGMA table_info("{rec.name}")')]
    want = [c for c in (*_CODE_COLUMNS, rec.code_field, rec.name_field) if c and c in have]
    want = list(dict.fromkeys(want))
    fids = np.unique(np.asarray(fids, dtype=np.int64))
    rows: list[tuple] = []
    sel = ", ".join(f'"{c}"' for c in ["fid", geom_col, *want])
    for chunk in _chunks(fids.tolist(), 900):
        q = (f'SELECT {sel} FROM "{rec.name}" WHERE "fid" IN '
             f'({", ".join("?" for _ in chunk)})')
        rows.extend(conn.execute(q, chunk).fetchall())
    rows.sort(key=lambda r: r[0])
    got = np.asarray([r[0] for r in rows], dtype=np.int64)
    geoms = _from_gpkg_blobs([r[1] for r in rows])
    df = pd.DataFrame([r[2:] for r in rows], columns=want) if want else pd.DataFrame(
        index=range(len(rows)))
    key, classes = _class_infos(rec, df)
    keep = ~shapely.is_missing(geoms) if len(geoms) else np.zeros(0, dtype=bool)
    return LayerData(rec, got[keep], geoms[keep], key[keep], classes)


def _chunks(seq: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


# =========================================================================== GeoPackage blobs

_ENV_SIZE = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
_HDR = np.dtype([("magic", "S2"), ("version", "u1"), ("flags", "u1"), ("srs", "<i4"),
                 ("env", "<f8", (4,))])
_MULTI_PREFIX = b"\x01\x06\x00\x00\x00\x01\x00\x00\x00"  # LE MultiPolygon with 1 part


def _from_gpkg_blobs(blobs: Sequence[bytes | None]) -> np.ndarray:
    wkb: list[bytes | None] = []
    for b in blobs:
        if b is None:
            wkb.append(None)
            continue
        flags = b[3]
        if flags & 0x10:  # empty geometry
            wkb.append(None)
            continue
        wkb.append(bytes(b[8 + _ENV_SIZE[(flags >> 1) & 0x07]:]))
    return shapely.from_wkb(np.asarray(wkb, dtype=object)) if wkb else np.empty(0, object)


def _gpkg_blobs(geoms: np.ndarray, srs_id: int) -> tuple[list[bytes], np.ndarray]:
    """GeoPackage binary geometries (little endian, xy envelope) as MultiPolygons, and the
    (n, 4) bounds minx, miny, maxx, maxy."""
    n = len(geoms)
    if n == 0:
        return [], np.zeros((0, 4))
    wkb = shapely.to_wkb(geoms, byte_order=1, output_dimension=2)
    bounds = shapely.bounds(geoms)
    hdr = np.zeros(n, dtype=_HDR)
    hdr["magic"] = b"GP"
    hdr["flags"] = 0x03  # little endian, envelope [minx, maxx, miny, maxy]
    hdr["srs"] = srs_id
    hdr["env"] = bounds[:, [0, 2, 1, 3]]
    raw = hdr.tobytes()
    size = _HDR.itemsize
    is_poly = shapely.get_type_id(geoms) == 3
    out = []
    for i, (w, poly) in enumerate(zip(wkb.tolist(), is_poly.tolist(), strict=True)):
        h = raw[i * size:(i + 1) * size]
        out.append(h + _MULTI_PREFIX + w if poly else h + w)
    return out, bounds


def _geometry_column(conn: sqlite3.Connection, table: str) -> str:
    row = conn.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?",
                       (table,)).fetchone()
    if row is None:
        raise ProjectError("conflicts.no_geometry", f"表 {table} 不是要素表",
                           f"table {table} is not a feature table")
    return row[0]


# =========================================================================== the register

#: (column, SQLite type) of the register feature table, in order (geometry ``geom`` last).
REGISTER_COLUMNS: list[tuple[str, str]] = [
    ("conflict_id", "TEXT"), ("layer_a", "TEXT"), ("fid_a", "INTEGER"),
    ("layer_b", "TEXT"), ("fid_b", "INTEGER"),
    ("code_a", "TEXT"), ("name_a", "TEXT"), ("class_a", "TEXT"), ("src_code_a", "TEXT"),
    ("code_b", "TEXT"), ("name_b", "TEXT"), ("class_b", "TEXT"), ("src_code_b", "TEXT"),
    ("conflict_type", "TEXT"), ("type_name", "TEXT"), ("severity", "TEXT"),
    ("rule_id", "TEXT"), ("resolution", "TEXT"), ("winner_layer", "TEXT"),
    ("proposed_code", "TEXT"), ("proposed_name", "TEXT"), ("pending", "INTEGER"),
    ("pending_reason", "TEXT"),
    ("area_m2", "REAL"), ("area_ha", "REAL"), ("area_mu", "REAL"), ("township", "TEXT"),
    ("sliver", "INTEGER"), ("sliver_reason", "TEXT"), ("mean_width_m", "REAL"),
    ("contained", "INTEGER"), ("rule_version", "TEXT"), ("run_id", "TEXT"),
]
_REG_NAMES = [c for c, _ in REGISTER_COLUMNS]

_REGISTER_INDEXES = {
    f"{REGISTER_TABLE}_id": 'CREATE UNIQUE INDEX IF NOT EXISTS "{name}" ON "{table}" '
                            '("conflict_id")',
    f"{REGISTER_TABLE}_pair_a": 'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" '
                                '("layer_a", "layer_b", "fid_a")',
    f"{REGISTER_TABLE}_pair_b": 'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" '
                                '("layer_a", "layer_b", "fid_b")',
}

_RUN_COLUMNS: list[tuple[str, str]] = [
    ("run_id", "TEXT NOT NULL"), ("pair_key", "TEXT NOT NULL UNIQUE"),
    ("layer_a", "TEXT NOT NULL"), ("layer_b", "TEXT NOT NULL"),
    ("rule_version", "TEXT NOT NULL"), ("kind", "TEXT NOT NULL"),
    ("created_at", "TEXT"), ("updated_at", "TEXT"), ("pieces", "INTEGER"),
    ("conflicts", "INTEGER"), ("slivers", "INTEGER"), ("pending", "INTEGER"),
    ("conflict_area_m2", "REAL"), ("seconds", "REAL"), ("settings", "TEXT"),
    ("fingerprint_a", "TEXT"), ("fingerprint_b", "TEXT"), ("failures", "TEXT"),
]


def _pair_key(a: str, b: str) -> str:
    return "\x1f".join(sorted((a, b)))


def _pair_hash(a: str, b: str) -> str:
    return hashlib.sha1(_pair_key(a, b).encode("utf-8")).hexdigest()[:8]


def conflict_ids(layer_a: str, fid_a: np.ndarray, layer_b: str, fid_b: np.ndarray) -> list[str]:
    """Stable piece ids ``CF-<pair hash>-<fid>-<fid>``: the fids in the sorted order of the
    layer names, so (A, B) and (B, A) give the same ids."""
    h = _pair_hash(layer_a, layer_b)
    first, second = (fid_a, fid_b) if layer_a <= layer_b else (fid_b, fid_a)
    if len(first) < 1000:
        return [f"CF-{h}-{x}-{y}" for x, y in zip(first.tolist(), second.tolist(), strict=True)]
    ids = (f"CF-{h}-" + pd.Series(first).astype("str") + "-"
           + pd.Series(second).astype("str"))  # arrow string kernels: ~2× the list's speed
    return ids.tolist()


@dataclass
class Townships:
    names: list[str]
    geoms: np.ndarray
    bounds: np.ndarray
    layer: str | None

    def lookup(self, points: np.ndarray) -> np.ndarray:
        out = np.full(len(points), "", dtype=object)
        if not len(self.names) or not len(points):
            return out
        x, y = shapely.get_x(points), shapely.get_y(points)
        todo = np.ones(len(points), dtype=bool)
        # prepared copies, private to this call: a cached Townships may be used from several
        # threads, and sharing prepared geometries between threads can crash (platform notes)
        geoms = shapely.from_wkb(shapely.to_wkb(self.geoms))
        for name, g, (x0, y0, x1, y1) in zip(self.names, geoms, self.bounds, strict=True):
            cand = np.flatnonzero(todo & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
            if not len(cand):
                continue
            shapely.prepare(g)
            hit = cand[shapely.contains_xy(g, x[cand], y[cand])]
            out[hit] = name
            todo[hit] = False
        return out


_TOWNSHIP_NAME_FIELDS = ("XZQMC", "xzqmc", "name", "NAME", "Name", "乡镇", "乡镇名称", "MC",
                         "township", "名称")


_TOWNSHIP_CACHE: dict[tuple[str, str, str], Townships] = {}


def load_townships(project: Project, *, records: Sequence[LayerRecord] | None = None,
                   conn: sqlite3.Connection | None = None) -> Townships:
    """The 乡镇界 layer (first layer with role ``township``) and its name field: the
    registry's name field, else XZQMC/name/乡镇…, else the first text column. Cached per
    project file and layer fingerprint (row count + last change), so an edit reloads it.
    ``records`` / ``conn``: the registry and an open connection, when the caller has them."""
    recs = [r for r in (records if records is not None else project.layers())
            if r.role == "township"]
    if not recs:
        return Townships([], np.empty(0, object), np.zeros((0, 4)), None)
    rec = recs[0]
    if conn is None:
        with contextlib.closing(project.connect()) as c:
            fp = _fingerprint(c, rec.name)
    else:
        fp = _fingerprint(conn, rec.name)
    key = (str(project.gpkg.resolve()), rec.name, fp)
    hit = _TOWNSHIP_CACHE.get(key)
    if hit is not None:
        return hit
    tw = _read_townships(project, rec)
    if len(_TOWNSHIP_CACHE) > 16:
        _TOWNSHIP_CACHE.clear()
    _TOWNSHIP_CACHE[key] = tw
    return tw


def _read_townships(project: Project, rec: LayerRecord) -> Townships:
    gdf = project.read_layer(rec.name)
    field_name = rec.name_field if rec.name_field in gdf.columns else None
    if field_name is None:
        for f in _TOWNSHIP_NAME_FIELDS:
            if f in gdf.columns:
                field_name = f
                break
    if field_name is None:
        text = [c for c in gdf.columns if c != gdf.geometry.name
                and not c.startswith("mp_") and gdf[c].dtype.kind in "OUT"]
        field_name = text[0] if text else None
    names = ([str(v) for v in gdf[field_name]] if field_name
             else [f"{rec.name}#{fid}" for fid in gdf.index])
    geoms = gdf.geometry.to_numpy()
    return Townships(names, geoms, shapely.bounds(geoms), rec.name)


def _sliver_flags(geoms: np.ndarray, area: np.ndarray, thresholds: dict[str, Any]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sliver, reason, mean width 2A/P of the whole piece).

    A piece is a sliver when **every** polygon part passes the scale test of domain.md §5.4
    (part area ≤ ``sliver_max_area_m2`` or part mean width 2A/P ≤
    ``sliver_max_mean_width_m``) — so a piece made of many small crumbs is a sliver even
    when their total is large, and one real part keeps the piece in the statistics. With the
    project setting ``sliver_shape_test`` true, each part must also pass the §5.4 shape test
    (thin, not merely small). Reason: ``area`` when every part is small, else ``width``.
    """
    from .overlay import is_sliver, sliver_metrics

    n = len(geoms)
    if n == 0:
        return np.zeros(0, bool), np.empty(0, object), np.zeros(0)
    max_area = float(thresholds["sliver_max_area_m2"])
    max_width = float(thresholds["sliver_max_mean_width_m"])
    shape = bool(thresholds.get("sliver_shape_test", False))
    whole = sliver_metrics(geoms, area)
    mean_w = whole["mean_width"]
    single = shapely.get_num_geometries(geoms) <= 1
    sliver = np.zeros(n, dtype=bool)
    small = np.zeros(n, dtype=bool)
    s_idx = np.flatnonzero(single)
    if len(s_idx):
        sliver[s_idx] = is_sliver(area[s_idx], mean_w[s_idx], max_area=max_area,
                                  max_width=max_width,
                                  compactness=whole["compactness"][s_idx] if shape else None)
        small[s_idx] = area[s_idx] <= max_area
    m_idx = np.flatnonzero(~single)
    if len(m_idx):
        parts, idx = shapely.get_parts(geoms[m_idx], return_index=True)
        pm = sliver_metrics(parts)
        ok = is_sliver(pm["area"], pm["mean_width"], max_area=max_area, max_width=max_width,
                       compactness=pm["compactness"] if shape else None)
        bad = np.bincount(idx, weights=(~ok).astype(float), minlength=len(m_idx))
        big = np.bincount(idx, weights=(pm["area"] > max_area).astype(float),
                          minlength=len(m_idx))
        sliver[m_idx] = bad == 0
        small[m_idx] = big == 0
    reason = np.where(sliver, np.where(small, "area", "width"), "").astype(object)
    return sliver, reason, mean_w


def _thresholds(project: Project) -> dict[str, Any]:
    return {"sliver_max_area_m2": float(project.setting("sliver_max_area_m2", 1000.0)),
            "sliver_max_mean_width_m": float(project.setting("sliver_max_mean_width_m", 5.0)),
            "sliver_shape_test": bool(project.setting("sliver_shape_test", False))}


def build_register_rows(la: LayerData, lb: LayerData, pieces: Any, rules: RuleTable,
                        townships: Townships, thresholds: dict[str, Any],
                        run_id: str, crs: Any = None) -> gpd.GeoDataFrame:
    """Turn overlay pieces of (A, B) into register rows (a GeoDataFrame, rows sorted by
    (fid_a, fid_b))."""
    ai = np.asarray(pieces.a_idx, dtype=np.int64)
    bi = np.asarray(pieces.b_idx, dtype=np.int64)
    geoms = np.asarray(pieces.geometry, dtype=object)
    area = np.asarray(pieces.area, dtype=np.float64)
    contained = np.asarray(getattr(pieces, "contained", np.zeros(len(ai), bool)), dtype=bool)
    fa, fb = la.fid[ai], lb.fid[bi]
    order = np.lexsort((fb, fa))
    ai, bi, geoms, area, contained, fa, fb = (ai[order], bi[order], geoms[order], area[order],
                                              contained[order], fa[order], fb[order])
    n = len(ai)
    ka, kb = la.key[ai], lb.key[bi]
    nb = max(len(lb.classes), 1)
    combo = ka * nb + kb
    uniq, inv = np.unique(combo, return_inverse=True)
    decisions = [rules.decide(la.parent(int(c // nb)), lb.parent(int(c % nb))) for c in uniq]
    ca = [la.classes[int(c // nb)] for c in uniq]
    cb = [lb.classes[int(c % nb)] for c in uniq]

    # text columns take few distinct values: build them as categoricals from the per-combo
    # values (no per-row string conversion; 170k rows × 20 text columns would cost ~1 s)
    def col(values: list[Any]) -> pd.Categorical:
        codes, cats = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
        return pd.Categorical.from_codes(codes[inv] if n else np.empty(0, np.int64),
                                         categories=list(cats))

    def num(values: list[Any], dtype: Any) -> np.ndarray:
        return np.asarray(values, dtype=dtype)[inv] if n else np.empty(0, dtype)

    def const(value: str) -> pd.Categorical:
        return pd.Categorical.from_codes(np.zeros(n, np.int64), categories=[value])

    def text(arr: np.ndarray) -> pd.Categorical:
        codes, cats = pd.factorize(pd.Series(arr, dtype=object), use_na_sentinel=True)
        return pd.Categorical.from_codes(codes, categories=list(cats))

    sliver, reason, mean_w = _sliver_flags(geoms, area, thresholds)
    bmis = num([d.boundary_mismatch for d in decisions], bool)
    reason = np.where(bmis, "boundary", reason)
    sliver = sliver | bmis
    rep = shapely.point_on_surface(geoms) if n else np.empty(0, object)
    township = townships.lookup(rep)
    data = {
        "conflict_id": conflict_ids(la.name, fa, lb.name, fb),
        "layer_a": const(la.name), "fid_a": fa, "layer_b": const(lb.name), "fid_b": fb,
        "code_a": col([c.definite or (",".join(c.codes) if c.codes else None) for c in ca]),
        "name_a": col([c.name for c in ca]), "class_a": col([c.class_l1 for c in ca]),
        "src_code_a": col([c.src_code for c in ca]),
        "code_b": col([c.definite or (",".join(c.codes) if c.codes else None) for c in cb]),
        "name_b": col([c.name for c in cb]), "class_b": col([c.class_l1 for c in cb]),
        "src_code_b": col([c.src_code for c in cb]),
        "conflict_type": col([d.type for d in decisions]),
        "type_name": col([d.type_name for d in decisions]),
        "severity": col([d.severity for d in decisions]),
        "rule_id": col([d.rule_id for d in decisions]),
        "resolution": col([d.resolution for d in decisions]),
        "winner_layer": col([la.name if d.winner == "a" else lb.name for d in decisions]),
        "proposed_code": col([d.proposed_code for d in decisions]),
        "proposed_name": col([d.proposed_name for d in decisions]),
        "pending": num([int(d.pending) for d in decisions], np.int64),
        "pending_reason": col([d.pending_reason for d in decisions]),
        "area_m2": area, "area_ha": area / 10_000.0, "area_mu": area / MU_M2,
        "township": text(township), "sliver": sliver.astype(np.int64),
        "sliver_reason": text(np.where(sliver, reason, None).astype(object)),
        "mean_width_m": mean_w, "contained": contained.astype(np.int64),
        "rule_version": const(rules.version_id), "run_id": const(run_id),
    }
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=crs))


# =========================================================================== storage

def _ensure_tables(project: Project) -> None:
    """Create the register tables on first use (a project without them is simply a project
    where conflicts were never detected, so no schema migration is needed)."""
    with contextlib.closing(project.connect()) as conn:
        have_reg = table_exists(conn, REGISTER_TABLE)
        have_runs = table_exists(conn, RUNS_TABLE)
        have_rules = table_exists(conn, RULES_TABLE)
        indexes = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name=?",
            (REGISTER_TABLE,))}
    if have_reg and have_runs and have_rules and set(_REGISTER_INDEXES) <= indexes:
        return
    tmp = None
    if not have_reg:
        import pyogrio

        empty = {c: pd.Series([], dtype=("int64" if t == "INTEGER" else
                                         "float64" if t == "REAL" else object))
                 for c, t in REGISTER_COLUMNS}
        frame = gpd.GeoDataFrame(empty, geometry=gpd.GeoSeries([], crs=project.epsg))
        tmp = f"mp_tmp_{uuid.uuid4().hex[:12]}"
        pyogrio.write_dataframe(frame, project.gpkg, layer=tmp, driver="GPKG",
                                geometry_type="MultiPolygon",
                                layer_options={"SPATIAL_INDEX": "YES", "FID": "fid"})
    try:
        with project.transaction() as conn:
            if tmp is not None and not table_exists(conn, REGISTER_TABLE):
                rename_gpkg_table(conn, tmp, REGISTER_TABLE)
                conn.execute("UPDATE gpkg_contents SET description = ? WHERE table_name = ?",
                             ("multiplan conflict register (差异图斑)", REGISTER_TABLE))
            elif tmp is not None:
                drop_gpkg_table(conn, tmp)
            # (pair, fid) indexes: a re-check finds an edited feature's rows without a scan;
            # both lead with the pair so the planner never scans a whole pair by mistake
            for name, sql in _REGISTER_INDEXES.items():
                conn.execute(sql.format(name=name, table=REGISTER_TABLE))
            _create_meta_tables(conn)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(Exception), project.transaction() as conn:
                drop_gpkg_table(conn, tmp)
        raise


def _create_meta_tables(conn: sqlite3.Connection) -> None:
    cols = ", ".join(f'"{c}" {t}' for c, t in _RUN_COLUMNS)
    conn.execute(f'CREATE TABLE IF NOT EXISTS "{RUNS_TABLE}" ('
                 f'"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, {cols})')
    register_attributes_table(conn, RUNS_TABLE, "multiplan conflict runs (差异图斑检测)")
    conn.execute(f'CREATE TABLE IF NOT EXISTS "{RULES_TABLE}" ('
                 '"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, '
                 '"rule_version" TEXT NOT NULL, "rule_id" TEXT NOT NULL, '
                 '"conflict_type" TEXT, "type_name" TEXT, "type_name_en" TEXT, '
                 '"severity" TEXT, "resolution" TEXT, "message_zh" TEXT, '
                 '"message_en" TEXT, "basis" TEXT, UNIQUE ("rule_version", "rule_id"))')
    register_attributes_table(conn, RULES_TABLE, "multiplan conflict rules in use")


def _fingerprint(conn: sqlite3.Connection, table: str) -> str:
    """``<rows>@<last change>`` of a layer: the row count GDAL keeps in gpkg_ogr_contents
    (a count(*) would read the whole table) and gpkg_contents.last_change."""
    row = conn.execute("SELECT last_change FROM gpkg_contents WHERE table_name = ?",
                       (table,)).fetchone()
    cnt = None
    if table_exists(conn, "gpkg_ogr_contents"):
        r = conn.execute("SELECT feature_count FROM gpkg_ogr_contents WHERE "
                         "lower(table_name) = lower(?)", (table,)).fetchone()
        cnt = r[0] if r else None
    if cnt is None:
        cnt = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    return f"{cnt}@{row[0] if row else ''}"


def _write_rules(conn: sqlite3.Connection, rules: RuleTable) -> None:
    rows = [(rules.version_id, r.id, r.type, rules.types[r.type]["zh"],
             rules.types[r.type]["en"], r.severity, r.resolution, r.message_zh, r.message_en,
             r.basis) for r in rules.rules]
    rows.append((rules.version_id, "", "X0", rules.types["X0"]["zh"], rules.types["X0"]["en"],
                 "提示", "precedence", "未匹配任何规则", "no rule matched", ""))
    conn.executemany(f'INSERT OR REPLACE INTO "{RULES_TABLE}" ("rule_version", "rule_id", '
                     '"conflict_type", "type_name", "type_name_en", "severity", "resolution", '
                     '"message_zh", "message_en", "basis") VALUES (?,?,?,?,?,?,?,?,?,?)', rows)


@dataclass
class _Bulk:
    """State of a bulk write (see :func:`_bulk_mode`): the R-tree table and the net number of
    register rows inserted minus deleted."""

    rtree: str
    delta: int = 0
    count0: int | None = None  # the register's row count when the bulk write began


@contextlib.contextmanager
def _bulk_mode(conn: sqlite3.Connection) -> Iterator[_Bulk]:
    """Inside the caller's transaction: drop GDAL's R-tree and feature-count triggers on the
    register (they run per row, and the insert trigger calls ST_* functions a plain SQLite
    connection lacks), let the caller maintain the R-tree itself, then restore the triggers
    and apply the net row change to gpkg_ogr_contents (a count(*) would read the whole
    register). DDL is transactional in SQLite, so an error rolls everything back, triggers
    included."""
    geom_col = _geometry_column(conn, REGISTER_TABLE)
    bulk = _Bulk(f"rtree_{REGISTER_TABLE}_{geom_col}")
    row = conn.execute("SELECT feature_count FROM gpkg_ogr_contents WHERE lower(table_name) = "
                       "lower(?)", (REGISTER_TABLE,)).fetchone() if table_exists(
        conn, "gpkg_ogr_contents") else None
    bulk.count0 = row[0] if row and row[0] is not None else conn.execute(
        f'SELECT count(*) FROM "{REGISTER_TABLE}"').fetchone()[0]
    trig = conn.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger' AND "
                        "tbl_name = ?", (REGISTER_TABLE,)).fetchall()
    for name, _ in trig:
        conn.execute(f'DROP TRIGGER "{name}"')
    yield bulk
    for _, sql in trig:
        conn.execute(sql)
    if bulk.delta:
        conn.execute("UPDATE gpkg_ogr_contents SET feature_count = ? WHERE "
                     "lower(table_name) = lower(?)", (bulk.count0 + bulk.delta, REGISTER_TABLE))


def _insert_rows(conn: sqlite3.Connection, bulk: _Bulk, frame: gpd.GeoDataFrame,
                 srs_id: int) -> None:
    """Bulk insert register rows and their R-tree entries (call inside :func:`_bulk_mode`)."""
    n = len(frame)
    if n == 0:
        return
    geom_col = _geometry_column(conn, REGISTER_TABLE)
    start = conn.execute(f'SELECT coalesce(max("fid"), 0) FROM "{REGISTER_TABLE}"').fetchone()[0]
    fids = np.arange(start + 1, start + 1 + n, dtype=np.int64)
    blobs, bounds = _gpkg_blobs(frame.geometry.to_numpy(), srs_id)
    columns: list[list[Any]] = []
    for c, t in REGISTER_COLUMNS:
        col = frame[c]
        if t == "INTEGER":
            columns.append(col.to_numpy(dtype=np.int64).tolist())
        elif t == "REAL":
            columns.append(col.to_numpy(dtype=np.float64).tolist())
        else:
            obj = col.astype(object)
            columns.append(obj.where(obj.notna(), None).tolist())
    rows = zip(fids.tolist(), *columns, blobs, strict=True)
    names = ", ".join(f'"{c}"' for c in ["fid", *_REG_NAMES, geom_col])
    marks = ", ".join("?" for _ in range(len(_REG_NAMES) + 2))
    conn.executemany(f'INSERT INTO "{REGISTER_TABLE}" ({names}) VALUES ({marks})', rows)
    bulk.delta += n
    rtree = bulk.rtree
    if table_exists(conn, rtree):
        o = _serpentine_order(bounds)
        b = bounds[o]
        conn.executemany(f'INSERT OR REPLACE INTO "{rtree}" VALUES (?, ?, ?, ?, ?)',
                         zip(fids[o].tolist(), b[:, 0].tolist(), b[:, 2].tolist(),
                             b[:, 1].tolist(), b[:, 3].tolist(), strict=True))


def _serpentine_order(bounds: np.ndarray, cells: int = 256) -> np.ndarray:
    """An insertion order for the R-tree that keeps neighbours together (rows of a coarse
    grid, alternately left-to-right and right-to-left): SQLite's R-tree inserts ~1.5× faster
    than in parcel order at 170k rows."""
    if len(bounds) < 2:
        return np.arange(len(bounds))
    cx = (bounds[:, 0] + bounds[:, 2]) / 2
    cy = (bounds[:, 1] + bounds[:, 3]) / 2
    span_x = max(float(cx.max() - cx.min()), 1e-9)
    span_y = max(float(cy.max() - cy.min()), 1e-9)
    gx = np.minimum(((cx - cx.min()) / span_x * cells).astype(np.int64), cells - 1)
    gy = np.minimum(((cy - cy.min()) / span_y * cells).astype(np.int64), cells - 1)
    key = gy * cells + np.where(gy % 2 == 0, gx, cells - 1 - gx)
    return np.argsort(key, kind="stable")


def _delete_rows(conn: sqlite3.Connection, bulk: _Bulk, where: str,
                 params: Sequence[Any]) -> int:
    """Delete register rows (and their R-tree entries) matching ``where``; returns the count
    (call inside :func:`_bulk_mode`). Deleting R-tree entries one by one costs ~20 µs each,
    so when most of the table goes the R-tree is rebuilt from the remaining rows' envelopes
    instead (or simply emptied when nothing remains)."""
    fids = [r[0] for r in conn.execute(f'SELECT "fid" FROM "{REGISTER_TABLE}" WHERE {where}',
                                       params)]
    if not fids:
        return 0
    rtree = bulk.rtree
    total = (bulk.count0 or 0) + bulk.delta
    bulk.delta -= len(fids)
    have_rtree = table_exists(conn, rtree)
    if len(fids) == total:
        conn.execute(f'DELETE FROM "{REGISTER_TABLE}"')
        if have_rtree:
            _recreate_rtree(conn, rtree)
        return len(fids)
    conn.execute(f'DELETE FROM "{REGISTER_TABLE}" WHERE {where}', params)
    if not have_rtree:
        return len(fids)
    if len(fids) > total - len(fids):
        geom_col = _geometry_column(conn, REGISTER_TABLE)
        rows = conn.execute(f'SELECT "fid", substr("{geom_col}", 1, 40) FROM '
                            f'"{REGISTER_TABLE}"').fetchall()
        _recreate_rtree(conn, rtree)
        conn.executemany(f'INSERT INTO "{rtree}" VALUES (?, ?, ?, ?, ?)',
                         ((f, *_blob_envelope(b)) for f, b in rows if b is not None))
    else:
        conn.executemany(f'DELETE FROM "{rtree}" WHERE id = ?', ((f,) for f in fids))
    return len(fids)


def _recreate_rtree(conn: sqlite3.Connection, rtree: str) -> None:
    conn.execute(f'DROP TABLE "{rtree}"')
    conn.execute(f'CREATE VIRTUAL TABLE "{rtree}" USING rtree(id, minx, maxx, miny, maxy)')


def _blob_envelope(b: bytes) -> tuple[float, float, float, float]:
    """(minx, maxx, miny, maxy) from a GeoPackage blob header (our blobs always carry it)."""
    if (b[3] >> 1) & 0x07:
        return struct.unpack_from("<4d" if b[3] & 1 else ">4d", b, 8)
    raise ProjectError("conflicts.blob", "登记表几何缺少包络框", "register geometry lacks an "
                       "envelope")


def _delete_pairs(conn: sqlite3.Connection, bulk: _Bulk, pairs: Sequence[tuple[str, str]]
                  ) -> int:
    """Delete the rows of every pair (either order) in one statement."""
    if not pairs:
        return 0
    where, params = _pairs_where(pairs)
    return _delete_rows(conn, bulk, where, params)


def _update_extent(conn: sqlite3.Connection, grow: np.ndarray | None = None) -> None:
    """Set the register's extent in gpkg_contents: from the whole R-tree, or (``grow``: the
    (n, 4) bounds of rows just added) the old extent grown to cover them — the extent of a
    GeoPackage table may be larger than its content, and a full R-tree scan per small edit
    is avoidable."""
    geom_col = _geometry_column(conn, REGISTER_TABLE)
    rtree = f"rtree_{REGISTER_TABLE}_{geom_col}"
    old = conn.execute("SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE "
                       "table_name = ?", (REGISTER_TABLE,)).fetchone()
    if grow is not None and old is not None and None not in old:
        if len(grow):
            ext = (min(old[0], float(grow[:, 0].min())), min(old[1], float(grow[:, 1].min())),
                   max(old[2], float(grow[:, 2].max())), max(old[3], float(grow[:, 3].max())))
        else:
            ext = tuple(old)
    elif table_exists(conn, rtree):
        ext = conn.execute(f'SELECT min(minx), min(miny), max(maxx), max(maxy) FROM "{rtree}"'
                           ).fetchone()
    else:
        ext = (None,) * 4
    conn.execute("UPDATE gpkg_contents SET min_x = ?, min_y = ?, max_x = ?, max_y = ?, "
                 "last_change = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE table_name = ?",
                 (*ext, REGISTER_TABLE))


def _run_counts(frame: pd.DataFrame, rules: RuleTable) -> dict[str, Any]:
    if not len(frame):
        return {"pieces": 0, "conflicts": 0, "slivers": 0, "pending": 0,
                "conflict_area_m2": 0.0}
    sl = frame["sliver"].to_numpy().astype(bool)
    head = _headline_mask(frame["severity"], rules) & ~sl
    return {"pieces": len(frame), "conflicts": int(head.sum()), "slivers": int(sl.sum()),
            "pending": int((frame["pending"].to_numpy().astype(bool) & ~sl).sum()),
            "conflict_area_m2": float(frame["area_m2"].to_numpy()[head].sum())}


def _counts_where(conn: sqlite3.Connection, where: str, params: Sequence[Any],
                  rules: RuleTable) -> dict[str, Any]:
    """The run counts (see :func:`_run_counts`) of the register rows matching ``where``."""
    heads = [k for k, v in rules.severities.items() if v.get("headline")]
    marks = ", ".join("?" for _ in heads)
    row = conn.execute(
        f'SELECT count(*), '
        f'coalesce(sum("sliver" = 0 AND "severity" IN ({marks})), 0), '
        f'coalesce(sum("sliver"), 0), coalesce(sum("pending" = 1 AND "sliver" = 0), 0), '
        f'coalesce(sum(CASE WHEN "sliver" = 0 AND "severity" IN ({marks}) THEN "area_m2" '
        f'ELSE 0 END), 0.0) FROM "{REGISTER_TABLE}" WHERE {where}',
        (*heads, *heads, *params)).fetchone()
    return {"pieces": int(row[0]), "conflicts": int(row[1]), "slivers": int(row[2]),
            "pending": int(row[3]), "conflict_area_m2": float(row[4])}


def _headline_mask(severity: pd.Series, rules: RuleTable) -> np.ndarray:
    heads = [k for k, v in rules.severities.items() if v.get("headline")]
    return np.isin(severity.astype(object).to_numpy(), heads)


def _upsert_run(conn: sqlite3.Connection, run: ConflictRun, project: Project,
                counts: dict[str, Any], fp: tuple[str, str]) -> None:
    key = _pair_key(run.layer_a, run.layer_b)
    old = conn.execute(f'SELECT "created_at" FROM "{RUNS_TABLE}" WHERE "pair_key" = ?',
                       (key,)).fetchone()
    conn.execute(f'DELETE FROM "{RUNS_TABLE}" WHERE "pair_key" = ?', (key,))
    row = {"run_id": run.run_id, "pair_key": key, "layer_a": run.layer_a,
           "layer_b": run.layer_b, "rule_version": run.rule_version, "kind": run.kind,
           "created_at": old[0] if old and run.kind == "incremental" else _now(),
           "updated_at": _now(), **counts, "seconds": run.seconds_compute,
           "settings": json.dumps(run.thresholds), "fingerprint_a": fp[0],
           "fingerprint_b": fp[1], "failures": json.dumps(run.failures, ensure_ascii=False)}
    keys = ", ".join(f'"{k}"' for k in row)
    conn.execute(f'INSERT INTO "{RUNS_TABLE}" ({keys}) VALUES '
                 f'({", ".join("?" for _ in row)})', list(row.values()))


# =========================================================================== runs

@dataclass
class ConflictRun:
    """The result of checking one layer pair (full or incremental)."""

    run_id: str
    layer_a: str
    layer_b: str
    rule_version: str
    register: gpd.GeoDataFrame  # the pair's rows (for an incremental run: the new rows)
    failures: list[dict[str, Any]] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    kind: str = "full"
    seconds_compute: float = 0.0
    seconds_write: float = 0.0
    removed: int = 0  # incremental: register rows replaced or deleted

    def summary(self, rules: RuleTable | None = None) -> dict[str, Any]:
        rules = rules or load_rules()
        s = register_summary(self.register, rules)
        s.update({"run_id": self.run_id, "layer_a": self.layer_a, "layer_b": self.layer_b,
                  "rule_version": self.rule_version, "kind": self.kind,
                  "failures": self.failures, "seconds_compute": round(self.seconds_compute, 3),
                  "seconds_write": round(self.seconds_write, 3)})
        if self.kind == "incremental":
            s["rows_removed"] = self.removed
        return s


def _check_pair(project: Project, layer_a: str, layer_b: str) -> None:
    if layer_a == layer_b:
        raise ConflictError("conflicts.same_layer", "两个图层不能相同",
                            "the two layers must differ", path=project.gpkg)


def compute_conflicts(project: Project, layer_a: str | LayerData, layer_b: str | LayerData, *,
                      task: Task | None = None, rules: RuleTable | None = None,
                      townships: Townships | None = None, threads: int = 2) -> ConflictRun:
    """Detect conflicts between two layers without writing anything (the computation
    :func:`detect_conflicts` times and then stores)."""
    from .overlay import overlay_intersection

    task = ensure_task(task)
    rules = rules or load_rules()
    t0 = time.perf_counter()
    la = layer_a if isinstance(layer_a, LayerData) else None
    lb = layer_b if isinstance(layer_b, LayerData) else None
    name_a = la.name if la else str(layer_a)
    name_b = lb.name if lb else str(layer_b)
    _check_pair(project, name_a, name_b)
    task.progress(0.0, f"读取 {name_a}")
    la = la or load_layer_data(project, name_a)
    task.progress(0.05, f"读取 {name_b}")
    lb = lb or load_layer_data(project, name_b)
    townships = townships if townships is not None else load_townships(project)
    thresholds = _thresholds(project)
    task.progress(0.1, "叠加分析 overlay")
    res = overlay_intersection(la.geometry, lb.geometry, task=task.sub(0.1, 0.85),
                               threads=threads, grid_size_retry=project.setting(
                                   "precision_grid_m"))
    task.progress(0.85, "判定冲突类型")
    run_id = uuid.uuid4().hex[:12]
    frame = build_register_rows(la, lb, res, rules, townships, thresholds, run_id,
                                project.epsg)
    failures = [{"fid_a": int(la.fid[a]), "fid_b": int(lb.fid[b]), "message": str(m)}
                for a, b, m in getattr(res, "failures", [])]
    task.progress(1.0, "完成")
    return ConflictRun(run_id, name_a, name_b, rules.version_id, frame, failures, thresholds,
                       "full", time.perf_counter() - t0)


def _store_runs(project: Project, runs: list[ConflictRun], rules: RuleTable,
                task: Task | None = None) -> float:
    """Replace the register rows of each run's pair and its run record, atomically.

    Two routes, one result. When the rows that stay (other pairs) are no more than the rows
    being written — a first detection, ``detect_all``, re-detecting the only pair — the whole
    new register is written by GDAL under a temporary name (its R-tree bulk-built) and
    swapped in, with the run records, in one transaction (like
    :meth:`Project.write_vector_layer`); at 170k rows this is ~3× faster than row inserts.
    Otherwise the pair's rows are replaced in place by SQL (:func:`_bulk_mode`)."""
    t0 = time.perf_counter()
    pairs = [(r.layer_a, r.layer_b) for r in runs]
    new_rows = sum(len(r.register) for r in runs)
    with contextlib.closing(project.connect()) as conn:
        have = table_exists(conn, REGISTER_TABLE)
        keep = 0
        if have:
            where, params = _pairs_where(pairs)
            keep = conn.execute(f'SELECT count(*) FROM "{REGISTER_TABLE}" WHERE NOT ({where})',
                                params).fetchone()[0]
    if not have or keep <= new_rows:
        _swap_register(project, runs, rules, pairs if have and keep else None)
    else:
        _ensure_tables(project)
        srs = project.epsg  # read settings before the write lock is taken
        with project.transaction() as conn, _bulk_mode(conn) as bulk:
            _write_rules(conn, rules)
            _delete_pairs(conn, bulk, pairs)
            for i, run in enumerate(runs):
                if task is not None:
                    task.progress(i / max(len(runs), 1), f"写入 {run.layer_a} × {run.layer_b}")
                _insert_rows(conn, bulk, run.register, srs)
            _finish_store(conn, project, runs, rules)
            _update_extent(conn)
    dt = time.perf_counter() - t0
    for run in runs:
        run.seconds_write = dt / max(len(runs), 1)
    return dt


def _finish_store(conn: sqlite3.Connection, project: Project, runs: list[ConflictRun],
                  rules: RuleTable) -> None:
    for run in runs:
        fp = (_fingerprint(conn, run.layer_a), _fingerprint(conn, run.layer_b))
        _upsert_run(conn, run, project, _run_counts(run.register, rules), fp)
    project._audit(conn, "conflicts.detect", ", ".join(
        f"{r.layer_a}×{r.layer_b}" for r in runs),
        {"rule_version": rules.version_id,
         "runs": [{"a": r.layer_a, "b": r.layer_b, **_run_counts(r.register, rules)}
                  for r in runs]})


def _pairs_where(pairs: Sequence[tuple[str, str]]) -> tuple[str, list[str]]:
    where = " OR ".join('("layer_a" = ? AND "layer_b" = ?) OR ("layer_a" = ? AND '
                        '"layer_b" = ?)' for _ in pairs) or "0"
    return where, [x for a, b in pairs for x in (a, b, b, a)]


def _as_multipolygons(geoms: np.ndarray) -> np.ndarray:
    out = np.asarray(geoms, dtype=object).copy()
    poly = shapely.get_type_id(out) == 3
    if poly.any():
        out[poly] = shapely.multipolygons(out[poly], indices=np.arange(int(poly.sum())))
    return out


def _swap_register(project: Project, runs: list[ConflictRun], rules: RuleTable,
                   keep_except: list[tuple[str, str]] | None) -> None:
    """Write the complete new register with GDAL under a temporary name, then swap it in
    (with the run records and the audit entry) in one transaction. ``keep_except``: the
    current rows of every other pair are carried over."""
    import pyogrio

    frames = [r.register for r in runs]
    if keep_except is not None:
        def lit(v: str) -> str:  # pyogrio takes an SQL where clause, not bound parameters
            return "'" + v.replace("'", "''") + "'"

        sql_where = " OR ".join(
            f"(layer_a = {lit(a)} AND layer_b = {lit(b)}) OR "
            f"(layer_a = {lit(b)} AND layer_b = {lit(a)})" for a, b in keep_except)
        old = pyogrio.read_dataframe(project.gpkg, layer=REGISTER_TABLE,
                                     where=f"NOT ({sql_where})", use_arrow=True)
        frames.append(old)
    frames = [f[[*_REG_NAMES, f.geometry.name]].rename(columns={f.geometry.name: "geometry"})
              .set_geometry("geometry") for f in frames]
    frame = frames[0].copy() if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    frame = frame.set_geometry(gpd.GeoSeries(_as_multipolygons(frame.geometry.to_numpy()),
                                             index=frame.index, crs=project.epsg))
    for c, t in REGISTER_COLUMNS:
        if t == "INTEGER" and frame[c].dtype != np.int64:
            frame[c] = frame[c].astype(np.int64)
        elif t == "REAL" and frame[c].dtype != np.float64:
            frame[c] = frame[c].astype(np.float64)
    frame.insert(0, "fid", np.arange(1, len(frame) + 1, dtype=np.int64))
    tmp = f"mp_tmp_{uuid.uuid4().hex[:12]}"
    pyogrio.write_dataframe(frame, project.gpkg, layer=tmp, driver="GPKG",
                            geometry_type="MultiPolygon", use_arrow=True,
                            layer_options={"SPATIAL_INDEX": "YES", "FID": "fid"})
    try:
        with project.transaction() as conn:
            if table_exists(conn, REGISTER_TABLE):
                drop_gpkg_table(conn, REGISTER_TABLE)
            rename_gpkg_table(conn, tmp, REGISTER_TABLE)
            conn.execute("UPDATE gpkg_contents SET description = ? WHERE table_name = ?",
                         ("multiplan conflict register (差异图斑)", REGISTER_TABLE))
            for name, sql in _REGISTER_INDEXES.items():
                conn.execute(sql.format(name=name, table=REGISTER_TABLE))
            _create_meta_tables(conn)
            _write_rules(conn, rules)
            _finish_store(conn, project, runs, rules)
    except BaseException:
        with contextlib.suppress(Exception), project.transaction() as conn:
            drop_gpkg_table(conn, tmp)
        raise


def _guard_register_write(project: Project) -> None:
    """The register is what the committee reviews and what was published: it is not
    rewritten in review mode nor after publication."""
    project.guard_analysis("mp_conflicts", "运行冲突检测并改写差异图斑登记表",
                             "detecting conflicts and rewriting the conflict register")


def detect_conflicts(project: Project, layer_a: str, layer_b: str, *,
                     task: Task | None = None, write: bool = True,
                     threads: int = 2) -> ConflictRun:
    """Detect conflicts between ``layer_a`` and ``layer_b`` and store them in the register
    (replacing the rows of this pair). This is what the CLI and the GUI call."""
    if write:
        _guard_register_write(project)
    task = ensure_task(task)
    rules = load_rules()
    run = compute_conflicts(project, layer_a, layer_b, task=task.sub(0.0, 0.9 if write else 1.0),
                            rules=rules, threads=threads)
    if write:
        task.progress(0.9, "写入差异图斑登记表")
        _store_runs(project, [run], rules)
        task.progress(1.0, "完成")
    return run


def detect_all(project: Project, task: Task | None = None, *, write: bool = True,
               threads: int = 2) -> list[ConflictRun]:
    """Check every meaningful layer pair (:func:`meaningful_pairs`) and store all runs in
    one transaction."""
    if write:
        _guard_register_write(project)
    task = ensure_task(task)
    rules = load_rules()
    pairs = meaningful_pairs(project, rules)
    townships = load_townships(project)
    counts = {r.name: max(r.feature_count or 1, 1) for r in project.layers()}
    weights = np.asarray([counts.get(a, 1) + counts.get(b, 1) for a, b in pairs], float)
    edges = np.concatenate([[0.0], np.cumsum(weights)]) / max(weights.sum(), 1.0) * 0.9
    cache: dict[str, LayerData] = {}
    runs = []
    for i, (a, b) in enumerate(pairs):
        sub = task.sub(float(edges[i]), float(edges[i + 1]))
        for name in (a, b):
            if name not in cache:
                cache[name] = load_layer_data(project, name)
        la, lb = cache[a], cache[b]
        runs.append(compute_conflicts(project, la, lb, task=sub, rules=rules,
                                      townships=townships, threads=threads))
    if write and runs:
        task.progress(0.9, "写入差异图斑登记表")
        _store_runs(project, runs, rules)
    task.progress(1.0, "完成")
    return runs


# =========================================================================== incremental

def _rtree_candidates(conn: sqlite3.Connection, table: str, bounds: np.ndarray) -> np.ndarray:
    geom_col = _geometry_column(conn, table)
    rtree = f"rtree_{table}_{geom_col}"
    out: set[int] = set()
    q = (f'SELECT id FROM "{rtree}" WHERE minx <= ? AND maxx >= ? AND miny <= ? '
         f'AND maxy >= ?')
    for x0, y0, x1, y1 in bounds.tolist():
        out.update(r[0] for r in conn.execute(q, (x1, x0, y1, y0)))
    return np.asarray(sorted(out), dtype=np.int64)


def read_runs(project: Project) -> list[dict[str, Any]]:
    """The stored run records (one per layer pair)."""
    with contextlib.closing(project.connect()) as conn:
        if not table_exists(conn, RUNS_TABLE):
            return []
        rows = conn.execute(f'SELECT * FROM "{RUNS_TABLE}" ORDER BY "fid"').fetchall()
    out = []
    for r in rows:
        d = dict(r)
        d["settings"] = json.loads(d.get("settings") or "{}")
        d["failures"] = json.loads(d.get("failures") or "[]")
        out.append(d)
    return out


def recheck(project: Project, layer: str, *, changed: Iterable[int] = (),
            added: Iterable[int] = (), deleted: Iterable[int] = (),
            task: Task | None = None, write: bool = True,
            threads: int = 1) -> list[ConflictRun]:
    """Re-check conflicts after features of ``layer`` were edited (already saved to the
    project): ``changed`` (geometry or attributes), ``added`` and ``deleted`` fids.

    For every stored run involving ``layer``, only the edited features are overlaid with
    their R-tree candidates in the other layer; their old register rows are replaced in one
    transaction and the rest of the register is kept. The result equals a full rerun.
    Returns one incremental :class:`ConflictRun` per affected pair (its ``register`` holds the
    new rows, ``seconds_compute`` / ``seconds_write`` the two phases).

    A pair whose stored run no longer matches — another rule-table version, other sliver
    thresholds, or the *other* layer changed since (its fingerprint differs) — cannot be
    patched; it is recomputed in full instead (``kind == "full"``), in the same transaction.
    Edits to the 乡镇界 layer also need a full rerun (:func:`detect_conflicts`).
    """
    if write:
        _guard_register_write(project)
    from .overlay import overlay_intersection

    task = ensure_task(task)
    t0 = time.perf_counter()
    rules = load_rules()
    changed_a = np.asarray(sorted(set(map(int, changed))), dtype=np.int64)
    added_a = np.asarray(sorted(set(map(int, added))), dtype=np.int64)
    deleted_a = np.asarray(sorted(set(map(int, deleted))), dtype=np.int64)
    edited = np.union1d(changed_a, added_a)
    removed = np.union1d(changed_a, deleted_a)
    runs_meta = [r for r in read_runs(project) if layer in (r["layer_a"], r["layer_b"])]
    if not runs_meta:
        return []
    records = {r.name: r for r in project.layers()}  # one registry read for the whole call
    if layer not in records:
        project.layer(layer)  # raises the usual bilingual layer.not_found
    metas = {(m["layer_a"], m["layer_b"]): {k: m[k] for k in (
        "pieces", "conflicts", "slivers", "pending", "conflict_area_m2")} for m in runs_meta}
    rec = records[layer]
    thresholds = _thresholds(project)
    grid = project.setting("precision_grid_m")
    townships = None
    results: list[tuple[ConflictRun, str, np.ndarray]] = []
    stale = []
    with contextlib.closing(project.connect()) as conn:
        mine = _layer_data_by_fid(project, conn, rec, edited)
        mine_bounds = shapely.bounds(mine.geometry) if len(mine) else np.zeros((0, 4))
        for k, meta in enumerate(runs_meta):
            task.progress(k / len(runs_meta) * 0.8, f"{meta['layer_a']} × {meta['layer_b']}")
            side = "a" if meta["layer_a"] == layer else "b"
            other_name = meta["layer_b"] if side == "a" else meta["layer_a"]
            other_fp = meta["fingerprint_b"] if side == "a" else meta["fingerprint_a"]
            if (meta["rule_version"] != rules.version_id or meta["settings"] != thresholds
                    or _fingerprint(conn, other_name) != other_fp):
                stale.append(meta)
                continue
            other_rec = records[other_name]
            cand = _rtree_candidates(conn, other_name, mine_bounds)
            other = _layer_data_by_fid(project, conn, other_rec, cand)
            la, lb = (mine, other) if side == "a" else (other, mine)
            if townships is None:
                townships = load_townships(project, records=list(records.values()), conn=conn)
            res = overlay_intersection(la.geometry, lb.geometry, threads=threads,
                                       grid_size_retry=grid)
            run_id = meta["run_id"]
            frame = build_register_rows(la, lb, res, rules, townships, thresholds, run_id,
                                        project.epsg)
            failures = [{"fid_a": int(la.fid[a]), "fid_b": int(lb.fid[b]), "message": str(m)}
                        for a, b, m in getattr(res, "failures", [])]
            run = ConflictRun(run_id, meta["layer_a"], meta["layer_b"], rules.version_id,
                              frame, failures, thresholds, "incremental")
            results.append((run, side, removed))
    for meta in stale:
        full = compute_conflicts(project, meta["layer_a"], meta["layer_b"], rules=rules,
                                 townships=townships)
        full.run_id = meta["run_id"]
        full.register["run_id"] = meta["run_id"]
        results.append((full, "both", removed))
    t1 = time.perf_counter()
    for run, _, _ in results:
        run.seconds_compute = (t1 - t0) / len(results)
    if write:
        task.progress(0.85, "写回差异图斑登记表")
        _ensure_tables(project)
        srs = project.epsg  # read settings before the write lock is taken
        with project.transaction() as conn, _bulk_mode(conn) as bulk:
            _write_rules(conn, rules)
            for run, side, rm in results:
                if side == "both":  # a stale pair, recomputed in full
                    run.removed = _delete_pairs(conn, bulk, [(run.layer_a, run.layer_b)])
                    _insert_rows(conn, bulk, run.register, srs)
                    fp = (_fingerprint(conn, run.layer_a), _fingerprint(conn, run.layer_b))
                    _upsert_run(conn, run, project, _run_counts(run.register, rules), fp)
                    continue
                col = "fid_a" if side == "a" else "fid_b"
                run.removed = 0
                # run counts are kept up to date by difference: stored − removed + added
                counts = dict(metas[(run.layer_a, run.layer_b)])
                for chunk in _chunks(rm.tolist(), 900):
                    where = (f'"layer_a" = ? AND "layer_b" = ? AND "{col}" IN '
                             f'({", ".join("?" for _ in chunk)})')
                    params = (run.layer_a, run.layer_b, *chunk)
                    gone = _counts_where(conn, where, params, rules)
                    for k in counts:
                        counts[k] -= gone[k]
                    run.removed += _delete_rows(conn, bulk, where, params)
                _insert_rows(conn, bulk, run.register, srs)
                for k, v in _run_counts(run.register, rules).items():
                    counts[k] += v
                fp = (_fingerprint(conn, run.layer_a), _fingerprint(conn, run.layer_b))
                _upsert_run(conn, run, project, counts, fp)
            if any(sd == "both" for _, sd, _ in results):
                _update_extent(conn)
            else:
                grown = [shapely.bounds(r.register.geometry.to_numpy()) for r, _, _ in results]
                _update_extent(conn, grow=np.concatenate([np.zeros((0, 4)), *grown]))
            project._audit(conn, "conflicts.recheck", layer,
                           {"changed": changed_a.tolist()[:200], "added": added_a.tolist()[:200],
                            "deleted": deleted_a.tolist()[:200],
                            "pairs": [f"{r.layer_a}×{r.layer_b}" for r, _, _ in results],
                            "rule_version": rules.version_id})
        t2 = time.perf_counter()
        for run, _, _ in results:
            run.seconds_write = (t2 - t1) / len(results)
    task.progress(1.0, "完成")
    return [r for r, _, _ in results]


# =========================================================================== external entries

#: Register columns an external frame must carry (the rest get defaults, see
#: :func:`replace_external_entries`).
_EXTERNAL_REQUIRED = ("conflict_id", "conflict_type", "severity", "layer_a", "fid_a",
                      "layer_b", "area_m2")
_SOURCE = re.compile(r"[A-Z][A-Z0-9]{1,5}")


def _source_where(source: str) -> tuple[str, list[str]]:
    """Rows of an external source: ids ``<source>-…`` (a range on the unique id index;
    ``.`` follows ``-`` in byte order)."""
    return '"conflict_id" >= ? AND "conflict_id" < ?', [f"{source}-", f"{source}."]


def ensure_register(project: Project) -> None:
    """Create the register tables if needed. Call it before opening the transaction that
    passes its connection to :func:`replace_external_entries` (creating the feature table
    is GDAL's job, on its own connection)."""
    _ensure_tables(project)


def _external_rows(source: str, frame: gpd.GeoDataFrame, rule_version: str, run_id: str,
                   rules: RuleTable) -> gpd.GeoDataFrame:
    missing = [c for c in _EXTERNAL_REQUIRED if c not in frame.columns]
    if missing:
        raise ConflictError("conflicts.external_columns", f"外部登记条目缺少列：{missing}",
                            f"external register entries lack the columns {missing}")
    ids = frame["conflict_id"].astype(str)
    if not ids.str.startswith(f"{source}-").all() or ids.duplicated().any():
        raise ConflictError("conflicts.external_ids",
                            f"外部登记条目的编号须唯一且以 {source}- 开头",
                            f"external entry ids must be unique and start with {source}-")
    bad_sev = sorted(set(frame["severity"].astype(str)) - set(rules.severities))
    if bad_sev:
        raise ConflictError("conflicts.external_severity", f"未知的程度 {bad_sev}",
                            f"unknown severities {bad_sev} (the rule table's words: "
                            f"{', '.join(rules.severities)})")
    geoms = frame.geometry.to_numpy()
    if len(geoms) and not (np.isin(shapely.get_type_id(geoms), (3, 6))
                           & ~shapely.is_empty(geoms)).all():
        raise ConflictError("conflicts.external_geometry", "外部登记条目的几何须为非空面",
                            "external entries need non-empty polygonal geometries")
    n = len(frame)

    def get(c: str, default: Any) -> pd.Series:
        if c in frame.columns:
            return pd.Series(frame[c].to_numpy(), dtype=object)
        return pd.Series([default] * n, dtype=object)

    area = frame["area_m2"].to_numpy(dtype=np.float64)
    perim = shapely.length(geoms) if n else np.zeros(0)
    data: dict[str, Any] = {c: get(c, None) for c in _REG_NAMES}
    data.update({
        "fid_a": frame["fid_a"].to_numpy(dtype=np.int64),
        "fid_b": np.zeros(n, np.int64),  # a raster result has no feature ids
        "class_a": get("class_a", None).where(get("class_a", None).notna(), get("name_a", None)),
        "class_b": get("class_b", None).where(get("class_b", None).notna(), get("name_b", None)),
        "rule_id": get("rule_id", None).where(get("rule_id", None).notna(),
                                              frame["conflict_type"].astype(object)),
        "resolution": get("resolution", "待定").fillna("待定"),
        "pending": np.ones(n, np.int64), "pending_reason": get("pending_reason", "rule"),
        "area_m2": area, "area_ha": area / 10_000.0, "area_mu": area / MU_M2,
        "sliver": np.zeros(n, np.int64), "sliver_reason": pd.Series([None] * n, dtype=object),
        "mean_width_m": np.divide(2 * area, perim, out=np.zeros(n), where=perim > 0),
        "contained": np.zeros(n, np.int64), "rule_version": [rule_version] * n,
        "run_id": [run_id] * n,
    })
    data["pending"] = (data["resolution"] == "待定").to_numpy().astype(np.int64)
    data["pending_reason"] = data["pending_reason"].where(data["pending"] == 1, None)
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=frame.crs))


def replace_external_entries(target: Project | sqlite3.Connection, source: str,
                             frame: gpd.GeoDataFrame, *, rule_version: str, run_id: str,
                             rules: Sequence[dict[str, Any]] = ()) -> dict[str, int]:
    """Replace the register rows of an origin other than a layer pair (the 双评价 plan
    check: ``source="AS"``) by ``frame``'s rows.

    ``target``: a connection inside the caller's transaction (the register must exist, see
    :func:`ensure_register`), or a :class:`Project` (tables ensured, own transaction).
    ``source`` is the id prefix of its entries (2–6 capitals/digits, not ``CF``); every
    ``conflict_id`` must be ``<source>-…`` and stable across reruns. ``frame`` carries at
    least ``conflict_id``, ``conflict_type``, ``severity`` (a word of the rule table),
    ``layer_a`` / ``fid_a`` (the feature), ``layer_b`` (e.g. the result raster's layer
    name), ``area_m2`` and a polygonal geometry in the project CRS; other register columns
    it carries are kept, missing ones become: ``fid_b`` 0, ``class_a`` / ``class_b`` the
    names, ``rule_id`` the type, ``resolution`` 待定 (so ``pending`` 1, reason ``rule``),
    ``sliver`` 0 (the source applied its own minimum area), ``mean_width_m`` 2A/P.
    ``rules``: optional descriptions stored in ``mp_conflict_rules`` under ``rule_version``
    (keys ``rule_id``, ``conflict_type``, ``type_name``, ``type_name_en``, ``severity``,
    ``resolution``, ``message_zh``, ``message_en``, ``basis``), used by the export.

    Pair detection and re-checks leave these rows alone (they delete by layer pair, and a
    raster is never one side of a pair); this function touches only ``<source>-`` rows.
    Returns ``{"removed": …, "inserted": …}``."""
    if not _SOURCE.fullmatch(source) or source == "CF":
        raise ConflictError("conflicts.external_source", f"来源代码 {source!r} 无效",
                            f"invalid source code {source!r} (2–6 capitals or digits, not CF)")
    rows = _external_rows(source, frame, rule_version, run_id, load_rules())
    if isinstance(target, Project):
        _ensure_tables(target)
        with target.transaction() as conn:
            return _replace_external(conn, source, rows, rule_version, rules)
    if not table_exists(target, REGISTER_TABLE):
        raise ConflictError("conflicts.no_register", "差异图斑登记表不存在",
                            "the conflict register does not exist (call ensure_register "
                            "before the transaction)")
    return _replace_external(target, source, rows, rule_version, rules)


def _replace_external(conn: sqlite3.Connection, source: str, rows: gpd.GeoDataFrame,
                      rule_version: str, rules: Sequence[dict[str, Any]]) -> dict[str, int]:
    srs = conn.execute("SELECT srs_id FROM gpkg_geometry_columns WHERE table_name = ?",
                       (REGISTER_TABLE,)).fetchone()[0]
    where, params = _source_where(source)
    with _bulk_mode(conn) as bulk:
        removed = _delete_rows(conn, bulk, where, params)
        _insert_rows(conn, bulk, rows, srs)
    if removed:
        _update_extent(conn)
    else:
        _update_extent(conn, grow=shapely.bounds(rows.geometry.to_numpy()) if len(rows)
                       else np.zeros((0, 4)))
    cols = ("rule_id", "conflict_type", "type_name", "type_name_en", "severity",
            "resolution", "message_zh", "message_en", "basis")
    if rules:
        _create_meta_tables(conn)
        names = ", ".join(f'"{c}"' for c in ("rule_version", *cols))
        conn.executemany(f'INSERT OR REPLACE INTO "{RULES_TABLE}" ({names}) VALUES '
                         f'({", ".join("?" for _ in range(len(cols) + 1))})',
                         [(rule_version, *(r.get(c) for c in cols)) for r in rules])
    return {"removed": removed, "inserted": len(rows)}


def _stored_rule_messages(project: Project, rule_ids: Iterable[str]
                          ) -> dict[str, tuple[str, str, tuple[Any, ...]]]:
    """Messages of rule ids the pair rule table does not know (external sources), from
    ``mp_conflict_rules`` (the latest row per id): id → (zh, en, rules-sheet row)."""
    ids = sorted({str(r) for r in rule_ids if r})
    if not ids:
        return {}
    with contextlib.closing(project.connect()) as conn:
        if not table_exists(conn, RULES_TABLE):
            return {}
        got = conn.execute(
            f'SELECT "rule_id", "conflict_type", "type_name", "severity", "resolution", '
            f'"message_zh", "message_en", "basis" FROM "{RULES_TABLE}" WHERE "rule_id" IN '
            f'({", ".join("?" for _ in ids)}) ORDER BY "fid"', ids).fetchall()
    return {r[0]: (r[5] or r[2] or "", r[6] or "", tuple(r)) for r in got}


# =========================================================================== reading, pivots

def read_register(project: Project, layer_a: str | None = None,
                  layer_b: str | None = None, *, source: str | None = None
                  ) -> gpd.GeoDataFrame:
    """The stored register (optionally one pair, in either order, or the rows of one
    external ``source``, see :func:`replace_external_entries`), sorted by conflict id."""
    import pyogrio

    with contextlib.closing(project.connect()) as conn:
        if not table_exists(conn, REGISTER_TABLE):
            cols = {c: [] for c in _REG_NAMES}
            return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=project.epsg))
    where = None
    if layer_a and layer_b:
        qa, qb = layer_a.replace("'", "''"), layer_b.replace("'", "''")
        where = (f"(layer_a = '{qa}' AND layer_b = '{qb}') OR "
                 f"(layer_a = '{qb}' AND layer_b = '{qa}')")
    if source is not None:
        if not _SOURCE.fullmatch(source):
            raise ConflictError("conflicts.external_source", f"来源代码 {source!r} 无效",
                                f"invalid source code {source!r}")
        rng = f"conflict_id >= '{source}-' AND conflict_id < '{source}.'"
        where = rng if where is None else f"({where}) AND {rng}"
    # attributes, then the geometry decoded in slices: one shapely.from_wkb call over a
    # county's register (170k rows) holds the GIL for ≈0.7 s, which froze the window while
    # its review panel reloaded in a worker thread
    attrs = pyogrio.read_dataframe(project.gpkg, layer=REGISTER_TABLE, where=where,
                                   use_arrow=True, read_geometry=False)
    meta, table = pyogrio.read_arrow(project.gpkg, layer=REGISTER_TABLE, columns=[],
                                     where=where)
    wkb = table[meta["geometry_name"] or "wkb_geometry"].to_numpy(zero_copy_only=False)
    geoms = np.empty(len(wkb), dtype=object)
    for i in range(0, len(wkb), _WKB_SLICE):
        geoms[i:i + _WKB_SLICE] = shapely.from_wkb(wkb[i:i + _WKB_SLICE])
    gdf = gpd.GeoDataFrame(attrs, geometry=gpd.GeoSeries(geoms, index=attrs.index,
                                                         crs=project.epsg))
    gdf = gdf.sort_values("conflict_id", kind="stable").reset_index(drop=True)
    return gdf


#: geometries decoded per shapely.from_wkb call when reading the register (≈20 ms each)
_WKB_SLICE = 4096


def register_summary(register: pd.DataFrame, rules: RuleTable | None = None) -> dict[str, Any]:
    """Headline numbers: slivers out; conflicts = severities marked headline (冲突, 警告)."""
    rules = rules or load_rules()
    if not len(register):
        return {"pieces": 0, "area_ha": 0.0, "conflicts": 0, "conflict_area_ha": 0.0,
                "pending": 0, "slivers": 0, "sliver_area_ha": 0.0, "slivers_by_reason": {},
                "by_severity": {}, "by_type": {}, "rule_version": rules.version_id}
    sl = register["sliver"].to_numpy().astype(bool)
    main = register.loc[~sl]
    head = _headline_mask(main["severity"], rules)
    by_sev = {str(k): {"count": len(g), "area_ha": round(float(g["area_ha"].sum()), 4)}
              for k, g in main.groupby("severity", sort=False)}
    by_type = {str(k): {"count": len(g), "area_ha": round(float(g["area_ha"].sum()), 4),
                        "name": str(g["type_name"].iloc[0])}
               for k, g in main.groupby("conflict_type", sort=True)}
    slv = register.loc[sl]
    by_reason = {str(k): {"count": len(g), "area_ha": round(float(g["area_ha"].sum()), 4)}
                 for k, g in slv.groupby("sliver_reason", sort=True)}
    return {"pieces": len(register), "area_ha": round(float(main["area_ha"].sum()), 4),
            "conflicts": int(head.sum()),
            "conflict_area_ha": round(float(main["area_ha"].to_numpy()[head].sum()), 4),
            "pending": int(main["pending"].to_numpy().astype(bool).sum()),
            "slivers": int(sl.sum()),
            "sliver_area_ha": round(float(register.loc[sl, "area_ha"].sum()), 4),
            "slivers_by_reason": by_reason, "by_severity": by_sev, "by_type": by_type,
            "rule_version": rules.version_id}


def pivot_tables(register: pd.DataFrame, rules: RuleTable | None = None
                 ) -> dict[str, pd.DataFrame]:
    """Pivot tables over the non-sliver rows, areas in 公顷, each with a 合计 row/column:

    * ``class_x_class``: level-1 class of A (rows) × of B (columns);
    * ``by_township``: township (rows) × severity (columns);
    * ``by_type_severity``: conflict type (rows) × severity (columns).
    """
    rules = rules or load_rules()
    main = register.loc[~register["sliver"].to_numpy().astype(bool)] if len(register) else \
        register
    sev_order = sorted(rules.severities, key=lambda s: -rules.severities[s]["rank"])
    out = {}
    def txt(c: str) -> pd.Series:
        return main[c].astype(object).fillna("").astype(str)

    frame = pd.DataFrame({
        "class_a": txt("class_a").to_numpy(), "class_b": txt("class_b").to_numpy(),
        "township": txt("township").replace("", "（县域外）").to_numpy(),
        "type": (txt("conflict_type") + " " + txt("type_name")).to_numpy(),
        "severity": txt("severity").to_numpy(),
        "area_ha": main["area_ha"].astype(float).to_numpy()})
    for key, rows, cols, order in (("class_x_class", "class_a", "class_b", None),
                                   ("by_township", "township", "severity", sev_order),
                                   ("by_type_severity", "type", "severity", sev_order)):
        p = pd.pivot_table(frame, index=rows, columns=cols, values="area_ha", aggfunc="sum",
                           fill_value=0.0, margins=True, margins_name="合计")
        if order is not None:
            present = [s for s in order if s in p.columns]
            p = p[[*present, "合计"]] if "合计" in p.columns else p[present]
        p.index.name = {"class_a": "A 类", "township": "乡镇", "type": "类型"}[rows]
        p.columns.name = {"class_b": "B 类", "severity": "程度"}[cols]
        out[key] = p
    return out


def export_register(project: Project, out_dir: str | Path, *,
                    register: pd.DataFrame | None = None, rules: RuleTable | None = None,
                    xlsx_all_rows: bool = False) -> dict[str, Path]:
    """Export the register: ``conflict_register.csv`` (every row, UTF-8 with BOM so Excel
    reads the Chinese; codes stay text) and ``conflict_register.xlsx`` for the review
    committee: 说明 (rule-table version, thresholds, how areas and townships are computed),
    the 差异图斑 sheet, the three pivots (公顷) and the rules. The 差异图斑 sheet lists the
    rows whose severity is not 一致 (slivers included, flagged); consistent pieces are in
    the CSV and the GeoPackage, and in the sheet too with ``xlsx_all_rows=True`` (openpyxl
    writes ~10⁴ rows per few seconds, so a county's full register does not belong there).
    Returns the paths written."""
    import openpyxl
    from openpyxl.utils import get_column_letter

    rules = rules or load_rules()
    reg = register if register is not None else read_register(project)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    geom = reg.geometry.name if isinstance(reg, gpd.GeoDataFrame) else None
    table = pd.DataFrame(reg.drop(columns=[geom]) if geom else reg)
    msgs = {r.id: (r.message_zh, r.message_en) for r in rules.rules}
    external = _stored_rule_messages(
        project, set(table["rule_id"].dropna().astype(str)) - set(msgs)) if len(table) else {}
    msgs.update({k: v[:2] for k, v in external.items()})
    table["message_zh"] = table["rule_id"].map(lambda r: msgs.get(r, ("未匹配任何规则", ""))[0])
    table["message_en"] = table["rule_id"].map(
        lambda r: msgs.get(r, ("", "no rule matched"))[1])
    csv_path = out / "conflict_register.csv"
    table.to_csv(csv_path, index=False, encoding="utf-8-sig")
    xlsx_path = out / "conflict_register.xlsx"
    pivots = pivot_tables(reg, rules)
    summary = register_summary(reg, rules)
    th = _thresholds(project)
    sheet_rows = table if xlsx_all_rows else table[table["severity"] != "一致"]
    info = [
        ("项目 item", "值 value"),
        ("县 county", project.county),
        ("规则表版本 rule table", rules.version_id),
        ("坐标系 CRS", f"EPSG:{project.epsg}"),
        ("面积 area", ("平面面积（项目坐标系）/ planar in the project CRS; "
                    "公顷 = m²/10000; 1 亩 = 10000/15 m²")),
        ("碎片阈值 sliver area", f"{th['sliver_max_area_m2']} m²"),
        ("碎片阈值 mean width", f"{th['sliver_max_mean_width_m']} m (2A/P)"),
        ("图斑数 pieces", summary["pieces"]),
        ("冲突 conflicts (冲突+警告, 不含碎片)", summary["conflicts"]),
        ("冲突面积 conflict area (公顷)", summary["conflict_area_ha"]),
        ("碎片 slivers (不计入统计 not in the statistics)", summary["slivers"]),
        ("乡镇 township", ("图斑代表点所在乡镇 / township holding the piece's representative "
                        "point")),
        ("差异图斑表 sheet rows", "全部图斑 / every piece" if xlsx_all_rows else
         "程度非“一致”的图斑（含碎片，已标记）；全部图斑见 CSV / pieces whose severity is "
         "not 一致 (slivers flagged); every piece is in the CSV"),
        ("导出时间 exported", _now()),
    ]
    wb = openpyxl.Workbook(write_only=True)

    def sheet(title: str, rows: Iterable[Sequence[Any]], widths: Sequence[int] = ()) -> None:
        ws = wb.create_sheet(title)
        for i, w in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(i)].width = w
        for row in rows:
            ws.append([None if (isinstance(v, float) and math.isnan(v)) else
                       (v.item() if isinstance(v, np.generic) else v) for v in row])

    def frame_rows(df: pd.DataFrame, index_name: str | None = None) -> Iterable[list[Any]]:
        if index_name is None:
            yield list(df.columns)
            body = df.astype(object).where(df.notna(), None)
            yield from (list(r) for r in body.itertuples(index=False, name=None))
        else:
            yield [f"{df.index.name} \\ {df.columns.name}", *map(str, df.columns)]
            for idx, r in zip(df.index, df.to_numpy(), strict=True):
                yield [str(idx), *(float(v) for v in r)]

    sheet("说明", info, (36, 90))
    sheet("差异图斑", frame_rows(sheet_rows))
    sheet("类×类(公顷)", frame_rows(pivots["class_x_class"], "x"), (20,))
    sheet("乡镇(公顷)", frame_rows(pivots["by_township"], "x"), (20,))
    sheet("类型×程度(公顷)", frame_rows(pivots["by_type_severity"], "x"), (44,))
    sheet("规则", [("rule_id", "type", "type_name", "severity", "resolution", "message_zh",
                  "message_en", "basis")] + [
        (r.id, r.type, rules.types[r.type]["zh"], r.severity, r.resolution, r.message_zh,
         r.message_en, r.basis) for r in rules.rules] + [v[2] for v in external.values()])
    wb.save(xlsx_path)
    return {"csv": csv_path, "xlsx": xlsx_path}


# =========================================================================== merged 一张图

@dataclass
class MergedMap:
    frame: gpd.GeoDataFrame
    layers: list[str]
    rule_version: str
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        f = self.frame
        return {"layers": self.layers, "pieces": len(f),
                "area_ha": round(float(f["area_m2"].sum() / 1e4), 4) if len(f) else 0.0,
                "pending": int(f["pending"].sum()) if len(f) else 0,
                "pending_area_ha": round(float(f.loc[f["pending"] == 1, "area_m2"].sum() / 1e4),
                                         4) if len(f) else 0.0,
                "rule_version": self.rule_version}


_MERGE_ROLES = ("eco_redline", "basic_farmland", "urban_boundary", "spatial_plan",
                "land_use_plan", "urban_plan", "forest_plan", "current_use")


def _difference_groups(base: np.ndarray, sub: np.ndarray, group: np.ndarray,
                       sub_area: np.ndarray) -> np.ndarray:
    """For each i: base[i] minus the union of sub[group == i]. The pieces in ``sub`` are
    parts of ``base[i]``; where their areas add up to base[i]'s area the remainder is empty
    and no difference is computed."""
    out = base.copy()
    if not len(group):
        return out
    covered = np.bincount(group, weights=sub_area, minlength=len(base))
    full = covered >= shapely.area(base) * (1.0 - 1e-9)
    out[full] = None
    todo = ~full[group]
    group, sub = group[todo], sub[todo]
    if not len(group):
        return out
    order = np.argsort(group, kind="stable")
    g, s = group[order], sub[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    ends = np.r_[starts[1:], len(g)]
    sizes = ends - starts
    small = sizes <= 8
    if small.any():
        idx = np.flatnonzero(small)
        width = int(sizes[idx].max())
        mat = np.full((len(idx), width), None, dtype=object)
        for j in range(width):
            has = sizes[idx] > j
            mat[has, j] = s[starts[idx[has]] + j]
        unions = shapely.union_all(mat, axis=1)
        tgt = g[starts[idx]]
        out[tgt] = shapely.difference(base[tgt], unions)
    for k in np.flatnonzero(~small):
        i = g[starts[k]]
        out[i] = shapely.difference(base[i], shapely.union_all(s[starts[k]:ends[k]]))
    return out


def _polygonal_only(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reduce each geometry to its polygonal part (differences can leave lines and points
    in a GeometryCollection); returns the kept geometries and their positions."""
    t = shapely.get_type_id(geoms)
    ok = np.isin(t, (3, 6))
    if ok.all():
        return geoms, np.arange(len(geoms))
    out = geoms.copy()
    bad = np.flatnonzero(~ok)
    parts, idx = shapely.get_parts(geoms[bad], return_index=True)
    sub, sub_idx = shapely.get_parts(parts, return_index=True)  # flatten nested multis
    idx = idx[sub_idx]
    poly = shapely.get_type_id(sub) == 3
    good = np.unique(idx[poly])
    out[bad] = None
    if len(good):
        out[bad[good]] = shapely.multipolygons(sub[poly],
                                               indices=np.searchsorted(good, idx[poly]))
    keep = np.flatnonzero(~shapely.is_missing(out))
    return out[keep], keep


def build_merged_map(project: Project, layers: Sequence[str] | None = None, *,
                     task: Task | None = None, write: bool = True,
                     min_area_m2: float = 0.01) -> MergedMap:
    """The proposed merged 一张图: the union of ``layers`` (default: every control line, plan,
    forest plan and 现状 layer), each piece carrying its parents. A piece takes the class of
    the highest-precedence parent whose class every pairwise rule decision with the other
    parents upholds (the pair's proposed class, see :meth:`RuleTable.decide`: a red line
    overrules construction, 永久基本农田 supplies 耕地, C1 takes the 城规 layout …). A piece is
    待定 when any pair of its parents matches a rule whose resolution is 待定 (the proposal is
    still shown), or when no class survives (e.g. construction inside the red line). 现状
    fills the county where no plan speaks. Remainders under ``min_area_m2`` (noding dust) are
    dropped. Written to ``mp_merged`` (a GeoPackage feature table; not a registered layer, so
    it never feeds back into :func:`detect_all`)."""
    if write:
        _guard_register_write(project)
    from .overlay import overlay_intersection

    task = ensure_task(task)
    t0 = time.perf_counter()
    rules = load_rules()
    if layers is None:
        recs = [r for r in project.layers() if r.kind == "vector" and _polygonal(r)
                and r.role in _MERGE_ROLES]
    else:
        recs = [project.layer(n) for n in layers]
    recs.sort(key=lambda r: rules.rank(r.role, r.level), reverse=True)
    if not recs:
        raise ConflictError("conflicts.no_layers", "没有可合并的规划图层",
                            "no plan layers to merge", path=project.gpkg)
    datas = [load_layer_data(project, r.name) for r in recs]
    # pieces: geometry + one column per layer holding the parent position (-1: none)
    geoms = datas[0].geometry.copy()
    parents = np.full((len(geoms), len(datas)), -1, dtype=np.int64)
    parents[:, 0] = np.arange(len(geoms))
    for k in range(1, len(datas)):
        task.progress(k / len(datas) * 0.8, f"合并 {datas[k].name}")
        d = datas[k]
        res = overlay_intersection(geoms, d.geometry, task=task.sub(
            (k - 1) / len(datas) * 0.8, k / len(datas) * 0.8), threads=2)
        ai, bi = np.asarray(res.a_idx), np.asarray(res.b_idx)
        inter = np.asarray(res.geometry, dtype=object)
        ia = np.asarray(res.area, dtype=np.float64)
        rest_a = _difference_groups(geoms, inter, ai, ia)
        rest_b = _difference_groups(d.geometry, inter, bi, ia)
        new_geoms = [inter, rest_a, rest_b]
        pa = parents[ai].copy()
        pa[:, k] = bi
        pb = np.full((len(d.geometry), len(datas)), -1, dtype=np.int64)
        pb[:, k] = np.arange(len(d.geometry))
        new_par = [pa, parents, pb]
        geoms = np.concatenate(new_geoms)
        parents = np.concatenate(new_par)
        area = shapely.area(geoms)
        keep = ~shapely.is_missing(geoms) & (np.nan_to_num(area) >= min_area_m2)
        geoms, parents = geoms[keep], parents[keep]
        geoms, kept = _polygonal_only(geoms)
        parents = parents[kept]
    task.progress(0.85, "按优先级确定地类")
    # classify each distinct combination of parent classes
    keys = np.stack([np.where(parents[:, k] >= 0, d.key[np.maximum(parents[:, k], 0)], -1)
                     for k, d in enumerate(datas)], axis=1) if len(parents) else \
        np.zeros((0, len(datas)), dtype=np.int64)
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    inv = np.asarray(inv).reshape(-1)
    decided = [_merge_decide(rules, datas, row) for row in uniq]
    area = shapely.area(geoms)

    def col(i: int) -> np.ndarray:
        arr = np.empty(len(decided), dtype=object)
        arr[:] = [d[i] for d in decided]
        return arr[inv] if len(inv) else np.empty(0, dtype=object)

    frame = gpd.GeoDataFrame({
        "mp_code": col(0), "mp_name": col(1), "source_layer": col(2),
        "pending": col(3).astype(np.int64) if len(inv) else np.empty(0, np.int64),
        "pending_types": col(4), "controls": col(5), "layers": col(6),
        "area_m2": area, "area_ha": area / 1e4, "area_mu": area / MU_M2,
        "rule_version": np.full(len(area), rules.version_id, dtype=object)},
        geometry=gpd.GeoSeries(geoms, crs=project.epsg))
    for k, d in enumerate(datas):  # the parent's fid in each layer (-1: none)
        frame[f"fid_{d.name}"] = np.where(parents[:, k] >= 0,
                                          d.fid[np.maximum(parents[:, k], 0)], -1) \
            if len(parents) else np.empty(0, np.int64)
    merged = MergedMap(frame, [d.name for d in datas], rules.version_id,
                       time.perf_counter() - t0)
    if write:
        task.progress(0.95, "写入合并一张图")
        _write_merged(project, merged)
    task.progress(1.0, "完成")
    return merged


def _merge_decide(rules: RuleTable, datas: list[LayerData], row: np.ndarray
                  ) -> tuple[Any, ...]:
    present = [Parent(d.name, d.record.role, d.record.level, d.classes[int(k)])
               for d, k in zip(datas, row, strict=True) if k >= 0]
    # datas are sorted by precedence, so ``present`` is too
    pending_types: list[str] = []
    for i in range(len(present)):
        for j in range(i + 1, len(present)):
            dec = rules.decide(present[i], present[j])
            if dec.resolution == "待定" and dec.type not in pending_types:
                pending_types.append(dec.type)
    # the first parent (in precedence order) whose class every pairwise decision upholds
    code = None
    source = None
    for p in present:
        c = rules.class_of(p)
        if c is None:
            continue
        if all(rules.decide(p, q).proposed_code == c for q in present if q is not p):
            code, source = c, p.layer
            break
    from .classification import load_scheme

    name = load_scheme(rules.scheme).name(code) if code else None
    pending = bool(pending_types) or code is None
    controls = "、".join(ROLES[p.role][0] for p in present if p.role in CONTROL_LINE_ROLES)
    return (code, name, source, int(pending), ",".join(pending_types) or None,
            controls or None, ",".join(p.layer for p in present))


def _write_merged(project: Project, merged: MergedMap) -> None:
    import pyogrio

    tmp = f"mp_tmp_{uuid.uuid4().hex[:12]}"
    frame = merged.frame.copy()
    geoms = frame.geometry.to_numpy()
    is_poly = shapely.get_type_id(geoms) == 3
    if is_poly.any():
        geoms = geoms.copy()
        k = int(is_poly.sum())
        geoms[is_poly] = shapely.multipolygons(geoms[is_poly], indices=np.arange(k))
        frame = frame.set_geometry(gpd.GeoSeries(geoms, crs=project.epsg))
    pyogrio.write_dataframe(frame, project.gpkg, layer=tmp, driver="GPKG",
                            geometry_type="MultiPolygon",
                            layer_options={"SPATIAL_INDEX": "YES", "FID": "fid"})
    try:
        with project.transaction() as conn:
            if table_exists(conn, MERGED_TABLE):
                drop_gpkg_table(conn, MERGED_TABLE)
            rename_gpkg_table(conn, tmp, MERGED_TABLE)
            conn.execute("UPDATE gpkg_contents SET description = ? WHERE table_name = ?",
                         ("multiplan proposed merged 一张图 (by precedence; 待定 flagged)",
                          MERGED_TABLE))
            project._audit(conn, "conflicts.merge", MERGED_TABLE, merged.summary())
    except BaseException:
        with contextlib.suppress(Exception), project.transaction() as conn:
            drop_gpkg_table(conn, tmp)
        raise


def read_merged(project: Project) -> gpd.GeoDataFrame:
    import pyogrio

    return pyogrio.read_dataframe(project.gpkg, layer=MERGED_TABLE, use_arrow=True)
