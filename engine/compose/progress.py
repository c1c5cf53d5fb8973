"""Progress of a compose operation, one row per object ("Container web-1  Started"): a live
rich view on a terminal, plain lines otherwise (Docker Compose's --progress plain)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class PlainProgress:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def update(self, kind: str, name: str, status: str, *, done: bool = False,
               error: bool = False) -> None:
        with self._lock:
            self.stream.write(f" {kind} {name}  {status}\n")
            self.stream.flush()

    def close(self) -> None:
        pass


class QuietProgress:
    def update(self, *args: object, **kw: object) -> None:
        pass

    def close(self) -> None:
        pass


class RichProgress:
    """A rich Live table: a spinner while an object is in progress, ✔/✘ when it is done,
    with the time it took."""

    def __init__(self, stream: TextIO | None = None):
        from rich.console import Console
        from rich.live import Live

        self._console = Console(file=stream or sys.stderr)
        self._rows: dict[tuple[str, str], list] = {}
        self._lock = threading.Lock()
        self._live = Live(self._render(), console=self._console, refresh_per_second=10,
                          transient=False)
        self._live.start()

    def _render(self):
        from rich.spinner import Spinner
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        now = time.monotonic()
        for (kind, name), (status, state, started, ended) in list(self._rows.items()):
            if state == "done":
                mark = "[green]✔[/]"
            elif state == "error":
                mark = "[red]✘[/]"
            else:
                mark = Spinner("dots", style="blue")
            elapsed = (ended or now) - started
            colour = "red" if state == "error" else ("green" if state == "done" else "blue")
            table.add_row(mark, f"{kind} {name}", f"[{colour}]{status}[/]",
                          f"[dim]{elapsed:.1f}s[/]")
        return table

    def update(self, kind: str, name: str, status: str, *, done: bool = False,
               error: bool = False) -> None:
        with self._lock:
            row = self._rows.get((kind, name))
            started = row[2] if row else time.monotonic()
            state = "error" if error else ("done" if done else "working")
            self._rows[(kind, name)] = [status, state, started,
                                        time.monotonic() if state != "working" else None]
            self._live.update(self._render())

    def close(self) -> None:
        with self._lock:
            self._live.update(self._render())
        self._live.stop()


def make_progress(mode: str = "auto", stream: TextIO | None = None):
    """auto: rich on a terminal, plain lines otherwise; also "plain", "tty", "quiet"."""
    stream = stream or sys.stderr
    if mode == "quiet":
        return QuietProgress()
    if mode == "tty" or (mode == "auto" and stream.isatty()):
        return RichProgress(stream)
    return PlainProgress(stream)
