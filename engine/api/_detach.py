"""Detach keys: the key sequence (default ctrl-p,ctrl-q) that detaches a client from an
attach or a tty exec without stopping the process, as dockerd does it.

dockerd only watches for the sequence on a TTY's stdin (copyEscapable); on a match the
client's stdin stops being forwarded, its connection is closed and the process keeps running.
Bytes that start the sequence are held back until the sequence either completes (they are
dropped) or breaks (they are forwarded, in order).

    detacher = Detacher(parse_detach_keys(req.query.get("detachKeys")))
    chunks = detacher.filter(stream.chunks())   # feed these to the process's stdin
    await detacher.detached.wait()              # the client typed the sequence
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import trio

from engine import errors

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"

# moby/term's key codes: ctrl-a … ctrl-z, and the ctrl- forms of @ [ \ ] ^ _
_CTRL = {f"ctrl-{chr(c)}": c - 96 for c in range(ord("a"), ord("z") + 1)}
_CTRL.update({"ctrl-@": 0, "ctrl-[": 27, "ctrl-\\": 28, "ctrl-]": 29, "ctrl-^": 30, "ctrl-_": 31})


def parse_detach_keys(spec: str | None) -> bytes:
    """"ctrl-p,ctrl-q" / "a,ctrl-x" → the byte sequence; empty → the default."""
    if not spec:
        spec = DEFAULT_DETACH_KEYS
    codes = bytearray()
    for key in spec.split(","):
        if len(key) == 1:
            codes += key.encode("latin-1", "replace")[:1]
        elif key in _CTRL:
            codes.append(_CTRL[key])
        else:
            reason = f"Unknown character: '{key}'" if key.startswith("ctrl-") else f"Unknown key: {key}"
            raise errors.InvalidParameter(f"Invalid detach keys ({spec}) provided: {reason}")
    return bytes(codes)


class Detacher:
    """Watches a client's stdin for the detach sequence."""

    def __init__(self, keys: bytes, on_detach: Callable[[], Awaitable[None]] | None = None) -> None:
        self.keys = keys
        self.on_detach = on_detach
        self.detached = trio.Event()
        self._matched = 0  # bytes of `keys` seen so far (held back)

    def scan(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to forward, detach sequence completed). Pure: testable without streams."""
        out = bytearray()
        for i, byte in enumerate(data):
            if byte == self.keys[self._matched]:
                self._matched += 1
                if self._matched == len(self.keys):
                    self._matched = 0
                    return bytes(out), True
                continue
            if self._matched:
                out += self.keys[:self._matched]
                self._matched = 0
                if byte == self.keys[0]:
                    self._matched = 1
                    continue
            out.append(byte)
        return bytes(out), False

    async def filter(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The client's bytes minus the sequence. On detach it never ends (an end would read
        as the client's EOF and close the process's stdin): the caller cancels it."""
        async for data in chunks:
            forward, detach = self.scan(data)
            if forward:
                yield forward
            if detach:
                self.detached.set()
                if self.on_detach is not None:
                    await self.on_detach()
                await trio.sleep_forever()
        if self._matched:  # EOF in the middle of a sequence: what was held back is input
            yield self.keys[:self._matched]
            self._matched = 0
