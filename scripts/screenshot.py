#!/usr/bin/env python3
"""Screenshot of the real app window: start Xvfb, run the app on a project under it (Qt's xcb
platform, a real X window), capture the X screen with ``xwd`` and save it as PNG.

    .venv/bin/python scripts/screenshot.py PROJECT OUT.png [--lang zh|en] [--size 1600x1000]

Needs the Debian packages xvfb and x11-apps (``make screenshot`` installs them via
scripts/bootstrap.sh). The capture is taken once the screen shows something and two grabs in a
row are identical, i.e. the window has finished drawing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import numpy as np


def read_xwd(data: bytes) -> np.ndarray:
    """Decode an xwd dump (ZPixmap, 24/32 bits per pixel, TrueColor) to an (h, w, 3) array."""
    header = np.frombuffer(data[:100], dtype=">u4")
    (header_size, version, pixmap_format, depth, width, height, _xoff, byte_order, _unit,
     _bit_order, _pad, bpp, bytes_per_line, _visual, red_mask, green_mask, blue_mask, _bits,
     _cmap_entries, ncolors) = (int(v) for v in header[:20])
    if version != 7 or pixmap_format != 2 or bpp not in (24, 32) or depth < 24:
        raise ValueError(f"unsupported xwd image (version {version}, format {pixmap_format}, "
                         f"depth {depth}, {bpp} bpp)")
    offset = header_size + ncolors * 12  # XWDColor records follow the header and name
    rows = np.frombuffer(data, dtype=np.uint8, count=height * bytes_per_line, offset=offset)
    rows = rows.reshape(height, bytes_per_line)[:, : width * (bpp // 8)]
    pix = rows.reshape(height, width, bpp // 8)
    if bpp == 24:
        pix = np.concatenate([pix, np.zeros((height, width, 1), np.uint8)], axis=2)
    values = pix.copy().view("<u4" if byte_order == 0 else ">u4")[..., 0]

    def channel(mask: int) -> np.ndarray:
        shift = (mask & -mask).bit_length() - 1
        return ((values & mask) >> shift).astype(np.uint8)

    return np.dstack([channel(red_mask), channel(green_mask), channel(blue_mask)])


def save_png(rgb: np.ndarray, path: Path) -> None:
    from PySide6.QtGui import QImage

    h, w, _ = rgb.shape
    buf = np.ascontiguousarray(rgb)
    img = QImage(buf.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not img.save(str(path)):
        raise OSError(f"could not write {path}")


def start_xvfb(size: str) -> tuple[subprocess.Popen[bytes], str]:
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{size}x24", "-nolisten", "tcp",
         "-noreset"], pass_fds=(write_fd,), stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        raise RuntimeError("Xvfb did not start")
    return proc, f":{number}"


def grab(display: str) -> np.ndarray:
    out = subprocess.run(["xwd", "-root", "-silent", "-display", display], check=True,
                         capture_output=True, timeout=30).stdout
    return read_xwd(out)


def wait_for_window(app: subprocess.Popen[bytes], display: str, timeout: float,
                    log: IO[bytes]) -> np.ndarray | None:
    """Grab the screen every second until it shows something and two grabs agree."""
    deadline = time.monotonic() + timeout
    previous = None
    while True:
        time.sleep(1.0)
        if app.poll() is not None:
            log.seek(0)
            print(f"screenshot: the app exited with {app.returncode}:\n"
                  f"{log.read().decode(errors='replace')}", file=sys.stderr)
            return None
        image = grab(display)
        drawn = image.min() != image.max()
        if drawn and previous is not None and np.array_equal(image, previous):
            return image
        previous = image if drawn else None
        if time.monotonic() > deadline:
            print("screenshot: the window did not settle in time", file=sys.stderr)
            return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("project")
    ap.add_argument("out", type=Path)
    ap.add_argument("--lang", default="zh", choices=["zh", "en"])
    ap.add_argument("--size", default="1600x1000")
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()

    for tool in ("Xvfb", "xwd"):
        if shutil.which(tool) is None:
            print(f"screenshot: {tool} not found; install: sudo apt-get install xvfb x11-apps",
                  file=sys.stderr)
            return 2
    xvfb, display = start_xvfb(args.size)
    app = None
    config = tempfile.TemporaryDirectory(prefix="multiplan-screenshot-")
    try:
        # a fresh settings folder: the default window (not the user's saved layout), and the
        # user's profile is never written
        env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb",
                   XDG_CONFIG_HOME=config.name)
        with tempfile.TemporaryFile() as log:
            app = subprocess.Popen(
                [sys.executable, "-m", "multiplan.gui.app", args.project, "--lang", args.lang,
                 "-qwindowgeometry", f"{args.size}+0+0"], env=env, stdout=log, stderr=log)
            image = wait_for_window(app, display, args.timeout, log)
        if image is None:
            return 1
        save_png(image, args.out)
        print(f"screenshot: {args.out} ({image.shape[1]}×{image.shape[0]}, display {display})")
        return 0
    finally:
        for proc in (app, xvfb):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        config.cleanup()

if __name__ == "__main__":
    sys.exit(main())
