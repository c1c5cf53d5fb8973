"""Attached sessions: the hijacked stream pumps, raw terminal mode, resize and `wait`.

The order follows the docker CLI: attach (hijack) → wait (headers must arrive) → signals
proxied (no TTY) → start → resize → pump stdin in a thread (half-close on EOF) while the main
thread copies output → take the exit status from wait (containers) or from the exec's
inspect (exec).
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from ._client import Client, ClientError, Hijacked
from ._format import Demuxer, SYSTEMERR

# ---------------------------------------------------------------------------------------------
# terminal


@contextmanager
def raw_terminal(enable: bool, fd: int = 0) -> Iterator[None]:
    """Put the local terminal (stdin) in raw mode for the duration; restore it after."""
    if not enable:
        yield
        return
    import termios
    import tty

    try:
        saved = termios.tcgetattr(fd)
    except (termios.error, OSError):
        yield
        return
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def terminal_size() -> tuple[int, int] | None:
    for fd in (1, 0, 2):
        try:
            sz = os.get_terminal_size(fd)
            return sz.lines, sz.columns
        except OSError:
            continue
    return None


@contextmanager
def monitor_resize(resize: Callable[[int, int], None], enable: bool) -> Iterator[None]:
    """Send the terminal size now and on every SIGWINCH."""
    if not enable:
        yield
        return

    def push(*_: object) -> None:
        size = terminal_size()
        if size:
            try:
                resize(*size)
            except ClientError:
                pass

    push()
    old = None
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        old = signal.signal(signal.SIGWINCH, lambda *_: threading.Thread(target=push,
                                                                        daemon=True).start())
    try:
        yield
    finally:
        if in_main:
            signal.signal(signal.SIGWINCH, old or signal.SIG_DFL)


# ---------------------------------------------------------------------------------------------
# signals

#: Not forwarded: what the docker CLI skips (SIGCHLD, SIGPIPE, SIGURG), what cannot be caught,
#: and the signals of a fault in this process, which a handler would only repeat.
_NOT_PROXIED = {signal.SIGCHLD, signal.SIGPIPE, signal.SIGURG, signal.SIGKILL, signal.SIGSTOP, signal.SIGSEGV,
                signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGTRAP, signal.SIGSYS, signal.SIGABRT}


@contextmanager
def proxy_signals(client: Client, cid: str, enable: bool) -> Iterator[None]:
    """--sig-proxy: every signal this process gets (but those above) is sent on to the
    container (POST /containers/{id}/kill) by a thread, as the docker CLI does; the third
    SIGINT or SIGTERM ends this process (status 1) instead, the container going on."""
    if not enable or threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    interrupts = 0

    def caught(signum: int, _frame: object) -> None:
        nonlocal interrupts
        if signum in (signal.SIGINT, signal.SIGTERM):
            interrupts += 1
            if interrupts >= 3:
                os.write(2, b"\ngot 3 SIGTERM/SIGINTs, forcefully exiting\n")
                os._exit(1)
        pending.put(signum)  # the request goes from a thread, not from the handler

    def forward() -> None:
        while (signum := pending.get()) is not None:
            try:
                client.post(f"/containers/{cid}/kill", params={"signal": signal.Signals(signum).name[3:]})
            except ClientError:
                pass  # gone already: its wait ends the session

    saved = {}
    for sig in signal.Signals:
        if sig in _NOT_PROXIED or sig >= signal.SIGRTMIN:
            continue
        try:
            saved[sig] = signal.signal(sig, caught)
        except (OSError, ValueError):
            continue
    thread = threading.Thread(target=forward, name="sig-proxy", daemon=True)
    thread.start()
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        pending.put(None)


# ---------------------------------------------------------------------------------------------
# pumps


class StreamError(Exception):
    pass


def copy_output(conn: Hijacked, tty: bool, write: Callable[[bytes, int], None]) -> None:
    """Copy the hijacked stream to stdout/stderr until EOF (demultiplexing unless a TTY)."""
    demux = None if tty else Demuxer()
    while True:
        data = conn.recv()
        if not data:
            return
        if demux is None:
            write(data, 1)
            continue
        for stream, payload in demux.feed(data):
            if stream == SYSTEMERR:
                raise StreamError(payload.decode("utf-8", "replace"))
            write(payload, 2 if stream == 2 else 1)


DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
_CTRL = {f"ctrl-{chr(c)}": c - 96 for c in range(ord("a"), ord("z") + 1)}
_CTRL.update({"ctrl-@": 0, "ctrl-[": 27, "ctrl-\\": 28, "ctrl-]": 29, "ctrl-^": 30, "ctrl-_": 31})


def detach_key_bytes(spec: str | None) -> bytes:
    """--detach-keys ("ctrl-p,ctrl-q", "a,ctrl-x") → bytes; ValueError names a bad key."""
    codes = bytearray()
    for key in (spec or DEFAULT_DETACH_KEYS).split(","):
        if len(key) == 1:
            codes += key.encode("latin-1", "replace")[:1]
        elif key in _CTRL:
            codes.append(_CTRL[key])
        else:
            raise ValueError(f"Unknown character: '{key}'" if key.startswith("ctrl-") else f"Unknown key: {key}")
    return bytes(codes)


def pump_stdin(conn: Hijacked, fd: int = 0, detach_keys: bytes | None = None,
               detached: threading.Event | None = None) -> threading.Thread:
    """Copy local stdin to the connection in a daemon thread; half-close at EOF. With
    `detach_keys` (a TTY session), typing them ends the session without sending them: the
    connection is shut down and `detached` set (the container goes on)."""
    matched = 0

    def run() -> None:
        nonlocal matched
        try:
            while True:
                try:
                    data = os.read(fd, 32768)
                except OSError:
                    data = b""
                if not data:
                    if matched:  # EOF inside a sequence: those bytes were input after all
                        conn.send(detach_keys[:matched])
                    break
                if detach_keys:
                    out = bytearray()
                    for byte in data:
                        if byte == detach_keys[matched]:
                            matched += 1
                            if matched == len(detach_keys):
                                if out:
                                    conn.send(bytes(out))
                                if detached is not None:
                                    detached.set()
                                conn.shutdown()
                                return
                            continue
                        if matched:
                            out += detach_keys[:matched]
                            matched = 0 if byte != detach_keys[0] else 1
                            if matched:
                                continue
                        out.append(byte)
                    data = bytes(out)
                    if not data:
                        continue
                conn.send(data)
        except OSError:
            pass
        finally:
            if detached is None or not detached.is_set():
                conn.close_write()

    t = threading.Thread(target=run, name="stdin-pump", daemon=True)
    t.start()
    return t


class Waiter:
    """POST /containers/{id}/wait in a thread; `wait_headers()` returns once the daemon has
    accepted the wait (so a following start cannot race past the exit)."""

    def __init__(self, client: Client, cid: str, condition: str):
        self._client = client
        self._cid = cid
        self._condition = condition
        self._headers = threading.Event()
        self._done = threading.Event()
        self.result: dict | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="wait", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import json

        try:
            with self._client.stream("POST", f"/containers/{self._cid}/wait",
                                     params={"condition": self._condition}) as resp:
                self._headers.set()
                body = resp.read()
            self.result = json.loads(body) if body.strip() else {}
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.error = exc
        finally:
            self._headers.set()
            self._done.set()

    def wait_headers(self) -> None:
        self._headers.wait()
        if self.error is not None:
            raise self.error

    def status(self, timeout: float | None = None) -> int:
        self._done.wait(timeout)
        if self.error is not None:
            raise self.error
        res = self.result or {}
        err = (res.get("Error") or {}).get("Message") if isinstance(res, dict) else None
        if err:
            raise StreamError(err)
        return int(res.get("StatusCode", 0))


def session(cli, conn: Hijacked, *, tty: bool, interactive: bool,
            resize: Callable[[int, int], None] | None, detach_keys: bytes | None = None) -> bool:
    """Run the local side of an attached session until the output stream ends; True when the
    user detached (with the detach keys: TTY sessions only, as the docker CLI)."""
    fd = getattr(cli, "stdin_fd", 0)
    local_tty = tty and interactive and os.isatty(fd)
    detached = threading.Event()
    with raw_terminal(local_tty, fd), monitor_resize(resize or (lambda h, w: None),
                                                 tty and resize is not None and
                                                 terminal_size() is not None):
        if interactive:
            pump_stdin(conn, fd, detach_keys if tty else None, detached)
        else:
            conn.close_write()
        copy_output(conn, tty, cli.write_bytes)
    return detached.is_set()
