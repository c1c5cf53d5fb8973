"""What the merged view of unpacked layers holds at a path, read from the layer directories
themselves (no mount): overlayfs' rules for the layers _unpack makes, top layer first. A
whiteout (character device 0:0) hides the name below it; an opaque directory
(trusted.overlay.opaque=y) hides the directories below it; a name that is not a directory
ends the merge."""

from __future__ import annotations

import os
import stat

from ._unpack import OPAQUE_XATTR

#: lookup()'s answer for a path that goes through something other than a directory (a
#: symlinked /etc…): what it names depends on resolution inside the container.
NOT_PLAIN = "not-plain"


def _whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def lookup(layer_dirs: list[str], path: str) -> os.stat_result | str | None:
    """The lstat of `path` (container-absolute) in the merged view of `layer_dirs` (top
    first): None when nothing is there, NOT_PLAIN when a parent is not a directory."""
    parts = [p for p in path.split("/") if p]
    merging = list(layer_dirs)  # the layers whose directory at the current depth merges
    found: os.stat_result | None = None
    for depth, name in enumerate(parts):
        if found is not None and not stat.S_ISDIR(found.st_mode):
            return NOT_PLAIN
        rel = os.path.join(*parts[:depth + 1])
        found, below = None, []
        for layer in merging:
            full = os.path.join(layer, rel)
            try:
                st = os.lstat(full)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if _whiteout(st):
                break
            if found is None:
                found = st
            if not stat.S_ISDIR(st.st_mode) or not stat.S_ISDIR(found.st_mode):
                break  # a non-directory ends the merge, above or below
            below.append(layer)
            if _opaque(full):
                break
        if found is None:
            return None
        merging = below
    return found
