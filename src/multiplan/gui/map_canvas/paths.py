"""numpy coordinates → ``QPainterPath`` without a per-point Python loop.

A coordinate array is written into a buffer laid out as Qt's ``QDataStream`` serialisation of
a ``QPainterPath`` (element count; type, x, y per element; the current-subpath start; the fill
rule) and Qt reads the path back in C++ (platform notes: about 7× faster than building one
``QPointF`` at a time). Records are built once per chunk of features; a path for a slice of
them is ``head + records[a:b].tobytes() + tail``, and the paths of many (chunk, class) pairs
are written into one buffer and read back through one stream (:func:`paths_from_stream`).
"""

from __future__ import annotations

import struct

import numpy as np
from PySide6.QtCore import QByteArray, QDataStream, Qt
from PySide6.QtGui import QPainterPath

#: One element of a serialised QPainterPath: qint32 type, double x, double y (big-endian).
ELEMENT = np.dtype([("type", ">i4"), ("x", ">f8"), ("y", ">f8")])
MOVE_TO, LINE_TO = 0, 1


def records(coords: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Element records for ``coords`` (n, 2): a subpath begins at each index in ``starts``."""
    rec = np.empty(len(coords), dtype=ELEMENT)
    rec["x"] = coords[:, 0]
    rec["y"] = coords[:, 1]
    rec["type"] = LINE_TO
    rec["type"][starts] = MOVE_TO
    return rec


def path_from_records(*parts: np.ndarray,
                      fill_rule: Qt.FillRule = Qt.FillRule.OddEvenFill) -> QPainterPath:
    """A QPainterPath from element records (several arrays are joined in order).

    The first record must be a move-to. An empty input gives an empty path. (The parts are
    joined as bytes: ``np.concatenate`` would turn the big-endian records native.)
    """
    path = QPainterPath()
    n = sum(len(p) for p in parts)
    if n == 0:
        return path
    head = struct.pack(">i", n)
    tail = struct.pack(">ii", 0, int(fill_rule.value))
    body = b"".join(p.astype(ELEMENT, copy=False).tobytes() for p in parts if len(p))
    return paths_from_stream(head + body + tail, 1)[0]


def paths_from_stream(buffer: bytes, count: int) -> list[QPainterPath]:
    """``count`` QPainterPaths serialised one after the other in ``buffer`` (each: element
    count, records, current-subpath start, fill rule), read through one ``QDataStream``.

    Reading many paths from one buffer saves the per-path Python and Qt set-up cost, which
    dominates for the small per-class paths of a chunk.
    """
    stream = QDataStream(QByteArray(buffer))
    out = []
    for _ in range(count):
        path = QPainterPath()
        stream >> path
        out.append(path)
    if stream.status() != QDataStream.Status.Ok or not stream.atEnd():
        raise ValueError("QPainterPath could not be read from the coordinate buffer")
    return out


def path_from_parts(coords: np.ndarray, part: np.ndarray,
                    fill_rule: Qt.FillRule = Qt.FillRule.OddEvenFill) -> QPainterPath:
    """One QPainterPath from an (n, 2) array; ``part`` labels the ring or line of each
    coordinate and a new subpath starts wherever the label changes."""
    if len(coords) == 0:
        return QPainterPath()
    starts = np.flatnonzero(np.r_[True, part[1:] != part[:-1]])
    return path_from_records(records(coords, starts), fill_rule=fill_rule)
