"""A container run's spill file: what pe-spawner read from the run's stdout/stderr (or pty),
in the order it read it — the one place the daemon reads container output from when the
spawner runs it (see the top of native/pe_spawner.c).

Format (native-endian, struct pe_spill_rec in native/pe_spawn.h): a 16-byte header
(b"PESPILL1" + 8 zero bytes), then records: u32 stream (1 stdout or the pty, 2 stderr), u32
length, u64 stream offset of the first byte (counted from the start of the run), u64 capture
time (ns since the epoch), then the bytes. A record of length 0 ends its stream. The spawner
only appends, except when the daemon asks it to drop the head: it then renames a shorter copy
over the file (a new generation; stream offsets are kept, so readers skip by offset).
A run whose streams all ended before a byte was read has no file: the spawner answers an ARM
for it with "nothing more" (SpawnerRuntime.wait_output returns None, or NO_SPILL to the first
wait of a run armed by its spawn, when the answer can only mean that).
"""
from __future__ import annotations

import os

import attrs
import struct

REC = struct.Struct("=IIQQ")
HEADER = 16
MAGIC = b"PESPILL1"
#: Bytes read per call (records are at most 64 KiB + header).
READ_MAX = 1 << 20
#: wait_output's answer to a run's first, armed wait when the run's streams all ended before a
#: byte was read: it has no spill file, and never will.
NO_SPILL = -1


@attrs.frozen
class Record:
    file_offset: int
    stream: int  # 1 stdout, 2 stderr
    offset: int  # stream offset of data[0]
    ts_ns: int
    data: bytes  # b"": the stream ended


def spill_path(directory: str, pid: int) -> str:
    return os.path.join(directory, f"output.{pid}.spill")


def read_records(fd: int, start: int, limit: int = READ_MAX) -> tuple[list[Record], int]:
    """Whole records from file offset `start` (at most about `limit` bytes) and the offset
    after the last whole one. A record still being written is left for the next call."""
    pos = max(start, HEADER)
    size = os.fstat(fd).st_size
    if size <= pos:
        return [], pos
    buf = os.pread(fd, min(size - pos, limit + REC.size + 65536), pos)
    records: list[Record] = []
    at = 0
    while at + REC.size <= len(buf):
        stream, length, offset, ts = REC.unpack_from(buf, at)
        end = at + REC.size + length
        if end > len(buf):
            break
        records.append(Record(pos + at, stream, offset, ts, bytes(buf[at + REC.size:end])))
        at = end
        if at >= limit:
            break
    return records, pos + at
