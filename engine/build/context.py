"""The build context on disk: safe extraction of the uploaded tar, paths resolved inside a
root (a `..` or a symlink can never lead out of it), COPY/ADD sources with Go-style globs,
and the content checksums the layer cache keys on."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import re
import stat
import tarfile

import attrs

from engine.errors import InvalidParameter, NotFound
from engine.scope import resolve_in_root

_GLOB_CHARS = re.compile(r"[*?\[]")


# ------------------------------------------------------------------------- scoped paths

def rel_inside(root: str, host_path: str) -> str:
    rel = os.path.relpath(host_path, root)
    return "" if rel == "." else rel


# ------------------------------------------------------------------------- extraction

def extract_tar(fileobj_or_path, dest: str) -> None:
    """Unpack a context tar (plain, gzip, bzip2 or xz) into `dest`. Names are made relative;
    an entry whose path would leave dest (`..`, or through a symlink extracted earlier) is an
    error; device nodes are skipped; ownership is not applied (COPY sets it)."""
    os.makedirs(dest, exist_ok=True)
    dest = os.path.abspath(dest)
    if isinstance(fileobj_or_path, str):
        tf = tarfile.open(fileobj_or_path, mode="r:*")
    else:
        tf = tarfile.open(fileobj=fileobj_or_path, mode="r|*")
    dir_modes: list[tuple[str, int, int]] = []
    with tf:
        for member in _members(tf):
            name = posixpath.normpath("/" + member.name).lstrip("/")
            if not name or name == ".":
                continue
            if name.split("/")[0] == "..":
                raise InvalidParameter(f"context tar entry escapes the context: {member.name}")
            parent = os.path.join(dest, os.path.dirname(name))
            real_parent = resolve_in_root(dest, os.path.dirname(name))
            if os.path.normpath(real_parent) != os.path.normpath(parent):
                raise InvalidParameter(f"context tar entry goes through a symlink: {member.name}")
            os.makedirs(parent, exist_ok=True)
            target = os.path.join(dest, name)
            if member.isdir():
                if os.path.lexists(target) and not os.path.isdir(target):
                    os.unlink(target)
                os.makedirs(target, exist_ok=True)
                dir_modes.append((target, member.mode & 0o7777, member.mtime))
                continue
            if os.path.lexists(target):
                if os.path.isdir(target) and not os.path.islink(target):
                    import shutil

                    shutil.rmtree(target)
                else:
                    os.unlink(target)
            if member.isreg():
                src = tf.extractfile(member)
                with open(target, "wb") as out:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
                os.chmod(target, member.mode & 0o7777)
                os.utime(target, (member.mtime, member.mtime))
            elif member.issym():
                os.symlink(member.linkname, target)
            elif member.islnk():
                link = posixpath.normpath("/" + member.linkname).lstrip("/")
                source = os.path.join(dest, link)
                if link.split("/")[0] == ".." or resolve_in_root(dest, link, follow_last=False) != source \
                        or not os.path.isfile(source) or os.path.islink(source):
                    raise InvalidParameter(f"context tar hardlink escapes the context: {member.name}")
                os.link(source, target)
            # devices, fifos: not part of a build context
    for path, mode, mtime in reversed(dir_modes):
        os.chmod(path, mode | 0o700)
        os.utime(path, (mtime, mtime))


def _members(tf: tarfile.TarFile):
    """The members; a stream cut short after its last member (the docker CLI's `-f -`
    context has no end-of-archive blocks) ends the archive instead of failing it."""
    count = 0
    while True:
        try:
            member = tf.next()
        except tarfile.ReadError:
            if count:
                return
            raise
        if member is None:
            return
        count += 1
        yield member


# ------------------------------------------------------------------------- sources

def has_glob(path: str) -> bool:
    return bool(_GLOB_CHARS.search(path))


def go_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match: `*` and `?` never match '/'."""
    if pattern.count("/") != name.count("/"):
        return False
    return all(fnmatch.fnmatchcase(n, p) for p, n in zip(pattern.split("/"), name.split("/")))


def find_sources(root: str, source: str, what: str = "COPY") -> list[tuple[str, str]]:
    """A COPY/ADD source (relative to the context root) → [(host path, name as written)].
    Globs match paths in the root; a matched directory is taken whole."""
    clean = posixpath.normpath("/" + source.replace("\\", "/")).lstrip("/")
    if not has_glob(clean):
        path = resolve_in_root(root, clean)
        if not os.path.lexists(path):
            raise NotFound(f"{what} failed: file not found in build context or excluded by "
                           f".dockerignore: stat {clean or '.'}: file does not exist")
        return [(path, clean)]
    hits: list[tuple[str, str]] = []
    depth = clean.count("/")

    def walk(directory: str, rel: str, level: int) -> None:
        try:
            names = sorted(os.listdir(directory))
        except (NotADirectoryError, FileNotFoundError):
            return
        for name in names:
            r = f"{rel}/{name}" if rel else name
            path = os.path.join(directory, name)
            if level == depth:
                if go_match(clean, r):
                    hits.append((resolve_in_root(root, r), r))
            elif os.path.isdir(path) and not os.path.islink(path):
                walk(path, r, level + 1)

    walk(root, "", 0)
    if not hits:
        raise NotFound(f"{what} failed: no source files were specified")
    return hits


# ------------------------------------------------------------------------- checksums

def checksum(paths: list[str]) -> str:
    """Docker-style source digest for the cache: "file:<hex>", "dir:<hex>" or "multi:<hex>"
    over names, types, modes and contents (not owners or times)."""
    digests = []
    kinds = []
    for path in paths:
        sha = hashlib.sha256()
        if os.path.isdir(path):
            kinds.append("dir")
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames.sort()
                rel_dir = os.path.relpath(dirpath, path)
                sha.update(f"D {rel_dir} {stat.S_IMODE(os.lstat(dirpath).st_mode):o}\n".encode())
                entries = sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))])
                for name in entries:
                    _hash_entry(sha, os.path.join(dirpath, name), os.path.normpath(os.path.join(rel_dir, name)))
        else:
            kinds.append("file")
            _hash_entry(sha, path, "")
        digests.append(sha.hexdigest())
    if len(digests) == 1:
        return f"{kinds[0]}:{digests[0]}"
    return "multi:" + hashlib.sha256("\n".join(digests).encode()).hexdigest()


def _hash_entry(sha, path: str, rel: str) -> None:
    st = os.lstat(path)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        sha.update(f"L {rel} {os.readlink(path)}\n".encode())
    elif stat.S_ISREG(st.st_mode):
        sha.update(f"F {rel} {mode:o} {st.st_size}\n".encode())
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                sha.update(chunk)
    else:
        sha.update(f"O {rel} {stat.S_IFMT(st.st_mode)} {mode:o}\n".encode())


# ------------------------------------------------------------------------- the context

_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


@attrs.define
class Entry:
    kind: str             # "f" file, "d" directory, "l" symlink
    mode: int
    mtime: int
    size: int = 0
    offset: int = 0       # where the file's bytes start in the (uncompressed) tar
    link: str = ""        # symlink target


def is_compressed(head: bytes) -> bool:
    return any(head.startswith(m) for m in _COMPRESSED)


class Context:
    """The uploaded context, indexed in place: entries point into the (uncompressed) tar, so
    a build whose steps all hit the cache never writes the context to disk. `extract` puts
    it on disk (once) when a COPY/ADD has to copy from it.

    Every path is relative and normalized; no entry lies below a symlink or a file (such a
    tar is refused), so nothing extracted can be written through a link."""

    def __init__(self, tar) -> None:
        self.tar = tar
        self.entries: dict[str, Entry] = {}
        self.children: dict[str, set[str]] = {"": set()}
        self.extracted: str | None = None

    # ---------------------------------------------------------------- loading

    @classmethod
    def load(cls, fileobj) -> "Context":
        """Index a context tar (plain, gzip, bzip2, xz). tarfile.ReadError if it is none."""
        import shutil
        import tempfile

        fileobj.seek(0)
        head = fileobj.read(6)
        fileobj.seek(0)
        if any(head.startswith(m) for m in _COMPRESSED):
            import bz2
            import gzip
            import lzma

            if head.startswith(b"\x1f\x8b"):
                source = gzip.GzipFile(fileobj=fileobj, mode="rb")
            elif head.startswith(b"BZh"):
                source = bz2.BZ2File(fileobj, mode="rb")
            else:
                source = lzma.LZMAFile(fileobj, mode="rb")
            plain = tempfile.SpooledTemporaryFile(max_size=64 << 20)
            try:
                with source:
                    shutil.copyfileobj(source, plain, 1 << 20)
            except (OSError, EOFError, lzma.LZMAError) as exc:
                raise tarfile.ReadError(f"cannot decompress the context: {exc}") from None
            fileobj = plain
            fileobj.seek(0)
        context = cls(fileobj)
        tf = tarfile.open(fileobj=fileobj, mode="r:")
        for member in _members(tf):
            context._add(member)
        return context

    def _add(self, member: tarfile.TarInfo) -> None:
        name = posixpath.normpath("/" + member.name).lstrip("/")
        if not name or name == ".":
            return
        if name.split("/")[0] == "..":
            raise InvalidParameter(f"context tar entry escapes the context: {member.name}")
        parent = posixpath.dirname(name)
        # parents must be directories (made implicitly if the tar skips them)
        walk = ""
        for part in [p for p in parent.split("/") if p]:
            walk = f"{walk}/{part}" if walk else part
            existing = self.entries.get(walk)
            if existing is None:
                self._put(walk, Entry("d", 0o755, member.mtime))
            elif existing.kind != "d":
                raise InvalidParameter(f"context tar entry goes through a symlink or file: {member.name}")
        if member.isdir():
            old = self.entries.get(name)
            if old is not None and old.kind != "d":
                self._drop(name)
            self._put(name, Entry("d", member.mode & 0o7777, member.mtime))
            return
        if name in self.entries:
            self._drop(name)
        if member.isreg():
            self._put(name, Entry("f", member.mode & 0o7777, member.mtime, member.size, member.offset_data))
        elif member.issym():
            self._put(name, Entry("l", 0o777, member.mtime, link=member.linkname))
        elif member.islnk():
            target = self.entries.get(posixpath.normpath("/" + member.linkname).lstrip("/"))
            if target is None or target.kind != "f":
                raise InvalidParameter(f"context tar hardlink to a missing file: {member.name}")
            self._put(name, Entry("f", target.mode, target.mtime, target.size, target.offset))
        # devices and fifos are not part of a build context

    def _put(self, name: str, entry: Entry) -> None:
        self.entries[name] = entry
        self.children.setdefault(posixpath.dirname(name), set()).add(name)
        if entry.kind == "d":
            self.children.setdefault(name, set())

    def _drop(self, name: str) -> None:
        entry = self.entries.pop(name, None)
        if entry is None:
            return
        self.children.get(posixpath.dirname(name), set()).discard(name)
        for child in list(self.children.pop(name, ())):
            self._drop(child)

    # ---------------------------------------------------------------- queries

    def read(self, name: str) -> bytes:
        entry = self.entries[name]
        self.tar.seek(entry.offset)
        return self.tar.read(entry.size)

    def resolve(self, path: str) -> str:
        """Follow symlinks inside the context, as if it were `/`. Returns a relative path
        (that may not exist)."""
        parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
        current = ""
        links = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                current = posixpath.dirname(current)
                continue
            candidate = f"{current}/{part}" if current else part
            entry = self.entries.get(candidate)
            if entry is not None and entry.kind == "l":
                links += 1
                if links > 255:
                    raise InvalidParameter(f"too many levels of symbolic links: {path}")
                if entry.link.startswith("/"):
                    current = ""
                parts = [p for p in entry.link.split("/") if p not in ("", ".")] + parts
                continue
            current = candidate
        return current

    def is_file(self, name: str) -> bool:
        entry = self.entries.get(name)
        return entry is not None and entry.kind == "f"

    def apply_ignore(self, ignore) -> None:
        """Drop what .dockerignore excludes; an excluded directory stays only for what is
        re-included below it."""
        if not ignore:
            return
        keep_dirs: set[str] = set()
        for name in sorted(self.entries, reverse=True):
            entry = self.entries[name]
            excluded = ignore.matches(name)
            if entry.kind == "d" and name in keep_dirs:
                excluded = False
            if excluded:
                self._drop(name)
                continue
            parent = posixpath.dirname(name)
            while parent:
                keep_dirs.add(parent)
                parent = posixpath.dirname(parent)

    def find(self, source: str, what: str = "COPY") -> list[tuple[str, str]]:
        """Like find_sources, over the index: [(resolved relative path, name as matched)]."""
        clean = posixpath.normpath("/" + source.replace("\\", "/")).lstrip("/")
        if not has_glob(clean):
            path = self.resolve(clean)
            if path and path not in self.entries:
                raise NotFound(f"{what} failed: file not found in build context or excluded by "
                               f".dockerignore: stat {clean}: file does not exist")
            return [(path, clean)]
        depth = clean.count("/")
        hits = [(self.resolve(name), name) for name in sorted(self.entries)
                if name.count("/") == depth and go_match(clean, name)]
        hits = [(p, n) for p, n in hits if not p or p in self.entries]
        if not hits:
            raise NotFound(f"{what} failed: no source files were specified")
        return hits

    def checksum(self, paths: list[str]) -> str:
        """"file:", "dir:" or "multi:" digest over names, types, modes and contents."""
        digests, kinds = [], []
        for path in paths:
            sha = hashlib.sha256()
            entry = self.entries.get(path)
            if path == "" or (entry is not None and entry.kind == "d"):
                kinds.append("dir")
                prefix = f"{path}/" if path else ""
                for name in sorted(n for n in self.entries if n.startswith(prefix)):
                    self._hash(sha, name, name[len(prefix):])
            else:
                kinds.append("file")
                self._hash(sha, path, "")
            digests.append(sha.hexdigest())
        if len(digests) == 1:
            return f"{kinds[0]}:{digests[0]}"
        return "multi:" + hashlib.sha256("\n".join(digests).encode()).hexdigest()

    def _hash(self, sha, name: str, rel: str) -> None:
        entry = self.entries[name]
        if entry.kind == "l":
            sha.update(f"L {rel} {entry.link}\n".encode())
        elif entry.kind == "d":
            sha.update(f"D {rel} {entry.mode:o}\n".encode())
        else:
            sha.update(f"F {rel} {entry.mode:o} {entry.size}\n".encode())
            sha.update(self.read(name))

    # ---------------------------------------------------------------- on disk

    def extract(self, dest: str) -> str:
        """Write the context under `dest` (once); returns dest."""
        if self.extracted is not None:
            return self.extracted
        os.makedirs(dest, exist_ok=True)
        dirs: list[tuple[str, Entry]] = []
        for name in sorted(self.entries):
            entry = self.entries[name]
            target = os.path.join(dest, name)
            if entry.kind == "d":
                os.mkdir(target, 0o700)
                dirs.append((target, entry))
            elif entry.kind == "l":
                os.symlink(entry.link, target)
            else:
                with open(target, "wb") as out:
                    out.write(self.read(name))
                os.chmod(target, entry.mode)
                os.utime(target, (entry.mtime, entry.mtime))
        for target, entry in reversed(dirs):
            os.chmod(target, entry.mode | 0o700)
            os.utime(target, (entry.mtime, entry.mtime))
        self.extracted = dest
        return dest
