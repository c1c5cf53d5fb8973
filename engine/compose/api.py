"""The CLI's synchronous Engine API client driven from trio: each request runs in a worker
thread (bounded), so that independent services are created and started concurrently."""

from __future__ import annotations

import functools
import json
from typing import Any, Callable, Iterable

import trio

from engine.cli import Client, ClientError, iter_json_stream

from .errors import ComposeError

# Requests in flight at once; the daemon handles them concurrently, threads are cheap.
CONCURRENCY = 16


class Api:
    def __init__(self, client: Client, registry_auth: Callable[[str], dict] | None = None):
        self.client = client
        self.registry_auth = registry_auth or (lambda ref: {})
        self._limiter = trio.CapacityLimiter(CONCURRENCY)

    async def _run(self, fn: Callable, *args: Any, **kw: Any) -> Any:
        return await trio.to_thread.run_sync(functools.partial(fn, *args, **kw),
                                             limiter=self._limiter)

    async def get(self, path: str, **kw: Any) -> Any:
        return await self._run(self.client.get, path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return await self._run(self.client.post, path, body, **kw)

    async def put(self, path: str, **kw: Any) -> Any:
        return await self._run(self.client.put, path, **kw)

    async def delete(self, path: str, **kw: Any) -> Any:
        return await self._run(self.client.delete, path, **kw)

    async def get_or_none(self, path: str, **kw: Any) -> Any:
        try:
            return await self.get(path, **kw)
        except ClientError as exc:
            if exc.not_found:
                return None
            raise

    async def json_stream(self, method: str, path: str, *, on_message: Callable[[dict], None],
                          **kw: Any) -> list[dict]:
        """A JSON-lines progress stream (pull, push, build): every message goes to
        on_message (from the worker thread); an error message raises ComposeError. Returns
        the aux messages."""

        def run() -> list[dict]:
            aux = []
            with self.client.stream(method, path, **kw) as resp:
                for msg in iter_json_stream(resp.iter_raw()):
                    if not isinstance(msg, dict):
                        continue
                    if msg.get("error") or msg.get("errorDetail"):
                        err = msg.get("error") or (msg.get("errorDetail") or {}).get("message")
                        raise ComposeError(str(err))
                    if msg.get("aux"):
                        aux.append(msg["aux"])
                    on_message(msg)
            return aux

        return await self._run(run)

    async def containers(self, filters: str, all: bool = True) -> list[dict]:
        return await self.get("/containers/json", params={"all": all, "filters": filters})

    async def wait(self, cid: str, condition: str = "not-running") -> int:
        res = await trio.to_thread.run_sync(
            functools.partial(self.client.post, f"/containers/{cid}/wait",
                              params={"condition": condition}),
            abandon_on_cancel=True)
        return int((res or {}).get("StatusCode", 0))

    async def watch_events(self, filters: str, send: trio.MemorySendChannel, *,
                           task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Send every event of GET /events?filters=… to `send` until cancelled; started once
        the daemon has answered (it subscribes before answering: nothing after is missed)."""
        token = trio.lowlevel.current_trio_token()
        opened = trio.Event()

        def run() -> None:
            with self.client.stream("GET", "/events", params={"filters": filters}) as resp:
                trio.from_thread.run_sync(opened.set, trio_token=token)
                for ev in iter_json_stream(resp.iter_raw()):
                    if isinstance(ev, dict):
                        trio.from_thread.run(send.send, ev, trio_token=token)

        async with trio.open_nursery() as nursery:
            # a blocked read cannot be interrupted: on cancellation the thread is abandoned
            nursery.start_soon(functools.partial(trio.to_thread.run_sync, run,
                                                 abandon_on_cancel=True))
            await opened.wait()
            task_status.started()

    def stream_lines(self, path: str, params: dict, sink: Callable[[bytes], None]) -> None:
        """Blocking: copy a streamed response's raw chunks to sink (run in a thread)."""
        with self.client.stream("GET", path, params=params) as resp:
            for chunk in resp.iter_raw():
                sink(chunk)


def filters(**labels: Iterable[str]) -> str:
    return json.dumps({k: list(v) for k, v in labels.items()})
