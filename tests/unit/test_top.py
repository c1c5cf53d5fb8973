import os
import shutil

import pytest

from engine import errors
from engine.containers import top as top_mod
from engine.containers.top import parse_ps_output, top, validate_ps_args

PS_EF = """\
UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init splash
root         882       1  0 10:00 ?        00:00:00 /usr/bin/containerd
root       13642     882  0 17:03 pts/0    00:00:00 /bin/bash
root       13735   13642  0 17:06 pts/0    00:00:00 sleep 10
"""

PS_M = """\
  PID TTY          TIME CMD
13642 pts/0    00:00:00 bash
    - -        00:00:00 -
  882 ?        00:00:00 containerd
    - -        00:00:00 -
"""


def test_parse_keeps_container_rows_and_cmd_spaces():
    got = parse_ps_output(PS_EF.encode(), [13642, 13735])
    assert got.titles == ("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD")
    assert [list(row) for row in got.processes] == [
        ["root", "13642", "882", "0", "17:03", "pts/0", "00:00:00", "/bin/bash"],
        ["root", "13735", "13642", "0", "17:06", "pts/0", "00:00:00", "sleep 10"],
    ]
    assert parse_ps_output(PS_EF, []).processes == ()


def test_parse_thread_lines_follow_their_process():
    got = parse_ps_output(PS_M, [13642])
    assert got.processes == (("13642", "pts/0", "00:00:00", "bash"), ("-", "-", "00:00:00", "-"))


def test_parse_errors():
    with pytest.raises(errors.SystemError_) as info:
        parse_ps_output("USER COMMAND\nroot init\n", [1])
    assert info.value.message == "Couldn't find PID field in ps output"
    with pytest.raises(errors.SystemError_):
        parse_ps_output("PID CMD\nabc x\n", [1])


def test_validate_ps_args():
    validate_ps_args("-o pid=PID,comm")
    with pytest.raises(errors.InvalidParameter) as info:
        validate_ps_args("-o user=PID")
    assert info.value.message == 'specifying "user=PID" is not allowed'


needs_ps = pytest.mark.skipif(shutil.which("ps") is None, reason="procps not installed")


@needs_ps
async def test_real_ps_finds_our_own_process():
    me = os.getpid()
    got = await top([me])
    assert "PID" in got.titles and got.titles[-1] == "CMD"
    pid_col = got.titles.index("PID")
    assert [row[pid_col] for row in got.processes] == [str(me)]
    assert all(len(row) == len(got.titles) for row in got.processes)
    got = await top([me], "-o pid,comm")
    assert got.titles == ("PID", "COMMAND") and got.processes[0][0] == str(me)
    got = await top([me], "aux")  # BSD style, as `docker top c aux`
    assert got.titles[1] == "PID" and got.processes[0][1] == str(me)


@needs_ps
async def test_real_ps_errors():
    with pytest.raises(errors.SystemError_) as info:
        await top([os.getpid()], "-o comm")
    assert info.value.message == "Couldn't find PID field in ps output"
    with pytest.raises(errors.SystemError_) as info:
        await top([os.getpid()], "--no-such-option")
    assert info.value.message.startswith("ps: ")


async def test_ps_missing(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(errors.SystemError_) as info:
        await top([1])
    assert info.value.message == 'ps: exec: "ps": executable file not found in $PATH'
    assert top_mod.__all__
