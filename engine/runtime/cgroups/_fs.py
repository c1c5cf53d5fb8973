"""Small file helpers for cgroupfs. Every error names the file it was about."""

import errno
import os

from engine.errors import EngineError, InvalidParameter, SystemError_


def cgroup_error(cls: type[EngineError], path: str, message: str) -> EngineError:
    err = cls(f"cgroups: {message}: {path}")
    err.path = path  # type: ignore[attr-defined]
    return err


def _read_text(path: str) -> str:
    """open, read to the end, close: four syscalls (open() in text mode takes eight)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


def read(path: str) -> str:
    try:
        return _read_text(path)
    except OSError as e:
        raise cgroup_error(SystemError_, path, f"read: {e.strerror}") from e


def read_optional(path: str) -> str | None:
    """The file's text, or None when the kernel does not provide it."""
    try:
        return _read_text(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno in (errno.ENODEV, errno.ENOTSUP):
            return None
        raise cgroup_error(SystemError_, path, f"read: {e.strerror}") from e


def read_int(path: str) -> int:
    text = read(path).strip()
    try:
        return int(text)
    except ValueError:
        raise cgroup_error(SystemError_, path, f"unexpected content {text!r}") from None


def write(path: str, value: str | int) -> None:
    """Write one value; EINVAL/ERANGE mean the value is bad (400), the rest are 500s."""
    data = str(value)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        raise cgroup_error(SystemError_, path, f"open: {e.strerror}") from e
    try:
        os.write(fd, data.encode())
    except OSError as e:
        cls = InvalidParameter if e.errno in (errno.EINVAL, errno.ERANGE) else SystemError_
        raise cgroup_error(cls, path, f"write {data!r}: {e.strerror}") from e
    finally:
        os.close(fd)


def write_each(path: str, values) -> None:
    """Write each value with its own write(2) through one open: cgroupfs takes one entry per
    write (devices.allow rules). Errors as `write`'s, naming the value."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        raise cgroup_error(SystemError_, path, f"open: {e.strerror}") from e
    try:
        for value in values:
            data = str(value)
            try:
                os.write(fd, data.encode())
            except OSError as e:
                cls = InvalidParameter if e.errno in (errno.EINVAL, errno.ERANGE) else SystemError_
                raise cgroup_error(cls, path, f"write {data!r}: {e.strerror}") from e
    finally:
        os.close(fd)


def flat_keyed(text: str | None) -> dict[str, int]:
    """Parse 'key value' lines (memory.stat, cpu.stat, memory.events…)."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def read_pids(path: str) -> list[int]:
    text = read_optional(path)
    return [int(x) for x in (text or "").split()]


def rmdir_tree(path: str) -> None:
    """rmdir a cgroup directory and any sub-cgroups a container made, deepest first.
    Raises OSError (ENOENT is swallowed) so callers can retry on EBUSY."""
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            rmdir_tree(entry.path)
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
