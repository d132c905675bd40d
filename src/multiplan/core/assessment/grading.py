"""Grading by threshold tables, modifiers, matrices and ordered penalties (pure numpy).

Conventions (see the parameter file):

* grades are ``uint8`` 1–5 (1 best); 0 means "no data / not evaluated";
* a table with ``closed == "right"`` puts ``v`` in ``(lo, hi]`` (a value equal to a break
  takes the lower interval), with ``"left"`` in ``[lo, hi)`` (it takes the upper one);
* NaN input → grade 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

NODATA = 0


def interval_index(values: np.ndarray, breaks: list[float], closed: str) -> np.ndarray:
    """Index of the interval each value falls in (0 … len(breaks)), per ``closed``.

    ``closed == "right"`` counts the breaks strictly below ``v`` (so ``v == break`` stays in
    the lower interval), ``"left"`` counts the breaks ≤ ``v``. Float32 values are compared
    with float32 breaks, so a value stored as exactly a break equals it. NaN → 0.
    """
    v = np.asarray(values)
    if v.dtype.kind != "f":
        v = v.astype("float64")
    out = np.zeros(v.shape, dtype="uint8")
    hit = np.empty(v.shape, dtype=bool)
    cmp = np.greater if closed == "right" else np.greater_equal
    for b in np.asarray(breaks, dtype=v.dtype):
        cmp(v, b, out=hit)
        out += hit.view(np.uint8)
    return out


def grade(values: np.ndarray, table: dict[str, Any]) -> np.ndarray:
    """Grade continuous values by a factor table (``breaks``, ``grades``, ``closed``)."""
    v = np.asarray(values)
    idx = interval_index(v, table["breaks"], table["closed"])
    lut = np.asarray(table["grades"], dtype="uint8")
    out = lut[idx]
    out[~np.isfinite(v)] = NODATA
    return out


def apply_action(current: np.ndarray, where: np.ndarray, action: dict[str, Any]) -> np.ndarray:
    """Apply one action (none / add / set) to ``current`` at ``where``; clamp to 1–5.

    Cells with grade 0 (no data) are never touched.
    """
    op = action["op"]
    if op == "none":
        return current
    cur = current.astype("int16")
    w = where & (current > 0)
    if op == "add":
        cur = np.where(w, cur + int(action["value"]), cur)
    elif op == "set":
        cur = np.where(w, int(action["value"]), cur)
    cur = np.where(current > 0, np.clip(cur, 1, 5), 0)
    return cur.astype("uint8")


def apply_modifier(current: np.ndarray, values: np.ndarray, table: dict[str, Any]) -> np.ndarray:
    """Modify grades by a continuous value through a modifier table (``breaks``,
    ``actions``, ``closed``); NaN values leave the grade unchanged."""
    v = np.asarray(values)
    idx = interval_index(v, table["breaks"], table["closed"])
    finite = np.isfinite(v)
    out = current
    for i, action in enumerate(table["actions"]):
        if action["op"] == "none":
            continue
        out = apply_action(out, finite & (idx == i), action)
    return out


def lookup_matrix(rows: np.ndarray, cols: np.ndarray, table: list[list[int]]) -> np.ndarray:
    """``table[row-1][col-1]`` per cell; 0 where either side is 0."""
    m = np.zeros((6, 6), dtype="uint8")
    m[1:, 1:] = np.asarray(table, dtype="uint8")
    r = np.asarray(rows, dtype="intp")
    c = np.asarray(cols, dtype="intp")
    return m[r, c]


def apply_penalty(current: np.ndarray, step: dict[str, Any],
                  codes: np.ndarray) -> np.ndarray:
    """One ordered penalty step: for each rule, cells whose factor code is in ``when``
    (and whose current grade is in ``if_current`` when given) get the rule's action.

    The rules of one step are exclusive (a cell has one code); they are all tested against
    the grade *before* the step, so a step is one correction, not several.
    """
    before = current
    out = current.copy()
    for rule in step["rules"]:
        hit = np.isin(codes, rule["when"])
        if "if_current" in rule:
            hit &= np.isin(before, rule["if_current"])
        changed = apply_action(before, hit, rule)
        out = np.where(hit, changed, out)
    return out


def modal_grade(monthly: np.ndarray, tie: str = "worse") -> np.ndarray:
    """Modal grade over the first axis (e.g. 12 months); ties to the worse (higher) grade
    or the better one. Cells where every month is 0 get 0."""
    g = np.asarray(monthly, dtype="uint8")
    counts = np.stack([(g == k).sum(axis=0) for k in range(1, 6)])  # (5, …)
    if tie == "worse":
        idx = 4 - np.argmax(counts[::-1], axis=0)  # argmax takes the first: reversed → worst
    else:
        idx = np.argmax(counts, axis=0)
    out = (idx + 1).astype("uint8")
    out[counts.sum(axis=0) == 0] = 0
    return out


def map_classes(grades: np.ndarray, mapping: dict[str, int]) -> np.ndarray:
    """Map 5-level grades onto classes with a ``{"1": c, …, "5": c}`` mapping (0 stays 0)."""
    lut = np.zeros(256, dtype="uint8")
    for k, v in mapping.items():
        lut[int(k)] = int(v)
    return lut[np.asarray(grades, dtype="uint8")]
