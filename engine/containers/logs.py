"""Docker's json-file log driver (the API's `docker logs` frames what it reads; Docker's time
values are engine.timefmt's).

File format (one JSON object per line, exactly Docker's):

    {"log":"hello\\n","stream":"stdout","time":"2024-01-01T00:00:00.123456789Z"}

`time` is RFC3339Nano in UTC with trailing zeros trimmed, as Go writes it. A line without
"\\n" at the end of `log` is a partial line: a line longer than 16 KiB is cut into 16 KiB
pieces, and flush()/aclose() write whatever is left of an unterminated line as it is.

Rotation, like Docker: before a record is appended, if the current file has reached
max-size, rename path.(N-2)→path.(N-1) … path→path.1 (keeping max-file files in all) and
start a new empty `path`; with max-file=1 the file is truncated instead.

File IO choice: writes are serialised by one trio.Lock. A batch (everything one write() call
produced) is written straight from the event loop when it is small (≤ 16 KiB) and needs no
rotation: an append of a few KiB to the page cache is cheaper than a thread hop, and chatty
containers write many tiny batches. Bigger batches and rotations (renames) run in
`trio.to_thread.run_sync`. Readers always read through worker threads (pread), so a slow
`docker logs` of a large file never blocks the loop.

Followers are woken by a trio.Event that every write replaces (no polling). Each rotation
bumps a generation counter; a follower that reached EOF of the file it opened at generation g
knows the next file is the one created at generation g+1, now named path.(G-g-1) — so it
follows across rotations without missing records. A follower that fell more than max-file
files behind (Docker loses those records) still gets them: a rotation that would delete a
file a follower has not reached yet keeps it open ("pinned") until no follower needs it.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence

import attrs
import trio

from engine import errors
from engine.timefmt import format_rfc3339nano, parse_rfc3339_ns

__all__ = ["MAX_LINE", "STREAM_IDS", "JsonFileLogDriver", "LogRecord", "validate_options"]

MAX_LINE = 16 * 1024
"""Docker's copier buffer: a longer line is written as 16 KiB partial records."""

_DIRECT_WRITE_MAX = 16 * 1024
_READ_CHUNK = 256 * 1024
_NS = 1_000_000_000

STREAM_IDS = {"stdin": 0, "stdout": 1, "stderr": 2}

_KNOWN_OPTIONS = {"max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag"}


@attrs.frozen
class LogRecord:
    stream: str
    data: bytes
    time_ns: int
    attrs: tuple[tuple[str, str], ...] = ()  # the run's --log-opt env/labels values (docker logs --details)


# --- options ------------------------------------------------------------------------------
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_DECIMAL = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


def _parse_max_size(text: str) -> int:
    """docker/go-units FromHumanSize (decimal: 1k = 1000 bytes)."""
    text = text.strip()
    m = _SIZE_RE.match(text)
    if not m:
        raise errors.InvalidParameter(f"invalid size: '{text}'")
    try:
        number = float(m.group(1))
    except ValueError:
        raise errors.InvalidParameter(f"invalid size: '{text}'") from None
    size = int(number * _DECIMAL.get((m.group(2) or "").lower(), 1))
    if size <= 0:
        raise errors.InvalidParameter("max-size must be a positive number")
    return size


def _parse_bool(text: str) -> bool:
    """Go's strconv.ParseBool."""
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise errors.InvalidParameter(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def check_option_names(options: Mapping[str, str]) -> None:
    """Options json-file has (dockerd checks the names at create, the values at start)."""
    for key in options:
        if key not in _KNOWN_OPTIONS:
            raise errors.InvalidParameter(f"unknown log opt '{key}' for json-file log driver")


def validate_options(options: dict[str, str]) -> tuple[int, int]:
    check_option_names(options)
    for key in ("labels-regex", "env-regex"):
        if options.get(key):
            _regex(options[key])
    max_size = -1
    if options.get("max-size") not in (None, ""):
        max_size = _parse_max_size(str(options["max-size"]))
    max_file = 1
    if options.get("max-file") not in (None, ""):
        raw = str(options["max-file"]).strip()
        try:
            max_file = int(raw)
        except ValueError:
            raise errors.InvalidParameter(f'strconv.Atoi: parsing "{raw}": invalid syntax') from None
        if max_file < 1:
            raise errors.InvalidParameter("max-file cannot be less than 1")
    if options.get("compress") not in (None, ""):
        if _parse_bool(str(options["compress"]).strip()) and (max_file == 1 or max_size == -1):
            raise errors.InvalidParameter(
                "compress cannot be true when max-file is less than 2 or max-size is not set"
            )
    return max_size, max_file


def extra_attributes(options: Mapping[str, str], labels: Mapping[str, str], env: Sequence[str]) -> dict[str, str]:
    """What the labels, labels-regex, env and env-regex options pick of the container's labels
    and environment, as dockerd's logger.Info.ExtraAttributes: written with every line."""
    picked: dict[str, str] = {}
    if not any(options.get(k) for k in ("labels", "labels-regex", "env", "env-regex")):
        return picked  # the usual start: no environment parsed
    names = [n for n in (options.get("labels") or "").split(",") if n]
    picked.update((n, labels[n]) for n in names if n in labels)
    if options.get("labels-regex"):
        pattern = _regex(options["labels-regex"])
        picked.update((k, v) for k, v in labels.items() if pattern.search(k))
    variables = dict(e.split("=", 1) for e in env if "=" in e)
    names = [n for n in (options.get("env") or "").split(",") if n]
    picked.update((n, variables[n]) for n in names if n in variables)
    if options.get("env-regex"):
        pattern = _regex(options["env-regex"])
        picked.update((k, v) for k, v in variables.items() if pattern.search(k))
    return picked


def _regex(text: str) -> re.Pattern:
    try:
        return re.compile(text)
    except re.error as exc:
        raise errors.InvalidParameter(f"error parsing regexp: {exc}: `{text}`") from None


def _encode_record(stream: str, data: bytes, when_ns: int, extra: dict[str, str] | None = None) -> bytes:
    record = {"log": data.decode("utf-8", "replace"), "stream": stream}
    if extra:
        record["attrs"] = extra
    record["time"] = format_rfc3339nano(when_ns)
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def _decode_record(line: bytes) -> LogRecord | None:
    try:
        obj = json.loads(line)
        extra = obj.get("attrs") or {}
        return LogRecord(obj.get("stream", "stdout"), obj["log"].encode("utf-8"), parse_rfc3339_ns(obj["time"]),
                         tuple(sorted((str(k), str(v)) for k, v in extra.items())))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # a torn or foreign line: skip it like Docker's decoder does


# --- the driver ---------------------------------------------------------------------------
class JsonFileLogDriver:
    """One container run's json-file log. write() from the output pumps, read() for
    `docker logs` (any number of concurrent readers, following or not), aclose() at exit."""

    name = "json-file"

    def __init__(self, path: str, options: dict[str, str] | None = None, extra: dict[str, str] | None = None):
        self.path = path
        self.max_size, self.max_file = validate_options(dict(options or {}))
        self.extra = dict(extra or {})  # extra_attributes(): in every record written
        self._fh = None  # opened lazily by the first write
        self._size = 0
        self._generation = 0  # bumped by every rotation
        self._lock = trio.Lock()
        self._changed = trio.Event()
        self._tails: dict[str, bytes] = {}
        self._tail_ns: dict[str, int] = {}
        self._closed = False
        # Followers' current generations, and files rotated out of the kept set while a
        # follower still needed them (generation → open fd), so following never loses records.
        self._followers: dict[object, int] = {}
        self._pinned: dict[int, int] = {}
        # Journaled (a spilled run, engine/containers/journal.py): stream counts in the file.
        self._journal = None
        self._logged: dict[str, int] = {}
        self._tail_off: dict[str, int] = {}

    @classmethod
    def reader(cls, path: str, options: dict[str, str] | None = None) -> "JsonFileLogDriver":
        """A driver on an existing log that nobody writes to any more (stopped container):
        read(follow=True) ends at the end of the file."""
        driver = cls(path, options)
        driver._closed = True
        driver._changed.set()
        return driver

    @property
    def closed(self) -> bool:
        return self._closed

    def statistics(self) -> dict:
        return {
            "path": self.path, "size": self._size, "rotations": self._generation,
            "buffered": sum(len(t) for t in self._tails.values()), "closed": self._closed,
            "followers": len(self._followers), "pinned": len(self._pinned),
        }

    # --- writing ---
    def journal(self, positions, logged: dict[str, int]) -> None:
        """Record before each write which part of the run's streams the file holds
        (`positions`: engine.containers.journal.Positions; `logged`: what it holds now).
        Writes then pass `offset`, the stream offset of their first byte."""
        self._journal = positions
        self._logged = dict(logged)

    def logged(self, stream: str) -> int:
        """Journaled: the stream offset up to which the file holds the stream."""
        return self._logged.get(stream, 0)

    async def write(self, stream: str, data: bytes, when_ns: int | None = None, offset: int | None = None) -> None:
        """Append output of `stream`. Each complete line is one record; an unterminated tail
        waits (per stream) for its newline, or is written as 16 KiB partial records once it
        grows that long."""
        if self._closed:
            raise trio.ClosedResourceError("log driver is closed")
        when = time.time_ns() if when_ns is None else when_ns
        data = bytes(data)
        pending = self._tails.pop(stream, b"")
        base = self._tail_off.pop(stream, offset) if pending else offset
        if pending:
            data = pending + data
        cuts: list[tuple[int, int]] = []  # (start, end) in data of each record
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            line_end = nl + 1
            while line_end - start > MAX_LINE:
                cuts.append((start, start + MAX_LINE))
                start += MAX_LINE
            cuts.append((start, line_end))
            start = line_end
        while len(data) - start >= MAX_LINE:
            cuts.append((start, start + MAX_LINE))
            start += MAX_LINE
        if start < len(data):
            self._tails[stream] = data[start:]
            self._tail_ns.setdefault(stream, when)
            if base is not None:
                self._tail_off[stream] = base + start
        else:
            self._tail_ns.pop(stream, None)
        if cuts:
            records = [_encode_record(stream, data[a:b], when, self.extra) for a, b in cuts]
            ends = [(stream, base + b) for _, b in cuts] if base is not None and self._journal else None
            await self._append(records, ends)

    async def flush(self) -> None:
        """Write every buffered partial line as it is (a record without a newline)."""
        records, ends = [], []
        for stream, tail in self._tails.items():
            if tail:
                records.append(_encode_record(stream, tail, self._tail_ns.pop(stream, time.time_ns()), self.extra))
                off = self._tail_off.pop(stream, None)
                ends.append((stream, off + len(tail)) if off is not None else None)
        self._tails.clear()
        if records:
            await self._append(records, ends if self._journal and None not in ends else None)

    async def aclose(self) -> None:
        """Flush partial lines, close the file, end every follower once it has read all."""
        if self._closed:
            return
        try:
            with trio.CancelScope(shield=True):
                await self.flush()
                async with self._lock:
                    if self._fh is not None:
                        fh, self._fh = self._fh, None
                        await trio.to_thread.run_sync(fh.close)
                    self._unpin_locked()  # (a pin a follower still needs stays till it leaves)
        finally:
            self._closed = True
            if self._journal is not None:
                self._journal.close()
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _append(self, records: list[bytes], ends: list[tuple[str, int]] | None = None) -> None:
        total = sum(len(r) for r in records)
        async with self._lock:
            direct = (
                self._fh is not None
                and total <= _DIRECT_WRITE_MAX
                and (self.max_size < 0 or self._size < self.max_size)
            )
            if direct:
                self._write_sync(records, ends)
            else:
                await trio.to_thread.run_sync(self._write_sync, records, ends)
        self._notify()

    def _name(self, index: int) -> str:
        return self.path if index == 0 else f"{self.path}.{index}"

    def _open_sync(self, truncate: bool = False) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | (os.O_TRUNC if truncate else 0)
        fd = os.open(self.path, flags, 0o640)
        self._fh = os.fdopen(fd, "ab")
        self._size = os.fstat(fd).st_size

    def _write_sync(self, records: list[bytes], ends: list[tuple[str, int]] | None = None) -> None:
        if self._fh is None:
            self._open_sync()
        batch: list[bytes] = []
        size = self._size
        after = dict(self._logged) if ends is not None else None
        for i, rec in enumerate(records):
            if self.max_size > 0 and size >= self.max_size:
                if batch:
                    self._write_batch(batch, after)
                    batch = []
                self._rotate_sync()
                size = self._size
            batch.append(rec)
            size += len(rec)
            if after is not None:
                stream, end = ends[i]
                after[stream] = max(after.get(stream, 0), end)
        if batch:
            self._write_batch(batch, after)
        self._fh.flush()

    def _write_batch(self, batch: list[bytes], after: dict[str, int] | None) -> None:
        """One write to the current file; journaled, recorded first (see journal.py)."""
        data = b"".join(batch)
        if after is not None and self._journal is not None:
            ino = os.fstat(self._fh.fileno()).st_ino
            self._journal.record(self._logged, after, ino, self._size, self._size + len(data))
            self._logged = dict(after)
        self._fh.write(data)
        self._size += len(data)

    def _rotate_sync(self) -> None:
        self._fh.flush()
        self._fh.close()
        self._fh = None
        if self._followers and self.max_file > 1:  # (max-file=1 truncates: nothing to keep)
            self._pin_dropped_sync()
        if self.max_file > 1:
            for index in range(self.max_file - 1, 0, -1):
                try:
                    os.replace(self._name(index - 1), self._name(index))
                except FileNotFoundError:
                    pass
            self._open_sync()
        else:
            self._open_sync(truncate=True)
        self._generation += 1

    def _pin_dropped_sync(self) -> None:
        """Before a rotation deletes (or truncates) the oldest kept file, keep it open if a
        follower has not read past it yet."""
        dropped = self._generation - (self.max_file - 1)
        # (runs in a worker thread while followers come and go: copy, never iterate, the dict)
        if dropped in self._pinned or min(list(self._followers.values()), default=dropped + 1) > dropped:
            return
        try:
            self._pinned[dropped] = os.open(self._name(self.max_file - 1), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            pass

    def _unpin_locked(self) -> None:
        """Close pinned files that every follower has read past."""
        oldest_needed = min(list(self._followers.values()), default=None)
        for gen in [g for g in list(self._pinned) if oldest_needed is None or g < oldest_needed]:
            os.close(self._pinned.pop(gen))

    # --- reading ---
    def _existing_files_locked(self) -> list[tuple[int, int]]:
        """Open every current log file, oldest first → [(fd, generation, size)]. Called under
        the lock, with no await in between, so no rotation or write can interleave: the sizes
        end on a record boundary and `tail` counts back from this moment."""
        indexes = []
        index = 1
        while os.path.lexists(self._name(index)):
            indexes.append(index)
            index += 1
        files = []
        for index in reversed([0, *indexes]):
            try:
                fd = os.open(self._name(index), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            files.append((fd, self._generation - index, os.fstat(fd).st_size))
        return files

    def _open_generation_locked(self, gen: int) -> tuple[int, int]:
        """Open the file created at generation `gen` (pinned for a follower, or the oldest
        still kept if the reader fell behind) → (fd or -1, its generation)."""
        if gen in self._pinned:
            return os.dup(self._pinned[gen]), gen
        index = self._generation - gen
        if index > self.max_file - 1:
            index = self.max_file - 1
            gen = self._generation - index
        try:
            return os.open(self._name(max(index, 0)), os.O_RDONLY | os.O_CLOEXEC), gen
        except FileNotFoundError:
            return -1, gen

    async def read(
        self,
        *,
        follow: bool = False,
        since_ns: int | None = None,
        until_ns: int | None = None,
        tail: int | None = None,
        stdout: bool = True,
        stderr: bool = True,
    ) -> AsyncIterator[LogRecord]:
        """Records oldest first, across rotated files. `tail` counts records across files
        before the stream/since filters apply (Docker's order); tail=0 gives none, None or a
        negative value all. `since` and `until` are inclusive; a record after `until` ends
        the read. follow=True keeps yielding records as they are written, across rotations,
        until the driver is closed (or `until` passes)."""
        streams = {s for s, wanted in (("stdout", stdout), ("stderr", stderr)) if wanted}
        follower = object()
        async with self._lock:
            files = self._existing_files_locked()
            if follow and not self._closed:
                self._followers[follower] = files[0][1] if files else self._generation
        fd = -1
        try:
            offset = 0
            if tail is not None and tail >= 0:
                if tail == 0 or not files:
                    skip, offset = max(len(files) - 1, 0), (files[-1][2] if files else 0)
                else:
                    skip, offset = await trio.to_thread.run_sync(
                        _find_tail_start, [(f, size) for f, _, size in files], tail
                    )
                for f, _, _ in files[:skip]:
                    os.close(f)
                files = files[skip:]
            if files:
                fd, gen, _ = files.pop(0)
            else:
                gen = self._generation  # nothing written yet: wait for the current file
            if follower in self._followers:
                self._followers[follower] = gen
            buffer = b""
            deadline = None
            if follow and until_ns:
                deadline = trio.current_time() + (until_ns - time.time_ns()) / _NS
            while True:
                changed = self._changed
                generation_now = self._generation
                chunk = b""
                if fd >= 0:
                    chunk = await trio.to_thread.run_sync(os.pread, fd, _READ_CHUNK, offset)
                if chunk:
                    offset += len(chunk)
                    buffer += chunk
                    lines = buffer.split(b"\n")
                    buffer = lines.pop()
                    for line in lines:
                        record = _decode_record(line)
                        if record is None:
                            continue
                        if until_ns and record.time_ns > until_ns:
                            return
                        if record.stream not in streams or (since_ns and record.time_ns < since_ns):
                            continue
                        yield record
                    continue
                # EOF of the current file (or no file yet).
                if files:  # an older file from the initial snapshot is done: next one
                    os.close(fd)
                    fd, gen, _ = files.pop(0)
                    offset, buffer = 0, b""
                    continue
                if fd >= 0 and generation_now > gen:
                    # Rotated away before our last read began, so what we read is all of it;
                    # the next file is the one created by rotation gen+1.
                    os.close(fd)
                    fd, gen, offset, buffer = -1, gen + 1, 0, b""
                if fd < 0:
                    async with self._lock:
                        fd, gen = self._open_generation_locked(gen)
                        if follower in self._followers:
                            self._followers[follower] = gen
                            self._unpin_locked()
                    if fd >= 0:
                        offset, buffer = 0, b""
                        continue
                if not follow:
                    return
                if self._changed is not changed:
                    continue  # written, rotated or closed since this read began: read again
                if self._closed:
                    return
                if deadline is None:
                    await changed.wait()
                else:
                    with trio.move_on_at(deadline):
                        await changed.wait()
                    if trio.current_time() >= deadline:
                        return
        finally:
            if fd >= 0:
                os.close(fd)
            for f, _, _ in files:
                os.close(f)
            if self._followers.pop(follower, None) is not None:
                self._unpin_locked()


def _find_tail_start(files: list[tuple[int, int]], want: int) -> tuple[int, int]:
    """Where the last `want` (> 0) records of the files [(fd, size at snapshot)], oldest
    first, begin: (index of the first file to read, offset in it)."""
    remaining = want
    for index in range(len(files) - 1, -1, -1):
        fd, size = files[index]
        start, found = _tail_in_file(fd, size, remaining)
        remaining -= found
        if remaining <= 0:
            return index, start
    return 0, 0


def _tail_in_file(fd: int, size: int, want: int) -> tuple[int, int]:
    """(offset where the last `want` records before `size` start, how many were found).
    `size` ends on a record boundary (snapshot under the writer's lock)."""
    # The newline ending the last record sits at size-1; the record `want` from the end
    # starts right after the (want+1)-th newline counted from the end.
    seen = 0
    pos = size
    while pos > 0:
        lo = max(0, pos - 65536)
        block = os.pread(fd, pos - lo, lo)
        j = len(block)
        while True:
            j = block.rfind(b"\n", 0, j)
            if j < 0:
                break
            seen += 1
            if seen == want + 1:
                return lo + j + 1, want
        pos = lo
    return 0, seen
