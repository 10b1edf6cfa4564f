"""Can Qt start a window here? Asked before ``QApplication``, because Qt cannot be asked
after: a platform plugin that fails to load aborts the process ("Reinstalling the
application may fix this problem"), which no Python code can catch.

The rule: on Linux with the X11 platform (``xcb``, Qt's default), run ``ldd`` on the
platform plugin and name every system library it cannot find, with the Debian/Ubuntu
package that brings it (Qt ≥ 6.5 also needs ``libxcb-cursor0``, which it loads at run
time, so it is looked up on its own); with no display at all, say so. Anything else
(offscreen, Wayland, Windows, macOS, an unknown layout) is left to Qt. The libraries
are listed in docs/gui.md.
"""

from __future__ import annotations

import ctypes.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

#: shared library (soname) → the Debian/Ubuntu package that provides it
PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}
#: what docs/gui.md tells a Debian/Ubuntu user to install once
ALL_PACKAGES = sorted(set(PACKAGES.values()))

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


def missing_from_ldd(ldd_output: str) -> list[str]:
    """The sonames ``ldd`` reports as ``not found`` (each once, in order)."""
    seen: dict[str, None] = {}
    for name in _NOT_FOUND.findall(ldd_output):
        seen.setdefault(name, None)
    return list(seen)


def install_hint(sonames: list[str]) -> str:
    packages = sorted({PACKAGES.get(s, "") for s in sonames} - {""})
    unknown = [s for s in sonames if s not in PACKAGES]
    hint = f"sudo apt-get install {' '.join(packages)}" if packages else ""
    if unknown:
        hint += ("; " if hint else "") + "find the package of " + ", ".join(unknown)
        hint += " with your distribution's package search (e.g. apt-file search NAME)"
    return hint


def _plugin_dir() -> Path | None:
    try:
        from qtpy import QtCore  # QtCore loads no platform plugin
    except Exception:
        return None
    try:
        path = QtCore.QLibraryInfo.path(QtCore.QLibraryInfo.LibraryPath.PluginsPath)
    except AttributeError:  # Qt 5
        path = QtCore.QLibraryInfo.location(QtCore.QLibraryInfo.PluginsPath)
    return Path(path) / "platforms"


def _ldd(path: Path) -> str:
    exe = shutil.which("ldd")
    if exe is None:
        return ""
    result = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=30)
    return result.stdout + result.stderr


def qt_start_problem(
    env: dict[str, str] | None = None,
    platform: str = sys.platform,
    plugin_dir: Path | None = None,
    ldd=_ldd,
    find_library=ctypes.util.find_library,
) -> str | None:
    """A message naming what keeps Qt from opening a window here, or None."""
    env = dict(os.environ if env is None else env)
    if not platform.startswith("linux"):
        return None
    qpa = env.get("QT_QPA_PLATFORM", "").split(":")[0]
    if qpa and qpa != "xcb":
        return None  # offscreen, wayland, vnc, …: Qt's own business
    if not qpa and env.get("WAYLAND_DISPLAY"):
        return None
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return (
            "no display: DISPLAY is not set (no X server or Wayland session here). Run "
            "labctl gui in a desktop session, over ssh -X, or under Xvfb (xvfb-run labctl gui)"
        )
    plugin_dir = plugin_dir if plugin_dir is not None else _plugin_dir()
    if plugin_dir is None or not (plugin_dir / "libqxcb.so").exists():
        return None
    missing = missing_from_ldd(ldd(plugin_dir / "libqxcb.so"))
    if find_library("xcb-cursor") is None and "libxcb-cursor.so.0" not in missing:
        missing.append("libxcb-cursor.so.0")  # loaded at run time by Qt ≥ 6.5
    if not missing:
        return None
    return (
        "Qt cannot open a window: its X11 platform plugin needs system libraries that "
        f"are missing: {', '.join(missing)}. Install them: {install_hint(missing)} "
        "(docs/gui.md lists them all)"
    )
