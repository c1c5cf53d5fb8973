"""Request's body reading: what the handler gets, and that a body arriving as fast as it is
read still lets other tasks run."""

import trio

from engine.api._request import YIELD_EVERY, Request


def request(messages):
    it = iter(messages)

    async def receive():  # never waits: every read succeeds at once
        return next(it)

    return Request(method="POST", path="/x", query_string=b"", headers=(), receive=receive, daemon=None,
                   api_version="1.41")


async def test_body_and_json():
    req = request([{"type": "http.request", "body": b'{"a":', "more_body": True},
                   {"type": "http.request", "body": b" 1}", "more_body": False}])
    assert await req.json() == {"a": 1}
    assert await request([{"type": "http.request", "body": b"", "more_body": False}]).json(default=7) == 7


async def test_a_fast_large_body_has_schedule_points():
    chunk = b"x" * 65536
    count = 64
    req = request([*({"type": "http.request", "body": chunk, "more_body": True} for _ in range(count)),
                   {"type": "http.request", "body": b"", "more_body": False}])
    ran = 0

    async def other():
        nonlocal ran
        while True:
            await trio.lowlevel.checkpoint()
            ran += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        await trio.lowlevel.checkpoint()  # `other` runs
        ran = 0
        assert len(await req.body()) == len(chunk) * count
        nursery.cancel_scope.cancel()
    assert ran >= len(chunk) * count // YIELD_EVERY - 1
