"""Detach keys: parsing (moby/term's ToBytes) and the stdin filter's state machine."""

import pytest
import trio
import trio.testing

from engine import errors
from engine.api._detach import Detacher, parse_detach_keys


def test_parse_detach_keys():
    assert parse_detach_keys(None) == parse_detach_keys("") == b"\x10\x11"  # ctrl-p,ctrl-q
    assert parse_detach_keys("ctrl-x") == b"\x18"
    assert parse_detach_keys("a,ctrl-@,ctrl-[,ctrl-_") == b"a\x00\x1b\x1f"
    with pytest.raises(errors.InvalidParameter, match=r"Invalid detach keys \(ctrl-1\) provided: Unknown character: 'ctrl-1'"):
        parse_detach_keys("ctrl-1")
    with pytest.raises(errors.InvalidParameter, match="Unknown key: abc"):
        parse_detach_keys("abc")


def test_scan_holds_back_a_prefix_and_releases_it_when_the_sequence_breaks():
    d = Detacher(b"\x10\x11")
    assert d.scan(b"ab\x10") == (b"ab", False)  # \x10 held back
    assert d.scan(b"c") == (b"\x10c", False)  # broken: released in order
    assert d.scan(b"\x10\x10") == (b"\x10", False)  # the second \x10 may start a sequence
    assert d.scan(b"\x11rest") == (b"", True)  # completed across chunks; nothing after it
    assert Detacher(b"\x18").scan(b"xy\x18z") == (b"xy", True)


def collect(d, chunks):
    async def source():
        for c in chunks:
            yield c

    out = []

    async def main():
        with trio.move_on_after(5):  # a detached filter never ends by itself
            async for data in d.filter(source()):
                out.append(data)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return out


def test_filter_stops_forwarding_at_the_sequence_without_ending():
    d = Detacher(b"\x10\x11")
    assert collect(d, [b"hello", b"\x10", b"\x11", b"after"]) == [b"hello"]
    assert d.detached.is_set()
    d = Detacher(b"\x10\x11")
    # EOF in the middle of a sequence: the held-back byte is the client's input after all.
    assert collect(d, [b"x", b"\x10"]) == [b"x", b"\x10"]
    assert not d.detached.is_set()
