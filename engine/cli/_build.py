"""`pyengine build`: packs the context (.dockerignore applied), POSTs /build and shows the
classic builder's stream as a live view (rich) of steps, cache hits, timings and the running
step's output; plain text when not on a terminal or with --progress=plain."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

from ._app import Cli, CommandError, arg, command, key_values
from ._format import iter_json_stream

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


class StepView:
    """The build's steps as they stream in: text, cache hit, time, output tail."""

    def __init__(self) -> None:
        self.steps: list[dict] = []
        self.total = 0
        self.partial = ""
        self.result_lines: list[str] = []
        self.started = time.monotonic()

    def feed(self, text: str) -> None:
        text = self.partial + text
        *lines, self.partial = text.split("\n")
        for line in lines:
            self._line(line)

    def _line(self, line: str) -> None:
        m = _STEP.match(line)
        now = time.monotonic()
        if m:
            self._finish(now)
            self.total = int(m.group(2))
            self.steps.append({"n": int(m.group(1)), "text": m.group(3), "cached": False, "start": now,
                               "end": None, "output": [], "id": ""})
            return
        if line.startswith(("Successfully built", "Successfully tagged", "[Warning]")):
            self._finish(now)
            self.result_lines.append(line)
            return
        if not self.steps:
            return
        step = self.steps[-1]
        stripped = line.strip()
        if stripped == "---> Using cache":
            step["cached"] = True
        elif stripped.startswith("---> Running in") or stripped.startswith("Removing intermediate container"):
            pass
        elif stripped.startswith("---> "):
            step["id"] = stripped[5:]
        else:
            step["output"].append(line)

    def _finish(self, now: float) -> None:
        if self.steps and self.steps[-1]["end"] is None:
            self.steps[-1]["end"] = now

    def done(self) -> None:
        if self.partial:
            self._line(self.partial)
            self.partial = ""
        self._finish(time.monotonic())

    def render(self):
        from rich.console import Group
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        table = Table.grid(padding=(0, 1))
        table.add_column(width=2)
        table.add_column(no_wrap=True, overflow="ellipsis")
        table.add_column(justify="right", width=12)
        table.add_column(justify="right", width=7)
        for step in self.steps:
            running = step["end"] is None
            elapsed = (step["end"] or now) - step["start"]
            mark = Spinner("dots", style="cyan") if running else Text("✔", style="green")
            label = Text(f"[{step['n']}/{self.total}] ", style="bold")
            label.append(step["text"])
            status = Text("CACHED", style="yellow") if step["cached"] else Text(step["id"], style="dim")
            table.add_row(mark, label, status, Text(f"{elapsed:.1f}s", style="dim"))
            if running and step["output"]:
                for line in step["output"][-5:]:
                    table.add_row("", Text("  " + line, style="dim"), "", "")
        cached = sum(1 for s in self.steps if s["cached"])
        footer = Text(f"{len(self.steps)}/{self.total or '?'} steps, {cached} cached, "
                      f"{now - self.started:.1f}s", style="dim")
        return Group(table, footer)


def _dockerfile_args(a: argparse.Namespace) -> tuple[str, str, bytes | None]:
    """(context dir, Dockerfile path (absolute for -f: pack_context sends one from outside the
    context as the CLI does), Dockerfile text from stdin or None)."""
    context = a.path
    if context == "-":
        raise CommandError("pyengine build: a context from stdin is not supported; use -f - with a directory")
    if a.file == "-":
        return context, "", sys.stdin.buffer.read()
    return context, os.path.abspath(a.file) if a.file else "Dockerfile", None


@command("build", "Build an image from a Dockerfile",
         arg("path", help="build context directory"),
         arg("-t", "--tag", action="append", default=[], help="Name and optionally a tag (repeatable)"),
         arg("-f", "--file", default=None, help="Name of the Dockerfile (- for stdin)"),
         arg("--build-arg", action="append", default=[], help="Set build-time variables"),
         arg("--target", default=None, help="Set the target build stage to build"),
         arg("--label", action="append", default=[], help="Set metadata for an image"),
         arg("--no-cache", action="store_true", help="Do not use cache when building the image"),
         arg("--pull", action="store_true", help="Always attempt to pull a newer version of the image"),
         arg("--rm", default="true", choices=["true", "false"], help="Remove intermediate containers"),
         arg("--force-rm", action="store_true", help="Always remove intermediate containers"),
         arg("--cache-from", action="append", default=[], help="Images to consider as cache sources"),
         arg("--network", default=None, help="Networking mode for the RUN instructions"),
         arg("--add-host", action="append", default=[], help="Add a custom host-to-IP mapping"),
         arg("--shm-size", default=None, help="Size of /dev/shm"),
         arg("-m", "--memory", default=None, help="Memory limit of the RUN containers"),
         arg("--memory-swap", default=None, help="Swap limit equal to memory plus swap: -1 unlimited"),
         arg("-c", "--cpu-shares", type=int, default=0, help="CPU shares (relative weight)"),
         arg("--cpu-period", type=int, default=0, help="Limit the CPU CFS period"),
         arg("--cpu-quota", type=int, default=0, help="Limit the CPU CFS quota"),
         arg("--cpuset-cpus", default="", help="CPUs in which to allow execution (0-3, 0,1)"),
         arg("--cpuset-mems", default="", help="MEMs in which to allow execution (0-3, 0,1)"),
         arg("--cgroup-parent", default="", help="Parent cgroup of the RUN containers"),
         arg("--ulimit", action="append", default=[], help="Ulimit options"),
         arg("-q", "--quiet", action="store_true", help="Print the image ID only"),
         arg("--iidfile", default="", help="Write the image ID to the file"),
         arg("--platform", default=None),
         arg("--progress", default="auto", choices=["auto", "plain", "tty"], help="Progress output"),
         aliases=("image build", "builder build"))
def build(cli: Cli, a: argparse.Namespace) -> int:
    from engine.buildcontext import pack_context
    from ._format import ram_in_bytes
    from ._opts import parse_ulimits, size_flag

    context, dockerfile, text = _dockerfile_args(a)
    if a.iidfile and os.path.lexists(a.iidfile):
        os.unlink(a.iidfile)  # a failed build leaves none behind (the docker CLI's way)
    buildargs = {}
    for item in a.build_arg:
        key, eq, value = item.partition("=")
        buildargs[key] = value if eq else os.environ.get(key)
    params = {
        "t": a.tag or None,
        "buildargs": json.dumps(buildargs) if buildargs else None,
        "labels": json.dumps(key_values(a.label, "--label")) if a.label else None,
        "target": a.target, "nocache": "1" if a.no_cache else None, "pull": "1" if a.pull else None,
        "rm": "1" if a.rm == "true" else "0", "forcerm": "1" if a.force_rm else None,
        "cachefrom": json.dumps(a.cache_from) if a.cache_from else None,
        "networkmode": a.network, "extrahosts": ",".join(a.add_host) if a.add_host else None,
        "shmsize": str(ram_in_bytes(a.shm_size)) if a.shm_size else None,
        "memory": str(size_flag("-m, --memory", a.memory)) if a.memory else None,
        "memswap": str(size_flag("--memory-swap", a.memory_swap, allow_minus_one=True)) if a.memory_swap else None,
        "cpushares": str(a.cpu_shares) if a.cpu_shares else None,
        "cpuperiod": str(a.cpu_period) if a.cpu_period else None,
        "cpuquota": str(a.cpu_quota) if a.cpu_quota else None,
        "cpusetcpus": a.cpuset_cpus or None, "cpusetmems": a.cpuset_mems or None,
        "cgroupparent": a.cgroup_parent or None,
        "ulimits": json.dumps(parse_ulimits(a.ulimit)) if a.ulimit else None,
        "q": "1" if a.quiet else None, "platform": a.platform,
    }
    try:
        tar, dockerfile = pack_context(context, dockerfile or "Dockerfile", text)
    except (OSError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    params["dockerfile"] = None if dockerfile == "Dockerfile" else dockerfile

    def chunks():
        while data := tar.read(1 << 16):
            yield data

    live = a.progress == "tty" or (a.progress == "auto" and sys.stdout.isatty() and not a.quiet)
    view = StepView()
    error = None
    image_id = ""
    with tar, cli.client.stream("POST", "/build", params=params, content=chunks(),
                                headers={"Content-Type": "application/x-tar"}) as resp:
        messages = iter_json_stream(resp.iter_raw())
        if live:
            from rich.console import Console
            from rich.live import Live

            with Live(view.render(), console=Console(), refresh_per_second=8, transient=False) as screen:
                for msg in messages:
                    error, image_id = _handle(msg, view, None, error, image_id)
                    screen.update(view.render())
                view.done()
                screen.update(view.render())
            for line in view.result_lines:
                cli.print(line)
        else:
            for msg in messages:
                error, image_id = _handle(msg, view, cli, error, image_id)
    if error is not None:
        message, code = error
        if live and view.steps and view.steps[-1]["output"]:
            sys.stderr.write("\n".join(view.steps[-1]["output"][-20:]) + "\n")
        raise CommandError(message, code or 1)
    if a.iidfile:
        with open(a.iidfile, "w") as f:
            f.write(image_id)
    return 0  # with -q the daemon's only output was the image id (or a failed build's log)


def _handle(msg, view: StepView, printer: Cli | None, error, image_id: str):
    if not isinstance(msg, dict):
        return error, image_id
    if msg.get("error") or msg.get("errorDetail"):
        detail = msg.get("errorDetail") or {}
        return (str(msg.get("error") or detail.get("message")), int(detail.get("code") or 1)), image_id
    if isinstance(msg.get("aux"), dict) and msg["aux"].get("ID"):
        return error, msg["aux"]["ID"]
    text = msg.get("stream")
    if text:
        view.feed(text)
        if printer is not None:
            printer.out.write(text)
            printer.out.flush()
    return error, image_id
