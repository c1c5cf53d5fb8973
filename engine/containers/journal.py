"""Which part of a run's output its json-file log holds, kept so that a daemon killed at any
instant logs every byte exactly once when it reads the run's spill file again
(engine/runtime/spill.py).

Output is counted per stream in bytes from the start of the run (the spill's stream
offsets). Before each write to the log file the driver records, in <dir>/output.<pid>.pos, the
counts before and after that write with the file's inode and its sizes before and after (one
64-byte pwrite at offset 0: a kill cannot tear it). After a crash the log file tells which
of the two holds: its size is the size after (the write happened), the size before (it did
not), or something between (a torn write: cut back to the size before).
"""
from __future__ import annotations

import os
import struct

POS = struct.Struct("=8sQQQQQQQ")  # magic, before (out, err), after (out, err), ino, size before, size after
MAGIC = b"PEPOS001"
STREAMS = ("stdout", "stderr")


def positions_path(directory: str, pid: int) -> str:
    return os.path.join(directory, f"output.{pid}.pos")


class Positions:
    """The record the json-file driver writes before each write to its file. A new run's file
    is made at its first record: a run that logs nothing (no file: `recover` says the log
    holds nothing of it, which is true) costs no file."""

    def __init__(self, path: str, fresh: bool = True, stale: bool = True) -> None:
        """`fresh`: a new run (a file left by an older process with the same pid goes, unless
        `stale` is False: the caller knows no earlier run left one)."""
        self.path = path
        self._fd = -1
        if not fresh:
            self._open()
        elif stale:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def record(self, before: dict[str, int], after: dict[str, int], ino: int, size_before: int,
               size_after: int) -> None:
        if self._fd < 0:
            self._open()
        os.pwrite(self._fd, POS.pack(MAGIC, before.get("stdout", 0), before.get("stderr", 0),
                                     after.get("stdout", 0), after.get("stderr", 0),
                                     ino, size_before, size_after), 0)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def recover(pos_path: str, log_path: str, max_file: int = 1) -> dict[str, int]:
    """Blocking. The stream counts the log holds (a torn last write is cut off first)."""
    try:
        with open(pos_path, "rb") as f:
            raw = f.read(POS.size)
    except FileNotFoundError:
        raw = b""
    if len(raw) < POS.size or raw[:8] != MAGIC:
        return {"stdout": 0, "stderr": 0}
    _, bo, be, ao, ae, ino, size_before, size_after = POS.unpack(raw)
    before, after = {"stdout": bo, "stderr": be}, {"stdout": ao, "stderr": ae}
    for index in range(max(max_file, 1)):
        path = log_path if index == 0 else f"{log_path}.{index}"
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        if st.st_ino != ino:
            continue
        if st.st_size >= size_after:
            return after
        if st.st_size != size_before:
            os.truncate(path, size_before)
        return before
    return after  # the file was rotated away since: the write had happened
