"""`docker top`: run the host's ps and keep the container's processes, as Docker does.

Docker runs `ps <args> -q<pid,pid,…>` (falling back to plain `ps <args>` when the args do not
combine with -q, e.g. `f`), then keeps the header and the rows whose PID column is one of the
container's pids (plus thread rows, PID "-", that follow one of them, for `-m`). The last
column (CMD) keeps its spaces.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

import attrs
import trio

from engine import errors

__all__ = ["ProcessTable", "parse_ps_output", "top", "validate_ps_args"]


@attrs.frozen
class ProcessTable:
    """ps's header and the rows of the container's processes (the API shows it as Docker's
    {Titles, Processes})."""

    titles: tuple[str, ...]
    processes: tuple[tuple[str, ...], ...]

_ASCII_SPACE = re.compile(r"[ \t\n\v\f\r]+")
_PID_EQUALS = re.compile(r"\s+([^\s]*)=\s*(PID[^\s]*)")


def _fields(line: str) -> list[str]:
    """Go's strings.Fields over ASCII whitespace only (Docker's fieldsASCII)."""
    return [f for f in _ASCII_SPACE.split(line) if f]


def validate_ps_args(ps_args: str) -> None:
    """Docker refuses renaming another column to PID ("-o user=PID")."""
    for key, value in _PID_EQUALS.findall(ps_args):
        if key != "pid":
            raise errors.InvalidParameter(f'specifying "{key}={value}" is not allowed')


def parse_ps_output(output: bytes | str, pids: Sequence[int]) -> ProcessTable:
    """ps output → the table of the given pids."""
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
    lines = text.split("\n")
    titles = _fields(lines[0]) if lines else []
    try:
        pid_index = titles.index("PID")
    except ValueError:
        raise errors.SystemError_("Couldn't find PID field in ps output") from None
    wanted = set(pids)
    processes: list[tuple[str, ...]] = []
    previous_kept = False

    def append(fields: list[str]) -> None:
        # Merge the overhanging fields into the last column (CMD keeps its spaces).
        head = fields[: len(titles) - 1]
        processes.append((*head, " ".join(fields[len(titles) - 1:])))

    for line in lines[1:]:
        if not line:
            continue
        fields = _fields(line)
        if len(fields) <= pid_index:
            continue
        value = fields[pid_index]
        if value == "-":  # a thread line (ps -m): belongs to the process above
            if previous_kept:
                append(fields)
            continue
        try:
            pid = int(value)
        except ValueError:
            raise errors.SystemError_(f"Unexpected pid '{value}': invalid syntax") from None
        previous_kept = pid in wanted
        if previous_kept:
            append(fields)
    return ProcessTable(tuple(titles), tuple(processes))


async def _run_ps(args: list[str]) -> "trio.CompletedProcess":
    try:
        return await trio.run_process(["ps", *args], capture_stdout=True, capture_stderr=True, check=False)
    except FileNotFoundError:
        raise errors.SystemError_('ps: exec: "ps": executable file not found in $PATH') from None


async def top(pids: Sequence[int], ps_args: str = "-ef") -> ProcessTable:
    """`ps ps_args` of a container whose processes are `pids`."""
    ps_args = ps_args or "-ef"
    validate_ps_args(ps_args)
    try:
        args = shlex.split(ps_args)
    except ValueError:
        args = ps_args.split()
    quick = "-q" + ",".join(str(p) for p in pids)
    result = await _run_ps([*args, quick])
    if result.returncode != 0:
        # some ps options (such as f) can't be used together with q: retry without it
        result = await _run_ps(args)
        if result.returncode != 0:
            first = result.stderr.decode("utf-8", "replace").split("\n", 1)[0].strip()
            raise errors.SystemError_(f"ps: {first or f'exit status {result.returncode}'}")
    return parse_ps_output(result.stdout, pids)
