"""The layer cache, keyed as the classic builder keys it: the parent image and the step's
full run config (whose Cmd is the instruction, with COPY/ADD sources' content checksums
and RUN's build args in it). One JSON record per entry under <data_root>/builder/cache/;
the cached results are ordinary images (untagged intermediates), so layers stay shared.

--cache-from images are matched by their history (created_by of each step) and layers, as
dockerd does for images pulled without their intermediates."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time

import attrs

from engine.errors import NotFound


def cache_key(parent_id: str, run_config: dict) -> str:
    data = json.dumps(run_config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{parent_id}\n{data}".encode()).hexdigest()


@attrs.define
class CacheRecord:
    key: str
    image: str
    parent: str
    description: str
    created_ns: int
    last_used_ns: int
    usage_count: int = 1
    size: int = 0


@attrs.frozen
class CacheUsage:
    """A cache entry as /system/df counts it: `shared` when a tagged image builds on it."""

    record: CacheRecord
    shared: bool


class BuildCache:
    """Records are read once into memory; a hit only touches memory (its use time and count
    reach disk at the build's end, `flush`), so a fully cached build does no disk writes
    per step."""

    def __init__(self, root: str, images):
        self.root = root
        self.images = images
        self._lock = threading.Lock()
        self._records: dict[str, CacheRecord] | None = None
        self._dirty: set[str] = set()
        # (image id, sources as written) → checksum: an image's content never changes, so a
        # COPY --from hit needs no mount of the source image.
        self.source_sums: dict[tuple, str] = {}
        os.makedirs(root, exist_ok=True)

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key + ".json")

    def _all(self) -> dict[str, CacheRecord]:
        with self._lock:
            if self._records is None:
                records = {}
                for name in os.listdir(self.root):
                    if not name.endswith(".json"):
                        if ".tmp-" in name:
                            os.unlink(os.path.join(self.root, name))
                        continue
                    try:
                        with open(os.path.join(self.root, name)) as f:
                            record = CacheRecord(**json.load(f))
                    except (OSError, ValueError, TypeError):
                        continue
                    records[record.key] = record
                self._apply_journal(records)
                self._records = records
            return self._records

    def _apply_journal(self, records: dict[str, CacheRecord]) -> None:
        """usage.log: one line per hit (key, time, count), appended at each build's end; folded
        into the records (and emptied) once it grows."""
        journal = os.path.join(self.root, "usage.log")
        try:
            with open(journal) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                key, used, count = line.split()
                record = records.get(key)
                if record is not None:
                    record.last_used_ns, record.usage_count = int(used), int(count)
            except ValueError:
                continue
        if len(lines) > 10000:
            for record in records.values():
                self._write(record)
            os.unlink(journal)

    def _write(self, record: CacheRecord) -> None:
        path = self._path(record.key)
        tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
        with open(tmp, "w") as f:
            json.dump(attrs.asdict(record), f)
        os.replace(tmp, path)

    # ------------------------------------------------------------------ lookup / record

    def lookup(self, parent_id: str, run_config: dict):
        """The image a previous identical step made, or None."""
        key = cache_key(parent_id, run_config)
        record = self._all().get(key)
        if record is None:
            return None
        try:
            image = self.images.get(record.image)
        except NotFound:
            self._forget(key)
            return None
        record.last_used_ns = time.time_ns()
        record.usage_count += 1
        self._dirty.add(key)
        return image

    def record(self, parent_id: str, run_config: dict, image, description: str, size: int) -> None:
        now = time.time_ns()
        record = CacheRecord(key=cache_key(parent_id, run_config), image=image.id, parent=parent_id,
                             description=description, created_ns=now, last_used_ns=now, size=size)
        self._all()[record.key] = record
        self._write(record)

    def flush(self) -> None:
        """Append the use times and counts of the hits since the last flush to the journal:
        one small write per build (sync)."""
        records = self._all()
        dirty, self._dirty = self._dirty, set()
        lines = "".join(f"{k} {records[k].last_used_ns} {records[k].usage_count}\n" for k in dirty if k in records)
        if lines:
            with open(os.path.join(self.root, "usage.log"), "a") as f:
                f.write(lines)

    def _forget(self, key: str) -> None:
        self._all().pop(key, None)
        self._dirty.discard(key)
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass

    def records(self) -> list[CacheRecord]:
        return sorted(self._all().values(), key=lambda r: r.key)

    # ------------------------------------------------------------------ --cache-from

    @staticmethod
    def match_source(source, parent, created_by: str) -> tuple[list[dict], list[str]] | None:
        """If `source` (an image named by --cache-from) continues `parent`'s history with a
        step made by `created_by`, the history and diff ids up to that step."""
        src_hist = list(source.config.get("history") or [])
        par_hist = list(parent.config.get("history") or []) if parent is not None else []
        par_diffs = list(parent.diff_ids) if parent is not None else []
        n = len(par_hist)
        if len(src_hist) <= n or list(source.diff_ids[:len(par_diffs)]) != par_diffs:
            return None
        for a, b in zip(src_hist[:n], par_hist):
            if a.get("created_by") != b.get("created_by") or bool(a.get("empty_layer")) != bool(b.get("empty_layer")):
                return None
        step = src_hist[n]
        if step.get("created_by") != created_by:
            return None
        diffs = list(par_diffs)
        if not step.get("empty_layer"):
            index = sum(1 for h in src_hist[:n + 1] if not h.get("empty_layer")) - 1
            if index >= len(source.diff_ids):
                return None
            diffs.append(source.diff_ids[index])
        return par_hist + [step], diffs

    # ------------------------------------------------------------------ df / prune

    def usage(self, tagged_ancestry: set[str]) -> list[CacheUsage]:
        """The entries, for /system/df."""
        return [CacheUsage(r, r.image in tagged_ancestry) for r in self.records()]

    def prune(self, *, all_: bool, keep_storage: int, until_ns: int | None, tagged_ancestry: set[str]) -> tuple[list[str], int]:
        """Forget cache records (oldest use first). Without `all`, entries whose image a
        tagged image still builds on are kept. Returns (ids, bytes the records accounted)."""
        records = sorted(self.records(), key=lambda r: r.last_used_ns)
        total = sum(r.size for r in records)
        deleted: list[str] = []
        reclaimed = 0
        for r in records:
            if keep_storage and total - reclaimed <= keep_storage:
                break
            if until_ns is not None and r.last_used_ns > until_ns:
                continue
            if not all_ and r.image in tagged_ancestry:
                continue
            self._forget(r.key)
            deleted.append(r.key[:25])
            reclaimed += r.size
        return deleted, reclaimed


