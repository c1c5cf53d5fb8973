"""The CLI's synchronous Engine API client as compose's tasks use it: each task is a thread
(engine.compose.tasks), every request a checkpoint, at most CONCURRENCY in flight, so that
independent services are created and started concurrently."""

from __future__ import annotations

import json
import queue
from typing import Any, Callable, Iterable

from engine.cli import Client, ClientError, iter_json_stream

from . import tasks
from .errors import ComposeError

# Requests in flight at once; the daemon handles them concurrently, threads are cheap.
CONCURRENCY = 16


class Api:
    def __init__(self, client: Client, registry_auth: Callable[[str], dict] | None = None):
        self.client = client
        self.registry_auth = registry_auth or (lambda ref: {})
        self._limiter = tasks.Limiter(CONCURRENCY)

    def _run(self, fn: Callable, *args: Any, **kw: Any) -> Any:
        tasks.checkpoint()
        with self._limiter.hold():
            return fn(*args, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self._run(self.client.get, path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self._run(self.client.post, path, body, **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self._run(self.client.put, path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self._run(self.client.delete, path, **kw)

    def get_or_none(self, path: str, **kw: Any) -> Any:
        try:
            return self.get(path, **kw)
        except ClientError as exc:
            if exc.not_found:
                return None
            raise

    def json_stream(self, method: str, path: str, *, on_message: Callable[[dict], None],
                    **kw: Any) -> list[dict]:
        """A JSON-lines progress stream (pull, push, build): every message goes to
        on_message; an error message raises ComposeError. Returns the aux messages."""

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

        return self._run(run)

    def containers(self, filters: str, all: bool = True) -> list[dict]:
        return self.get("/containers/json", params={"all": all, "filters": filters})

    def wait(self, cid: str, condition: str = "not-running") -> int:
        res = tasks.abandon_on_cancel(lambda: self.client.post(
            f"/containers/{cid}/wait", params={"condition": condition}))
        return int((res or {}).get("StatusCode", 0))

    def watch_events(self, filters: str, send: queue.Queue, group: tasks.TaskGroup) -> None:
        """Put every event of GET /events?filters=… into `send`, from a task of `group`, until
        the group is cancelled; returns once the daemon has answered (it subscribes before
        answering: nothing after is missed)."""
        opened = tasks.Event()

        def read() -> None:
            with self.client.stream("GET", "/events", params={"filters": filters}) as resp:
                opened.set()
                for ev in iter_json_stream(resp.iter_raw()):
                    if isinstance(ev, dict):
                        send.put(ev)

        def task() -> None:
            try:
                # a blocked read cannot be interrupted: on cancellation the thread is abandoned
                tasks.abandon_on_cancel(read)
            finally:
                opened.set()  # a failure to subscribe ends the group with its error

        group.start_soon(task)
        opened.wait()

    def stream_lines(self, path: str, params: dict, sink: Callable[[bytes], None]) -> None:
        """Copy a streamed response's raw chunks to sink (blocking: no checkpoint)."""
        with self.client.stream("GET", path, params=params) as resp:
            for chunk in resp.iter_raw():
                sink(chunk)


def filters(**labels: Iterable[str]) -> str:
    return json.dumps({k: list(v) for k, v in labels.items()})
